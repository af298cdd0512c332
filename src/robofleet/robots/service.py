"""Robots and their runs: the only code that changes them. Run transitions follow DESIGN.md:
queued → starting → running ⇄ paused → stopping → succeeded | failed | stopped | killed | lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from robofleet.agents.hub import AgentHub, CommandFailed
from robofleet.auth.audit import audited
from robofleet.auth.permissions import RobotRef
from robofleet.auth.principal import RUN_USER, Principal, RunBinding, system_principal
from robofleet.auth.schemas import TokenCreate
from robofleet.auth.tokens import create_token, revoke_token
from robofleet.auth.users import ensure_service_user
from robofleet.errors import Conflict, NotFound, RobofleetError
from robofleet.events import EventHub
from robofleet.logs.filters import Filters
from robofleet.logs.service import LogService
from robofleet.robots import run_stats, store_ops
from robofleet.robots.command_line import (
    COMMAND_FIELDS,
    RELOCATING_FIELDS,
    command_changes,
    refuse_carried_secrets,
    require_define,
)
from robofleet.robots.masking import unmasked
from robofleet.robots.models import (
    ACTIVE,
    FAILED,
    KILLED,
    LOST,
    PAUSED,
    QUEUED,
    RUNNING,
    STARTING,
    STOPPED,
    STOPPING,
    SUCCEEDED,
    Robot,
    Run,
)
from robofleet.robots.pausing import Pauses
from robofleet.robots.reasons import describe_actor, end_reason, logged_reason
from robofleet.robots.restarts import policy_of, restart_delay
from robofleet.robots.schemas import RobotCreate, RobotOut, RobotUpdate, RunFilter, RunOut
from robofleet.robots.store_ops import RobotScope, ref
from robofleet.runtime import Loop, Tasks, Timers
from robofleet.settings.declared import read_declared
from robofleet.store import Store
from robofleet.store.base import utcnow
from robofleet.store.pagination import Page, paginate

log = logging.getLogger(__name__)
TOPIC = "runs"
ACTIONS = ("pause", "resume", "stop", "kill")
# The deadline loop's pass when no deadline is near: a timer wakes it at the next one, this is the safety net.
DEADLINE_PASS_SECONDS = 5.0
# A kill at a stop deadline that could not reach the agent is tried again this much later.
KILL_RETRY_SECONDS = 5.0
Also = Callable[[Session, Run], None]  # more of the same transaction as a run's change
FAILURES = (FAILED, KILLED, LOST)  # ends logged at ERROR, with their reason
START_SECONDS = 30.0  # how long an agent may take to start a robot's process (plus its session's wait)


class SessionDirectory(Protocol):
    """What robots ask of graphical sessions (robofleet/sessions/service.py answers; it sets itself as
    `RobotsService.sessions` when it starts, so that robots never import it)."""

    @property
    def session_wait_seconds(self) -> float: ...

    def check_robot_session(self, session: str, agent: str) -> None:
        """Nothing when `session` is a session on `agent`; Invalid (422 naming the field) otherwise."""

    def spec_for_run(self, session: str, agent: str) -> Any:
        """The session as process.start carries it; a RobofleetError when it cannot be used."""


class RobotsService:
    def __init__(
        self,
        store: Store,
        hub: AgentHub,
        events: EventHub,
        *,
        server_url: str,
        agent_grace_seconds: float = 30.0,
        logs: LogService | None = None,
    ) -> None:
        self.store = store
        self.logs = logs  # read for what a failed run's robot logged at ERROR through the SDK (not on its stderr)
        self.hub = hub
        self.events = events
        self.server_url = server_url
        self.agent_grace_seconds = agent_grace_seconds
        self.tasks = Tasks()  # agents gone, watched for their grace period
        self.timers = Timers()
        self.deadlines = Loop("robots-deadlines", DEADLINE_PASS_SECONDS, self.enforce_deadlines)
        self.pauses = Pauses(hub, self._update)
        self.sessions: SessionDirectory | None = None  # set by the sessions service while it runs

    async def startup(self) -> None:
        """Enforce the stored deadlines (also those that passed while `serve` was down), and lose the runs of
        remote agents that do not come back within their grace period."""
        await asyncio.to_thread(self.revoke_leftover_tokens)
        await asyncio.to_thread(self._ensure_run_user)
        self.deadlines.start()
        agents = await asyncio.to_thread(self._read_only, store_ops.agents_with_active_runs)
        for agent in agents:
            if agent not in self.hub.agents:
                self.watch_gone(agent)

    async def stop(self) -> None:
        """Cancel the loop, timers and tasks this service started; the runs themselves go on (and their deadlines
        stay stored for the next start)."""
        await self.deadlines.stop()
        await self.timers.stop()
        await self.tasks.stop()
        await self.pauses.stop()

    def _read_only(self, query: Any) -> Any:
        with self.store.transaction() as session:
            return query(session)

    # ---- definitions (plain functions of the store; the API runs them in threads) ---------------------------

    def list_robots(self, principal: Principal, *, limit: int, cursor: str | None) -> Page[RobotOut]:
        principal.require("robots:read")
        with self.store.transaction() as session:
            page = paginate(session, store_ops.robots_page_query(), Robot.id, limit=limit, cursor=cursor)
            visible = [store_ops.robot_out(r) for r in page.items if principal.can("robots:read", ref(r))]
            return Page(visible, page.next_cursor)

    def get_robot(self, principal: Principal, name: str) -> RobotOut:
        with self.store.transaction() as session:
            robot = store_ops.find_robot(session, name)
            require_on(principal, "robots:read", ref(robot), no_robot(name))
            return store_ops.robot_out(robot)

    def create_robot(self, principal: Principal, data: RobotCreate, *, from_config: bool = False) -> RobotOut:
        with audited(self.store, principal, "robot.create", data.name) as session:
            principal.require("robots:write", RobotRef(data.name, tuple(data.tags)))
            require_define(principal, data.name, list(COMMAND_FIELDS), creating=True)
            if store_ops.robot_exists(session, data.name):
                raise Conflict(f"a robot named {data.name!r} exists already", details={"robot": data.name})
            if data.session:
                self._check_session(data.session, data.agent)
            unmasked(data.env, {})  # a mask copied from another robot stands for nothing here
            robot = Robot(
                **data.model_dump(exclude={"restart"}), restart=data.restart.model_dump(), from_config=from_config
            )
            session.add(robot)
            session.flush()
            return store_ops.robot_out(robot)

    def apply_config(self, declared: list[Any]) -> None:
        """Robots of the settings file: created or brought up to date at every start, marked from config."""
        principal = system_principal("config")
        for item in declared:
            data = read_declared(RobotCreate, item, "robots")
            if self._read_only(lambda session, name=data.name: store_ops.robot_exists(session, name)):
                self.update_robot(principal, data.name, RobotUpdate(**data.model_dump(exclude={"name"})))
            else:
                self.create_robot(principal, data, from_config=True)

    def update_robot(self, principal: Principal, name: str, data: RobotUpdate) -> RobotOut:
        changes = data.model_dump(exclude_unset=True)
        with audited(self.store, principal, "robot.update", name, {"fields": sorted(changes)}) as session:
            robot = store_ops.find_robot(session, name)
            require_on(principal, "robots:write", ref(robot), no_robot(name))
            if data.env is not None:
                changes["env"] = unmasked(data.env, robot.env)  # what GET showed, sent back: the secrets stay
            changed = command_changes({key: getattr(robot, key) for key in COMMAND_FIELDS}, changes)
            require_define(principal, name, changed)
            named: str | None = changes.get("session", robot.session)
            if ("session" in changes or "agent" in changes) and named:
                self._check_session(named, changes.get("agent", robot.agent))
            moved = [key for key in changed if key in RELOCATING_FIELDS]
            if moved:
                refuse_carried_secrets(robot.env, data.env if "env" in changes else None, moved)
            for key, value in changes.items():
                setattr(robot, key, value)
            if data.restart is not None:
                robot.restart = data.restart.model_dump()
            session.flush()
            return store_ops.robot_out(robot)

    def _check_session(self, session: str, agent: str) -> None:
        """A robot's session must be a session on the robot's agent (422 otherwise). Robots of the settings file
        are applied before sessions run: their session is checked when a run starts."""
        if self.sessions is not None:
            self.sessions.check_robot_session(session, agent)

    def robots_naming_session(self, session: str) -> list[str]:
        """The robots whose runs get `session`'s display, by name."""
        with self.store.transaction() as db:
            return sorted(robot.name for robot in db.scalars(store_ops.robots_page_query()) if robot.session == session)

    def runs_under_session(self, session: str, ended_since: datetime) -> list[tuple[int, str]]:
        """(run id, robot) of the runs of the robots naming `session` that are active, or ended at or after
        `ended_since` (a robot whose display died usually ends at once, before the watchdog saw the death)."""
        robots = self.robots_naming_session(session)
        found: list[tuple[int, str]] = []
        with self.store.transaction() as db:
            for name in robots:
                newest = db.scalars(store_ops.runs_query(name, None, None).order_by(Run.id.desc()).limit(20))
                found += [
                    (run.id, name)
                    for run in newest
                    if run.state in ACTIVE or (run.ended_at is not None and run.ended_at >= ended_since)
                ]
        return found

    def delete_robot(self, principal: Principal, name: str) -> None:
        with audited(self.store, principal, "robot.delete", name) as session:
            robot = store_ops.find_robot(session, name)
            require_on(principal, "robots:write", ref(robot), no_robot(name))
            if store_ops.count_active(session, name):
                raise Conflict(f"robot {name!r} has active runs; stop them first", details={"robot": name})
            session.delete(robot)

    def list_runs(
        self,
        principal: Principal,
        *,
        robot: str | None,
        state: str | None,
        limit: int,
        cursor: str | None,
        where: RunFilter | None = None,
    ) -> Page[RunOut]:
        """Runs of the robots `principal` may see, newest first, of `robot` in `state` (None: any) and matching
        `where`; a page at a time."""
        principal.require("robots:read")
        with self.store.transaction() as session:
            scope = store_ops.robot_scope_of(session, principal, "robots:read")
            stmt = store_ops.runs_query(robot, state, None if scope is None else scope.names, where)
            page = paginate(session, stmt, Run.id, limit=limit, cursor=cursor, descending=True)
            return Page([store_ops.run_out(r) for r in page.items], page.next_cursor)

    def get_run(self, principal: Principal, run_id: int) -> RunOut:
        principal.require("robots:read")
        with self.store.transaction() as session:
            run = store_ops.find_run(session, run_id)
            require_on(principal, "robots:read", store_ops.robot_of_run(session, run), no_run(run_id))
            return store_ops.run_out(run)

    def robot_scope(self, principal: Principal, permission: str = "robots:read") -> RobotScope | None:
        """The one answer to "which robots may this caller see or touch with `permission`": None for every robot,
        else the robots allowed by name glob or tag (runs, logs and the live streams all narrow by it)."""
        with self.store.transaction() as session:
            return store_ops.robot_scope_of(session, principal, permission)

    def visible_robots(self, principal: Principal) -> frozenset[str] | None:
        """The robots whose runs `principal` may see, when its robots:read is narrowed (None: every robot's)."""
        scope = self.robot_scope(principal)
        return None if scope is None else scope.names

    def dashboard(self, principal: Principal, now: datetime | None = None) -> run_stats.Dashboard:
        """The dashboard's figures (robots/run_stats.py) over the runs `principal` may see."""
        principal.require("robots:read")
        with self.store.transaction() as session:
            scope = store_ops.robot_scope_of(session, principal, "robots:read")
            return run_stats.dashboard(session, now or utcnow(), None if scope is None else scope.names)

    def run_counts(self) -> list[tuple[str, str, int]]:
        """Every robot's runs by state: (robot, state, runs), for /metrics (which checks its caller)."""
        with self.store.transaction() as session:
            return run_stats.runs_by_robot_and_state(session)

    # ---- lifecycle ------------------------------------------------------------------------------------------

    async def start(self, principal: Principal, name: str, *, manual: bool = True) -> RunOut:
        """A new run of `name`, running when this returns; Conflict past max_concurrent or with the agent offline."""

        def prepare() -> tuple[int, dict[str, Any]]:
            with audited(self.store, principal, "robot.start", name) as session:
                robot = store_ops.lock_robot(session, name)  # until the run is inserted: max_concurrent holds
                require_on(principal, "robots:start", ref(robot), no_robot(name))
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
                    state=QUEUED,
                    manual=manual,
                    requested_by=principal.actor,
                    created_at=now,
                    transitions=[],
                )
                store_ops.transition(run, STARTING, now, principal.actor)
                robot.manual_stop = False
                robot.restart_at = None  # a start, manual or planned, replaces a planned restart
                session.add(run)
                session.flush()
                spec = {
                    "agent": robot.agent,
                    "argv": robot.argv,
                    "cwd": robot.cwd,
                    "env": robot.env,
                    "max_runtime": robot.max_runtime,
                    "keep_leftovers": robot.keep_leftovers,
                    "session": robot.session,
                }
                return run.id, spec

        run_id, spec = await asyncio.to_thread(prepare)
        display: dict[str, Any] = {}
        if spec["session"]:
            try:
                display = await asyncio.to_thread(self._session_args, spec["session"], spec["agent"])
            except RobofleetError as exc:
                await self._finish(run_id, FAILED, "system", only_from=(STARTING,), error=exc.message)
                raise
        try:
            token = await asyncio.to_thread(self._run_token, run_id, name, spec["max_runtime"])
        except Exception as exc:
            # A run left "starting" would count against max_concurrent for ever.
            reason = exc.message if isinstance(exc, RobofleetError) else type(exc).__name__
            await self._finish(run_id, FAILED, "system", only_from=(STARTING,), error=f"no run token: {reason}")
            raise
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
                    "keep_leftovers": spec["keep_leftovers"],
                    **display,
                },
                within=START_SECONDS + float(display.get("session_wait_seconds", 0)),
            )
        except RobofleetError as exc:
            await self._finish(run_id, FAILED, "system", only_from=(STARTING,), error=exc.message)
            details = exc.details if isinstance(exc.details, dict) else {}
            if isinstance(exc, CommandFailed) and details.get("code") == "session_unhealthy":
                # Not the robot's command: its session, which may well be healthy at the next try.
                raise Conflict(exc.message, details={"robot": name, "run": run_id}, code="session_unhealthy") from None
            raise
        now = utcnow()
        deadline = now + timedelta(seconds=spec["max_runtime"]) if spec["max_runtime"] else None
        kill_asked: list[bool] = []
        out = await self._update(
            run_id,
            principal.actor,
            state=RUNNING,
            only_from=(STARTING,),
            also=lambda _session, run: kill_asked.append(run.kill_requested_by is not None),
            pid=started.get("robot_pid") or started["pid"],
            shim_pid=started["pid"],
            started_at=now,
            runtime_deadline=deadline,
        )
        if kill_asked and kill_asked[0]:
            # Killed while it was starting: the agent did not know the run yet, so the kill is sent now.
            try:
                await self.hub.command(spec["agent"], "process.signal", {"run_id": str(run_id), "action": "kill"})
            except RobofleetError as exc:  # kept as its pending kill, carried out when the agent answers again
                log.warning("run %s: the kill asked while it started is not sent yet: %s", run_id, exc.message)
                await self._pend(run_id, "kill", "system")
        if out is None:
            # Ended (a robot that exits at once can be reported before this answer is stored), killed or lost while
            # it was starting: that state stands, with the start's facts.
            pid, shim_pid = started.get("robot_pid") or started["pid"], started["pid"]

            def facts(session: Session, run: Run) -> None:
                run.pid, run.shim_pid = pid, shim_pid
                run.started_at = run.started_at or now

            return await self._update(run_id, principal.actor, also=facts) or await self._read(run_id)
        if deadline is not None:
            self._wake_at(deadline)
        return out

    def _session_args(self, session: str, agent: str) -> dict[str, Any]:
        """What process.start carries for a robot with a session: the agent ensures it and waits for it to be healthy
        (the run fails with the reason when it is not in time), then gives the robot its DISPLAY."""
        if self.sessions is None:
            raise Conflict(
                f"session {session!r} cannot be kept: graphical sessions are not running", code="session_unhealthy"
            )
        return {
            "session": self.sessions.spec_for_run(session, agent),
            "session_wait_seconds": self.sessions.session_wait_seconds,
        }

    def _run_token(self, run_id: int, robot: str, max_runtime: float | None) -> str:
        """A token for the run alone: robot permissions (its logs, its queue items) as that robot and run only,
        expiring with the run at the latest, revoked when it ends (its id is stored with the run, so a restart of
        `serve` in between forgets nothing). Owned by the built-in user `robot-runs`, which cannot log in."""
        robots = system_principal("robots")
        self._ensure_run_user()
        lifetime_days = ((max_runtime or 86_400) + 3600) / 86_400
        made = create_token(
            self.store,
            robots,
            TokenCreate(
                user=RUN_USER, name=f"run {run_id}", scopes=["logs:write", "queues:*"], expires_in_days=lifetime_days
            ),
            run=RunBinding(run_id, robot),
        )
        with self.store.transaction() as session:
            store_ops.find_run(session, run_id).token_id = made.id
        return made.token

    def _ensure_run_user(self) -> None:
        """The built-in owner of run tokens exists; two first starts at once may both create it: one wins."""
        try:
            ensure_service_user(self.store, system_principal("robots"), RUN_USER, ["robot"])
        except IntegrityError:
            ensure_service_user(self.store, system_principal("robots"), RUN_USER, ["robot"])

    async def act(self, principal: Principal, run_id: int, action: str) -> RunOut:
        """pause | resume | stop (safe) | kill on one run; 409 when its state does not allow it."""
        if action not in ACTIONS:
            raise Conflict(f"unknown action {action!r}")

        def check() -> tuple[Run, Robot | None]:
            with audited(self.store, principal, f"run.{action}", str(run_id)) as session:
                run = store_ops.find_run(session, run_id)
                robot = session.get(Robot, run.robot_id) if run.robot_id else None
                require_on(principal, "robots:stop", ref(robot) if robot else RobotRef(run.robot), no_run(run_id))
                allowed = {
                    "pause": (RUNNING,),
                    "resume": (PAUSED,),
                    "stop": (RUNNING, PAUSED),
                    "kill": (STARTING, RUNNING, PAUSED, STOPPING),
                }[action]
                calling_off = action == "resume" and run.pause_asked_at is not None  # still on its way there
                # A lost run's agent may come back with it alive: a stop or kill asked meanwhile waits for it.
                awaiting = action in ("stop", "kill") and run.state == LOST and run.agent not in self.hub.agents
                if run.state not in allowed and not calling_off and not awaiting:
                    raise Conflict(
                        f"run {run_id} is {run.state}: it cannot {action} now",
                        details={"state": run.state, "action": action},
                    )
                if action in ("stop", "kill") and robot is not None:
                    robot.manual_stop = True  # remembered: the scheduler leaves it alone until a manual start
                    robot.restart_at = None
                if action == "kill":
                    run.kill_requested_by = principal.actor  # stored: its end is "killed" after a restart too
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
        if run.state == LOST:
            return await self._pend(run_id, action, principal.actor)
        if action == "stop":
            # Stopping and its deadline are stored before the signal goes out: a robot that exits at once must end
            # "stopped", and a restart of serve meanwhile must still kill it at the deadline.
            deadline = utcnow() + timedelta(seconds=robot.safe_stop_timeout if robot else 30.0)
            out = await self._update(
                run_id,
                principal.actor,
                state=STOPPING,
                only_from=(RUNNING, PAUSED),
                stop_requested_by=principal.actor,
                stop_deadline=deadline,
            )
            if out is None:
                return await self._read(run_id)  # it ended meanwhile
            self._wake_at(deadline)
            try:
                await self.hub.command(run.agent, "process.signal", {**command, "action": "terminate"})
            except Conflict as exc:
                if exc.code != "agent_offline":
                    raise
                return await self._pend(run_id, action, principal.actor)
            return out
        try:
            await self.hub.command(run.agent, "process.signal", command)
        except Conflict as exc:
            if exc.code != "agent_offline":
                raise
            return await self._pend(run_id, action, principal.actor)
        except CommandFailed:
            if run.state != STARTING:
                raise
            # The agent does not know the run yet: its start sends the kill (stored above) once it is running.
        return await self._read(run_id)

    async def _pend(self, run_id: int, action: str, by: str) -> RunOut:
        """The run's agent is away: the stop or kill is stored as its pending action (`runs.pending_action`) and
        carried out by the deadline loop once the agent is back (`carry_out`); a stop's deadline starts then."""
        log.warning(
            "run %s: its agent is offline; the %s is carried out when it is back",
            run_id,
            action,
            extra={"run_id": str(run_id)},
        )
        fields: dict[str, Any] = {"pending_action": action, "stop_deadline": None}
        if action == "stop":
            fields["stop_requested_by"] = by
        out = await self._update(run_id, by, only_from=(*ACTIVE, LOST), **fields)
        return out or await self._read(run_id)

    async def carry_out(self, intent: store_ops.PendingIntent) -> None:
        """Send a stop or kill asked while the run's agent was away, now that it is connected. Sent, it is no longer
        pending and a stop's deadline starts; the agent away again (or silent), it stays pending for the next pass;
        the agent answering that it has no such run, there is nothing left to end (the run stays as it is)."""
        args = {"run_id": str(intent.run_id), "action": "terminate" if intent.action == "stop" else "kill"}
        extra = {"run_id": str(intent.run_id)}
        try:
            await self.hub.command(intent.agent, "process.signal", args)
        except CommandFailed as exc:
            log.warning("run %s: the pending %s found nothing to end: %s", intent.run_id, intent.action, exc.message)
        except RobofleetError as exc:
            log.warning("run %s: the pending %s waits: %s", intent.run_id, intent.action, exc.message, extra=extra)
            return
        else:
            log.info("run %s: the %s asked while its agent was away is sent", intent.run_id, intent.action, extra=extra)
        fields: dict[str, Any] = {"pending_action": None}
        if intent.action == "stop" and intent.state == STOPPING:
            fields["stop_deadline"] = deadline = utcnow() + timedelta(seconds=intent.safe_stop_timeout)
            self._wake_at(deadline)
        await self._update(intent.run_id, "system", only_from=(*ACTIVE, LOST), **fields)

    async def act_on_robot(self, principal: Principal, name: str, action: str) -> list[RunOut]:
        def runs() -> list[int]:
            with self.store.transaction() as session:
                robot = store_ops.find_robot(session, name)
                require_on(principal, "robots:stop", ref(robot), no_robot(name))
                return [run.id for run in store_ops.active_runs(session, name)]

        ids = await asyncio.to_thread(runs)
        if not ids:
            raise Conflict(f"robot {name!r} has no active run to {action}", details={"robot": name})
        return [await self.act(principal, run_id, action) for run_id in ids]

    async def restart(self, principal: Principal, name: str) -> RunOut:
        """Safe stop of every active run, then a new start; Conflict (agent_offline) up front, nothing stopped, when
        the robot's agent is away (its stop could wait for the agent, its start cannot)."""

        def check() -> str:
            with self.store.transaction() as session:
                found = store_ops.find_robot(session, name)
                robot = ref(found)
                require_on(principal, "robots:start", robot, no_robot(name))
                require_on(principal, "robots:stop", robot, no_robot(name))
                return found.agent

        self.hub.require(await asyncio.to_thread(check))
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

    def run_agent(self, run_id: str) -> str | None:
        """The name of the agent run `run_id` was started on (it never changes), None when there is no such run (or
        `run_id` is no run number). One primary-key read: blocking, so the event loop asks it in a thread; raises
        StoreUnavailable when the store cannot answer."""
        number = store_ops.run_number(run_id)
        if number is None:
            return None
        with self.store.transaction() as session:
            return store_ops.agent_of_run(session, number)

    async def run_exited(self, agent: str, run_id: str, outcome: dict[str, Any]) -> None:
        """The agent saw the process end: the run's final state follows from how it was asked to end (a kill or a
        stop, as stored), else from its exit code. `outcome["leftovers"]`: processes it left behind, ended. An end
        reported by another agent than the run's is ignored (logged): an agent reports on its own runs only."""
        number = store_ops.run_number(run_id)
        if number is None:
            log.warning("agent %s reported the end of run %r, which is no run number: ignored", agent, run_id[:40])
            return

        def decide() -> tuple[str, str, str | None] | None:
            with self.store.transaction() as session:
                run = store_ops.find_run(session, number)
                if run.agent != agent:
                    log.warning(
                        "agent %s reported the end of run %s, which runs on agent %s: ignored", agent, number, run.agent
                    )
                    return None
                if run.state not in (*ACTIVE, LOST):  # a lost run whose end the returning agent reports is settled
                    return None
                code = outcome.get("exit_code")
                if run.kill_requested_by is not None:
                    state = KILLED
                elif run.state == STOPPING or (run.state == LOST and run.stop_requested_by is not None):
                    state = STOPPED
                else:
                    state = SUCCEEDED if code == 0 else FAILED
                # A lost run's reason was its agent's absence: the agent is back and says how it really ended.
                known = None if run.state == LOST else run.error
                reason = end_reason(state, outcome, kill_requested_by=run.kill_requested_by, known=known)
                if run.state == STARTING:
                    # It ran: its end came before its start's answer was stored (which then adds its pid).
                    store_ops.transition(run, RUNNING, utcnow(), "agent:" + agent)
                    run.started_at = run.started_at or utcnow()
                return state, run.robot, reason

        said = outcome.get("last_error") or outcome.get("spawn_error")
        if outcome.get("exit_code") != 0 and not said and self.logs is not None:
            # What the robot logged through the SDK is not on its stderr: the log store has it (stored by now).
            logged = await asyncio.to_thread(last_logged_error, self.logs, number)
            if logged is not None:
                outcome = {**outcome, "last_error": logged}
        decided = await asyncio.to_thread(decide)
        if decided is None:
            return
        state, robot, reason = decided
        leftovers = outcome.get("leftovers")
        planned: list[datetime] = []

        def plan(session: Session, run: Run) -> None:
            # In the transaction of the failure: a crash right after it cannot lose the restart.
            at = plan_restart(session, robot, utcnow())
            if at is not None:
                planned.append(at)

        await self._finish(
            number,
            state,
            "agent:" + agent,
            only_from=(*ACTIVE, LOST),
            also=plan if state == FAILED else None,
            exit_code=outcome.get("exit_code"),
            leftovers=leftovers if isinstance(leftovers, int) else None,
            error=reason,
        )
        if planned:
            self._wake_at(planned[0])

    def watch_gone(self, agent: str, grace_seconds: float | None = None) -> None:
        """`agent` is offline: its active runs are lost unless it is back within its grace period."""
        grace = self.agent_grace_seconds if grace_seconds is None else grace_seconds
        self.tasks.spawn(self.agent_gone(agent, grace), name=f"agent {agent} gone")

    async def agent_gone(self, agent: str, grace_seconds: float) -> None:
        """An agent disconnected: if it is not back within the grace period, its active runs are lost."""
        await asyncio.sleep(grace_seconds)
        if agent in self.hub.agents:
            return
        ids = await asyncio.to_thread(self._read_only, lambda session: store_ops.active_run_ids(session, agent=agent))
        for run_id in ids:
            await self.mark_lost(run_id, f"agent {agent} was gone for more than {grace_seconds:g} s")

    async def agent_back(self, agent: str, runs: list[dict[str, Any]]) -> None:
        """An agent said hello: its lost runs whose process still lives are adopted again, and the pauses of its
        runs recorded as they really are (a restart may have come between a command and its record)."""
        alive = {str(run["run_id"]) for run in runs if run.get("alive")}
        lost = await asyncio.to_thread(self._read_only, lambda session: store_ops.lost_runs(session, agent))
        for run_id, ending, safe_stop_timeout in lost:
            if str(run_id) not in alive:
                continue
            if ending:  # a stop or kill was asked while it was away: it stands (the deadline loop sends it)
                deadline = utcnow() + timedelta(seconds=safe_stop_timeout)
                await self._update(
                    run_id,
                    f"agent:{agent}",
                    state=STOPPING,
                    only_from=(LOST,),
                    ended_at=None,
                    error=None,
                    stop_deadline=deadline,
                )
                self._wake_at(deadline)
            else:
                await self._update(
                    run_id, f"agent:{agent}", state=RUNNING, only_from=(LOST,), ended_at=None, error=None
                )
        self.deadlines.wake()  # stops and kills asked while it was away go out now

        def live(session: Session) -> dict[str, store_ops.PauseRecord]:
            return store_ops.pause_records(session, agent)

        await self.pauses.settle(agent, runs, await asyncio.to_thread(self._read_only, live))

    async def runs_vanished(self, agent: str, known: set[str], reason: str) -> None:
        """`agent` started again knowing only the runs `known`: its other active runs are lost."""
        ids = await asyncio.to_thread(self._read_only, lambda session: store_ops.active_run_ids(session, agent=agent))
        for run_id in ids:
            if str(run_id) not in known:
                await self.mark_lost(run_id, reason)

    async def mark_lost(self, run_id: int, reason: str) -> None:
        await self._finish(run_id, LOST, "system", only_from=ACTIVE, error=reason)

    # ---- stored deadlines -------------------------------------------------------------------------------------

    async def enforce_deadlines(self) -> None:
        """One pass of the deadline loop: a stopping run past its stop deadline is killed (it still ends
        "stopped": the stop was asked, the kill enforced it); a running or paused run past its max runtime is
        stopped safely; a robot whose planned restart is due starts. Then the loop is woken at the next deadline."""
        now = utcnow()
        due = await asyncio.to_thread(self._read_only, lambda session: store_ops.deadlines_due(session, now))
        for run in due:
            if run.state == STOPPING and run.stop_deadline is not None and run.stop_deadline <= now:
                await self._kill_at_stop_deadline(run.run_id)
            elif run.state in (RUNNING, PAUSED) and run.runtime_deadline is not None and run.runtime_deadline <= now:
                log.warning("run %s reached its robot's max_runtime: stopping it", run.run_id)
                try:
                    await self.act(system_principal("max_runtime"), run.run_id, "stop")
                except RobofleetError as exc:
                    log.warning("could not stop run %s at its max_runtime: %s", run.run_id, exc.message)
                    await self._update(run.run_id, "max_runtime", runtime_deadline=now + _retry())
        for intent in await asyncio.to_thread(self._read_only, store_ops.pending_intents):
            if intent.agent in self.hub.agents:
                await self.carry_out(intent)
        for name in await asyncio.to_thread(self._read_only, lambda session: store_ops.restarts_due(session, now)):
            try:
                await self.start(system_principal("restart-policy"), name, manual=False)
            except RobofleetError as exc:
                log.warning("restart of %s failed: %s", name, exc.message)
        upcoming = await asyncio.to_thread(self._read_only, store_ops.next_deadline)
        if upcoming is not None:
            self._wake_at(upcoming)

    async def _kill_at_stop_deadline(self, run_id: int) -> None:
        current = await self._read(run_id)
        facts = await asyncio.to_thread(self._read_only, lambda session: store_ops.stop_facts(session, run_id))
        log.warning("run %s did not stop in time: killing it", run_id)
        asked = f" asked by {describe_actor(facts.stop_requested_by)}" if facts.stop_requested_by else ""
        reason = (
            f"killed by SIGKILL at the safe-stop timeout: it did not stop within {facts.timeout:g} s of the stop{asked}"
        )
        # Stored before the kill is sent: the agent's report of the end (still "stopped": the stop was asked, the
        # kill enforced it) may be handled before the command's answer, and the end keeps the reason it finds.
        if await self._update(run_id, "system", only_from=(STOPPING,), error=reason) is None:
            return  # it ended meanwhile, by itself
        try:
            await self.hub.command(current.agent, "process.signal", {"run_id": str(run_id), "action": "kill"})
        except RobofleetError as exc:
            log.warning("could not kill run %s: %s; trying again", run_id, exc.message)
            await self._update(run_id, "system", only_from=(STOPPING,), error=None, stop_deadline=utcnow() + _retry())
            return
        # Done: a deadline left would kill it again at every pass.
        await self._update(run_id, "system", only_from=(STOPPING,), stop_deadline=None)

    def _wake_at(self, deadline: datetime) -> None:
        self.timers.set("next-deadline", (deadline - utcnow()).total_seconds(), self._wake_deadlines)

    async def _wake_deadlines(self) -> None:
        self.deadlines.wake()

    # ---- helpers ----------------------------------------------------------------------------------------------

    async def _finish(
        self,
        run_id: int,
        state: str,
        by: str,
        *,
        only_from: tuple[str, ...],
        also: Also | None = None,
        **fields: Any,
    ) -> RunOut | None:
        """The run's end, with its token revoked and its deadlines cleared; None when it was no longer in one of
        the states `only_from` (ended meanwhile)."""
        self.pauses.cancel(run_id)
        if state != LOST:  # a lost run keeps a pending stop or kill: its agent may come back with it alive
            fields.setdefault("pending_action", None)
        reason = fields.get("error")
        out = await self._update(
            run_id,
            by,
            state=state,
            only_from=only_from,
            note={"reason": reason} if reason else None,
            ended_at=utcnow(),
            stop_deadline=None,
            runtime_deadline=None,
            also=also,
            **fields,
        )
        if out is not None:
            await asyncio.to_thread(self._revoke_run_token, run_id)
        return out

    def _revoke_run_token(self, run_id: int) -> None:
        """Revoke the ended run's token, then forget it: a crash between the two revokes it again at the next
        start (`revoke_leftover_tokens`), never leaves it valid."""
        with self.store.transaction() as session:
            token_id = store_ops.find_run(session, run_id).token_id
        if token_id is None:
            return
        revoke_token(self.store, system_principal("robots"), token_id)
        with self.store.transaction() as session:
            store_ops.find_run(session, run_id).token_id = None

    def revoke_leftover_tokens(self) -> int:
        """Revoke the tokens of runs that ended without it (serve killed between a run's end and the revoke)."""
        ended = self._read_only(store_ops.ended_with_token)
        for run_id in ended:
            self._revoke_run_token(run_id)
        return len(ended)

    async def _update(
        self,
        run_id: int,
        by: str,
        *,
        state: str | None = None,
        only_from: tuple[str, ...] | None = None,
        note: dict[str, Any] | None = None,
        also: Also | None = None,
        **fields: Any,
    ) -> RunOut | None:
        """A transition to `state` (or, without one, a change of `fields` only), and `also` in the same
        transaction; None, changing nothing, when the run is no longer in one of the states `only_from`."""

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
                if also is not None:
                    also(session, run)
                return store_ops.run_out(run)

        out = await asyncio.to_thread(write)
        if out is None:
            return None
        if state in FAILURES:
            log.error(
                "run %s of %s is %s: %s (%s)", run_id, out.robot, state, out.error, by, extra={"run_id": str(run_id)}
            )
        elif state is not None:
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


