"""Robots and their runs: the only code that changes them. Run transitions follow DESIGN.md:
queued → starting → running ⇄ paused → stopping → succeeded | failed | stopped | killed | lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from robofleet.agents.hub import AgentHub
from robofleet.auth.audit import audited
from robofleet.auth.permissions import RobotRef, robot_scope
from robofleet.auth.principal import Principal, system_principal
from robofleet.errors import Conflict, Forbidden, RobofleetError
from robofleet.events import EventHub
from robofleet.robots import store_ops
from robofleet.robots.masking import unmasked
from robofleet.robots.models import (
    ACTIVE,
    FAILED,
    KILLED,
    LOST,
    PAUSED,
    RUN_USER,
    RUNNING,
    STARTING,
    STOPPED,
    STOPPING,
    SUCCEEDED,
    Robot,
    Run,
)
from robofleet.robots.pausing import Pauses
from robofleet.robots.restarts import restart_delay
from robofleet.robots.schemas import RobotCreate, RobotOut, RobotUpdate, RunOut
from robofleet.store import Store
from robofleet.store.base import utcnow
from robofleet.store.pagination import Page, paginate

log = logging.getLogger(__name__)
TOPIC = "runs"
ACTIONS = ("pause", "resume", "stop", "kill")


def ref(robot: Robot) -> RobotRef:
    return RobotRef(robot.name, tuple(robot.tags))


class RobotsService:
    def __init__(self, store: Store, hub: AgentHub, events: EventHub, *, server_url: str) -> None:
        self.store = store
        self.hub = hub
        self.events = events
        self.server_url = server_url
        self._timers: dict[int, asyncio.Task[None]] = {}
        self._killing: set[int] = set()
        self._restarts: set[asyncio.Task[None]] = set()
        self._tokens: dict[int, str] = {}  # run id -> id of its token, revoked when the run ends
        self.pauses = Pauses(hub, self._update)
        hub.on_run_exited = self.run_exited

    async def startup(self) -> None:
        """Nothing to resume yet: run deadlines are kept by their timers."""

    async def stop(self) -> None:
        """Cancel the timers and pending restarts this service started; the runs themselves go on."""
        tasks = [*self._timers.values(), *self._restarts]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._timers.clear()

    # ---- definitions (plain functions of the store; the API runs them in threads) ---------------------------

    def list_robots(self, principal: Principal, *, limit: int, cursor: str | None) -> Page[RobotOut]:
        principal.require("robots:read")
        with self.store.transaction() as session:
            page = paginate(session, select(Robot), Robot.id, limit=limit, cursor=cursor)
            visible = [store_ops.robot_out(r) for r in page.items if principal.can("robots:read", ref(r))]
            return Page(visible, page.next_cursor)

    def get_robot(self, principal: Principal, name: str) -> RobotOut:
        with self.store.transaction() as session:
            robot = store_ops.find_robot(session, name)
            principal.require("robots:read", ref(robot))
            return store_ops.robot_out(robot)

    def create_robot(self, principal: Principal, data: RobotCreate, *, from_config: bool = False) -> RobotOut:
        with audited(self.store, principal, "robot.create", data.name) as session:
            principal.require("robots:write", RobotRef(data.name, tuple(data.tags)))
            if session.scalar(select(Robot.id).where(Robot.name == data.name)) is not None:
                raise Conflict(f"a robot named {data.name!r} exists already", details={"robot": data.name})
            unmasked(data.env, {})  # a mask copied from another robot stands for nothing here
            robot = Robot(
                **data.model_dump(exclude={"restart"}), restart=data.restart.model_dump(), from_config=from_config
            )
            session.add(robot)
            session.flush()
            return store_ops.robot_out(robot)

    def apply_config(self, declared: list[Any]) -> None:
        """Robots of the settings file: created or brought up to date at every start, marked from config."""
        from pydantic import ValidationError

        from robofleet.errors import ConfigError

        principal = system_principal("config")
        for item in declared:
            try:
                data = RobotCreate(**item.model_dump())
            except ValidationError as exc:
                first = exc.errors()[0]
                raise ConfigError(f"robots.{item.name}.{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
            with self.store.transaction() as session:
                exists = session.scalar(select(Robot.id).where(Robot.name == data.name)) is not None
            if exists:
                self.update_robot(principal, data.name, RobotUpdate(**data.model_dump(exclude={"name"})))
            else:
                self.create_robot(principal, data, from_config=True)

    def update_robot(self, principal: Principal, name: str, data: RobotUpdate) -> RobotOut:
        changes = data.model_dump(exclude_unset=True)
        with audited(self.store, principal, "robot.update", name, {"fields": sorted(changes)}) as session:
            robot = store_ops.find_robot(session, name)
            principal.require("robots:write", ref(robot))
            if data.env is not None:
                changes["env"] = unmasked(data.env, robot.env)  # what GET showed, sent back: the secrets stay
            for key, value in changes.items():
                setattr(robot, key, value)
            if data.restart is not None:
                robot.restart = data.restart.model_dump()
            session.flush()
            return store_ops.robot_out(robot)

    def delete_robot(self, principal: Principal, name: str) -> None:
        with audited(self.store, principal, "robot.delete", name) as session:
            robot = store_ops.find_robot(session, name)
            principal.require("robots:write", ref(robot))
            if store_ops.count_active(session, name):
                raise Conflict(f"robot {name!r} has active runs; stop them first", details={"robot": name})
            session.delete(robot)

    def list_runs(
        self, principal: Principal, *, robot: str | None, state: str | None, limit: int, cursor: str | None
    ) -> Page[RunOut]:
        principal.require("robots:read")
        stmt = select(Run)
        if robot:
            stmt = stmt.where(Run.robot == robot)
        if state:
            stmt = stmt.where(Run.state == state)
        with self.store.transaction() as session:
            visible = self._visible_robots(session, principal)
            if visible is not None:
                stmt = stmt.where(Run.robot.in_(visible))
            page = paginate(session, stmt, Run.id, limit=limit, cursor=cursor, descending=True)
            return Page([store_ops.run_out(r) for r in page.items], page.next_cursor)

    def get_run(self, principal: Principal, run_id: int) -> RunOut:
        principal.require("robots:read")
        with self.store.transaction() as session:
            run = store_ops.find_run(session, run_id)
            visible = self._visible_robots(session, principal)
            if visible is not None and run.robot not in visible:
                raise Forbidden(
                    f"{principal.username} lacks the permission 'robots:read' on robot {run.robot!r}",
                    details={"permission": "robots:read"},
                )
            return store_ops.run_out(run)

    def visible_robots(self, principal: Principal) -> list[str] | None:
        """The robots whose runs `principal` may see, when its robots:read is narrowed (None: every robot's)."""
        with self.store.transaction() as session:
            return self._visible_robots(session, principal)

    @staticmethod
    def _visible_robots(session: Session, principal: Principal) -> list[str] | None:
        if robot_scope(principal.grants, "robots:read") is None:
            return None
        return [robot.name for robot in session.scalars(select(Robot)) if principal.can("robots:read", ref(robot))]

    # ---- lifecycle ------------------------------------------------------------------------------------------

    async def start(self, principal: Principal, name: str, *, manual: bool = True) -> RunOut:
        """A new run of `name`, running when this returns; Conflict past max_concurrent or with the agent offline."""

        def prepare() -> tuple[int, dict[str, Any]]:
            with audited(self.store, principal, "robot.start", name) as session:
                robot = store_ops.find_robot(session, name)
                principal.require("robots:start", ref(robot))
                self.hub.require(robot.agent)
                active = store_ops.count_active(session, name)
                if active >= robot.max_concurrent:
                    raise Conflict(
                        f"robot {name!r} already has {active} active run(s); max_concurrent is {robot.max_concurrent}",
                        details={"robot": name, "active": active},
                    )
                now = utcnow()
                run = Run(
                    robot_id=robot.id,
                    robot=name,
                    agent=robot.agent,
                    manual=manual,
                    requested_by=principal.actor,
                    created_at=now,
                    transitions=[],
                )
                store_ops.transition(run, STARTING, now, principal.actor)
                robot.manual_stop = False
                session.add(run)
                session.flush()
                spec = {
                    "agent": robot.agent,
                    "argv": robot.argv,
                    "cwd": robot.cwd,
                    "env": robot.env,
                    "max_runtime": robot.max_runtime,
                }
                return run.id, spec

        run_id, spec = await asyncio.to_thread(prepare)
        token = await asyncio.to_thread(self._run_token, run_id, spec["max_runtime"])
        env = {
            **spec["env"],
            "ROBOFLEET_URL": self.server_url,
            "ROBOFLEET_RUN_ID": str(run_id),
            "ROBOFLEET_ROBOT": name,
            "ROBOFLEET_TOKEN": token,
        }
        try:
            started = await self.hub.command(
                spec["agent"],
                "process.start",
                {
                    "run_id": str(run_id),
                    "argv": spec["argv"],
                    "cwd": spec["cwd"],
                    "env": env,
                    "robot": name,
                },
            )
        except RobofleetError as exc:
            await self._finish(run_id, FAILED, "system", error=exc.message)
            raise
        out = await self._change(
            run_id,
            RUNNING,
            principal.actor,
            pid=started.get("robot_pid") or started["pid"],
            shim_pid=started["pid"],
            started_at=utcnow(),
        )
        if spec["max_runtime"]:
            self._timer(run_id, spec["max_runtime"], lambda: self._stop_at_max_runtime(run_id))
        return out

    def _run_token(self, run_id: int, max_runtime: float | None) -> str:
        """A token for the run alone: robot permissions (its logs, its queue items), expiring with the run at the
        latest, revoked when it ends. Owned by the built-in user `robot-runs`, which cannot log in."""
        from robofleet.auth.models import Role, User
        from robofleet.auth.schemas import TokenCreate
        from robofleet.auth.tokens import create_token

        with self.store.transaction() as session:
            if session.scalar(select(User.id).where(User.username == RUN_USER)) is None:
                robot_role = session.scalar(select(Role).where(Role.name == "robot"))
                session.add(User(username=RUN_USER, password_hash=None, roles=[robot_role] if robot_role else []))
        lifetime_days = ((max_runtime or 86_400) + 3600) / 86_400
        made = create_token(
            self.store,
            system_principal("robots"),
            TokenCreate(
                user=RUN_USER, name=f"run {run_id}", scopes=["logs:write", "queues:*"], expires_in_days=lifetime_days
            ),
        )
        self._tokens[run_id] = made.id
        return made.token

    async def act(self, principal: Principal, run_id: int, action: str) -> RunOut:
        """pause | resume | stop (safe) | kill on one run; 409 when its state does not allow it."""
        if action not in ACTIONS:
            raise Conflict(f"unknown action {action!r}")

        def check() -> tuple[Run, Robot | None]:
            with audited(self.store, principal, f"run.{action}", str(run_id)) as session:
                run = store_ops.find_run(session, run_id)
                robot = session.get(Robot, run.robot_id) if run.robot_id else None
                principal.require("robots:stop", ref(robot) if robot else RobotRef(run.robot))
                allowed = {
                    "pause": (RUNNING,),
                    "resume": (PAUSED,),
                    "stop": (RUNNING, PAUSED),
                    "kill": (STARTING, RUNNING, PAUSED, STOPPING),
                }[action]
                calling_off = action == "resume" and run.pause_asked_at is not None  # still on its way there
                if run.state not in allowed and not calling_off:
                    raise Conflict(
                        f"run {run_id} is {run.state}: it cannot {action} now",
                        details={"state": run.state, "action": action},
                    )
                if action == "stop" and robot is not None:
                    robot.manual_stop = True  # remembered: the scheduler leaves it alone until a manual start
                return run, robot

        run, robot = await asyncio.to_thread(check)
        command = {"run_id": str(run_id), "action": action}
        if action == "pause":
            if run.pause_asked_at is not None:
                return await self._read(run_id)  # asked already: it pauses at its next checkpoint
            bound = robot.safe_stop_timeout if robot else 30.0
            return await self.pauses.pause(run_id, run.agent, principal.actor, bound) or await self._read(run_id)
        if action == "resume":
            return await self.pauses.resume(run_id, run.agent, principal.actor) or await self._read(run_id)
        self.pauses.cancel(run_id)
        if action == "stop":
            # Stopping is recorded before the signal goes out: a robot that exits at once must end "stopped".
            out = await self._change(run_id, STOPPING, principal.actor, stop_requested_by=principal.actor)
            timeout = robot.safe_stop_timeout if robot else 30.0
            self._timer(run_id, timeout, lambda: self._kill_after_timeout(run_id))
            await self.hub.command(run.agent, "process.signal", {**command, "action": "terminate"})
            return out
        self._killing.add(run_id)
        await self.hub.command(run.agent, "process.signal", command)
        return await self._read(run_id)

    async def act_on_robot(self, principal: Principal, name: str, action: str) -> list[RunOut]:
        def runs() -> list[int]:
            with self.store.transaction() as session:
                robot = store_ops.find_robot(session, name)
                principal.require("robots:stop", ref(robot))
                return [run.id for run in store_ops.active_runs(session, name)]

        ids = await asyncio.to_thread(runs)
        if not ids:
            raise Conflict(f"robot {name!r} has no active run to {action}", details={"robot": name})
        return [await self.act(principal, run_id, action) for run_id in ids]

    async def restart(self, principal: Principal, name: str) -> RunOut:
        """Safe stop of every active run, then a new start."""
        with_runs = await asyncio.to_thread(self._active_ids, name)
        for run_id in with_runs:
            current = await self._read(run_id)
            if current.state in (RUNNING, PAUSED):
                await self.act(principal, run_id, "stop")
        for run_id in with_runs:
            await self._wait_ended(run_id, 3600)
        return await self.start(principal, name)

    def _active_ids(self, name: str) -> list[int]:
        with self.store.transaction() as session:
            return [run.id for run in store_ops.active_runs(session, name)]

    async def run_exited(self, agent: str, run_id: str, outcome: dict[str, Any]) -> None:
        """The agent saw the process end: the run's final state follows from how it was asked to end."""
        number = int(run_id)
        current = await self._read(number)
        if current.state not in (*ACTIVE, LOST):  # a lost run whose end the returning agent reports is settled
            return
        code = outcome.get("exit_code")
        if number in self._killing:
            state = KILLED
        elif current.state == STOPPING:
            state = STOPPED
        else:
            state = SUCCEEDED if code == 0 else FAILED
        await self._finish(number, state, "agent:" + agent, exit_code=code)
        if state == FAILED:
            await self._maybe_restart(current.robot)

    async def _maybe_restart(self, name: str) -> None:
        def decide() -> float | None:
            with self.store.transaction() as session:
                return restart_delay(session, name, utcnow())

        delay = await asyncio.to_thread(decide)
        if delay is None:
            return

        async def again() -> None:
            await asyncio.sleep(delay)
            try:
                await self.start(system_principal("restart-policy"), name, manual=False)
            except RobofleetError as exc:
                log.warning("restart of %s failed: %s", name, exc.message)

        task = asyncio.get_running_loop().create_task(again())
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    def watch_gone(self, agent: str, grace_seconds: float) -> None:
        task = asyncio.get_running_loop().create_task(self.agent_gone(agent, grace_seconds))
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def agent_gone(self, agent: str, grace_seconds: float) -> None:
        """An agent disconnected: if it is not back within the grace period, its active runs are lost."""
        await asyncio.sleep(grace_seconds)
        if agent in self.hub.agents:
            return

        def active() -> list[int]:
            with self.store.transaction() as session:
                return list(session.scalars(select(Run.id).where(Run.agent == agent, Run.state.in_(ACTIVE))))

        for run_id in await asyncio.to_thread(active):
            await self.mark_lost(run_id, f"agent {agent} was gone for more than {grace_seconds:g} s")

    async def agent_back(self, agent: str, runs: list[dict[str, Any]]) -> None:
        """An agent said hello: its lost runs whose process still lives are adopted again, and the pauses of its
        runs recorded as they really are (a restart may have come between a command and its record)."""
        alive = {str(run["run_id"]) for run in runs if run.get("alive")}

        def lost() -> list[int]:
            with self.store.transaction() as session:
                return list(session.scalars(select(Run.id).where(Run.agent == agent, Run.state == LOST)))

        for run_id in await asyncio.to_thread(lost):
            if str(run_id) in alive:
                await self._change(run_id, RUNNING, f"agent:{agent}", ended_at=None, error=None)

        def live() -> dict[str, store_ops.PauseRecord]:
            with self.store.transaction() as session:
                return store_ops.pause_records(session, agent)

        await self.pauses.settle(agent, runs, await asyncio.to_thread(live))

    async def mark_lost(self, run_id: int, reason: str) -> None:
        await self._finish(run_id, LOST, "system", error=reason)

    # ---- helpers ----------------------------------------------------------------------------------------------

    async def _finish(self, run_id: int, state: str, by: str, **fields: Any) -> RunOut:
        self._killing.discard(run_id)
        self.pauses.cancel(run_id)
        token_id = self._tokens.pop(run_id, None)
        if token_id is not None:
            from robofleet.auth.tokens import revoke_token

            await asyncio.to_thread(revoke_token, self.store, system_principal("robots"), token_id)
        timer = self._timers.pop(run_id, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        return await self._change(run_id, state, by, ended_at=utcnow(), **fields)

    async def _change(self, run_id: int, state: str, by: str, **fields: Any) -> RunOut:
        out = await self._update(run_id, by, state=state, **fields)
        assert out is not None
        return out

    async def _update(
        self,
        run_id: int,
        by: str,
        *,
        state: str | None = None,
        only_from: tuple[str, ...] | None = None,
        note: dict[str, Any] | None = None,
        **fields: Any,
    ) -> RunOut | None:
        """A transition to `state` (or, without one, a change of `fields` only); None, changing nothing, when
        the run is no longer in one of the states `only_from`."""

        def write() -> RunOut | None:
            with self.store.transaction() as session:
                run = store_ops.find_run(session, run_id, lock=only_from is not None)
                if only_from is not None and run.state not in only_from:
                    return None
                if state is None:
                    for key, value in fields.items():
                        setattr(run, key, value)
                else:
                    store_ops.transition(run, state, utcnow(), by, note=note, **fields)
                return store_ops.run_out(run)

        out = await asyncio.to_thread(write)
        if out is None:
            return None
        if state is not None:
            log.info("run %s of %s is %s (%s)", run_id, out.robot, state, by, extra={"run_id": str(run_id)})
        if self.events.has_subscribers(TOPIC):
            self.events.publish(TOPIC, out.model_dump(mode="json"))
        return out

    async def _read(self, run_id: int) -> RunOut:
        return await asyncio.to_thread(self.get_run, system_principal(), run_id)

    async def _wait_ended(self, run_id: int, seconds: float) -> None:
        deadline = asyncio.get_running_loop().time() + seconds
        while (await self._read(run_id)).state in ACTIVE:
            if asyncio.get_running_loop().time() > deadline:
                return
            await asyncio.sleep(0.1)

    def _timer(self, run_id: int, seconds: float, job: Callable[[], Awaitable[None]]) -> None:
        previous = self._timers.pop(run_id, None)
        if previous is not None:
            previous.cancel()

        async def later() -> None:
            await asyncio.sleep(seconds)
            await job()

        self._timers[run_id] = asyncio.get_running_loop().create_task(later())

    async def _kill_after_timeout(self, run_id: int) -> None:
        current = await self._read(run_id)
        if current.state == STOPPING:
            log.warning("run %s did not stop in time: killing it", run_id)
            self._killing.discard(run_id)  # still ends as "stopped": the stop was asked for, the kill enforced it
            with_agent = current.agent
            try:
                await self.hub.command(with_agent, "process.signal", {"run_id": str(run_id), "action": "kill"})
            except RobofleetError as exc:
                log.warning("could not kill run %s: %s", run_id, exc.message)

    async def _stop_at_max_runtime(self, run_id: int) -> None:
        current = await self._read(run_id)
        if current.state in (RUNNING, PAUSED):
            log.warning("run %s reached its robot's max_runtime: stopping it", run_id)
            await self.act(system_principal("max_runtime"), run_id, "stop")


__all__ = ["STOPPED", "RobotsService"]