def last_logged_error(logs: LogService, run_id: int) -> str | None:
    """The reason in the newest record at ERROR or worse that run `run_id`'s robot logged, None when it logged none
    (or the log store cannot answer now: the run's reason is then its exit alone)."""
    filters = Filters(run_id=str(run_id), source="robot:*", min_level=logging.ERROR)
    try:
        found = logs.search(filters, limit=1, cursor=None, order="desc")
    except RobofleetError as exc:
        log.warning("run %s: its logged errors could not be read: %s", run_id, exc.message)
        return None
    return logged_reason(found["items"][0]["message"]) if found["items"] else None


def require_on(principal: Principal, permission: str, robot: RobotRef, hidden: NotFound) -> None:
    """Nothing when `principal` holds `permission` on `robot`; Forbidden when it may see the robot (robots:read) but
    not do this; `hidden` (the answer for no such robot or run) when the robot is outside its scope: a refusal would
    tell that a robot of that name exists."""
    if principal.can(permission, robot):
        return
    if principal.can("robots:read", robot):
        principal.require(permission, robot)
    raise hidden


def no_robot(name: str) -> NotFound:
    return NotFound(f"no robot named {name!r}", details={"robot": name})


def no_run(run_id: int) -> NotFound:
    return NotFound(f"no run {run_id}", details={"run": run_id})


def plan_restart(session: Session, name: str, now: datetime) -> datetime | None:
    """After a failure of robot `name`: its next start under the restart policy, stored with the robot (the
    deadline loop starts it then, also after a restart of serve); None when it is not to restart."""
    robot: Robot | None = session.scalar(store_ops.robot_query(name))
    if robot is None:
        return None
    policy = policy_of(robot.restart)
    failures = store_ops.recent_failures(session, name, now - timedelta(seconds=policy.window_seconds))
    delay = restart_delay(policy, manual_stop=robot.manual_stop, failures=failures)
    if delay is None:
        if policy.policy == "on-failure" and not robot.manual_stop:
            log.warning(
                "robot %s failed %d times in %.0f s: no more restarts until a manual start",
                name,
                failures,
                policy.window_seconds,
            )
        return None
    robot.restart_at = now + timedelta(seconds=delay)
    return robot.restart_at


def _retry() -> timedelta:
    return timedelta(seconds=KILL_RETRY_SECONDS)


__all__ = ["STOPPED", "RobotsService"]
