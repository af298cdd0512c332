"""Graphical sessions: the only code that changes them. Definitions are audited in their transaction (like queues);
their state is what their agent reports, stored by the sync loop.

The sync loop (every `sessions.check_seconds`) sends `session.sync` to each agent connected to this replica, with
that agent's enabled sessions: the agent keeps exactly those (its watchdog starts, checks and restarts them) and
answers with each one's state and the events it has not been asked for yet; a change is stored, written to the
session's history and published on the event hub (`TOPIC`, for the SSE stream and the panel). A session that no
replica has heard of for a while is its agent's: offline, so `unhealthy` with the reason "agent NAME is offline".
When a session stops being healthy under active runs of robots that name it, each such run says so in its log.

Screens and input go to the agent as commands (`AgentHub.command`); the evidence of failed runs is `evidence.py`'s,
an rdp session's connect, disconnect, logoff and reconnect are `rdp_ops.py`'s.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from robofleet.agents.hub import CommandFailed
from robofleet.auth.audit import audited, record_alone
from robofleet.auth.permissions import RobotRef, robot_scope
from robofleet.auth.principal import Principal, system_principal
from robofleet.errors import ConfigError, Conflict, Forbidden, Invalid, RobofleetError
from robofleet.runtime import Loop, Tasks
from robofleet.sessions import store_ops
from robofleet.sessions.evidence import Evidence
from robofleet.sessions.models import GraphicalSession
from robofleet.sessions.rdp_ops import RdpOperations, connection_facts, rdp_columns, rdp_spec
from robofleet.sessions.schemas import (
    CONTENT_TYPES,
    RDP_FIELDS,
    Click,
    Done,
    EvidenceOut,
    Keys,
    Screenshot,
    Scroll,
    SessionCreate,
    SessionEventOut,
    SessionOut,
    SessionUpdate,
    ShotRequest,
    Spec,
    State,
    Status,
    TypeText,
    check_kind,
)
from robofleet.settings.declared import read_declared
from robofleet.store.base import utcnow
from robofleet.store.pagination import Page, decode_cursor, encode_cursor

if TYPE_CHECKING:
    from robofleet.orchestrator import Orchestrator

log = logging.getLogger(__name__)
TOPIC = "sessions"
SYNC_SECONDS = 10.0  # the longest a sync may take: starting an Xvfb is quick, an agent that takes longer is stuck
SHOT_SECONDS = 10.0
INPUT_SECONDS = 15.0
# The agent types a character every 6 ms (and gives xdotool 10 s besides): a long text is waited for that much longer,
# so that the answer does not time out here while the agent is still typing.
TYPE_SECONDS_PER_CHARACTER = 0.01
RESTART_SECONDS = 30.0
# How often a session's `synced_at` is written while nothing else of it changes (a write per pass would be a write
# every check_seconds per session), and how long unheard of before its agent counts as offline.
SYNCED_WRITE_SECONDS = 5.0
OFFLINE_AFTER_SECONDS = 15.0
# A robot dies with its display at once; the agent's watchdog notices the death up to its check period later, and
# this server up to check_seconds after that: runs that ended this recently died with their session.
DIED_WITH_SESSION_SECONDS = 10.0
Input = Click | TypeText | Keys | Scroll
# An attach session hands a display that may be a logged-in user's desktop to whoever has sessions:control, and a
# window manager puts a terminal a right-click away: either is code execution as the agent's OS user, which robots
# keep behind agents:admin (robots/command_line.py). So defining one takes that too; its description and tags not.
REACH_PERMISSION = "agents:admin"
HARMLESS_FIELDS = frozenset({"description", "tags"})
# The agent's refusals of an rdp operation, answered as 409s with its code: the steps played but the client stayed
# (logoff_failed), another operation ended or replaced the client meanwhile (logoff_interrupted), a logoff is under
# way (busy), the session is not an rdp one (not_rdp).
RDP_REFUSALS = frozenset({"logoff_failed", "logoff_interrupted", "busy", "not_rdp"})


@dataclass(frozen=True)
class Change:
    """A session whose public shape changed in a store write, and whether it stopped being healthy then (why)."""

    out: SessionOut
    left_healthy: bool
    why: str | None = None


class SessionsService:
    """Built by the Domain's factory with the orchestrator (after the agent hub and the robots service)."""

    def __init__(self, app: Orchestrator) -> None:
        assert app.hub is not None and app.robots is not None, "sessions start after the agent hub and robots"
        self.app = app
        self.store = app.store
        self.settings = app.settings.sessions
        self.hub = app.hub
        self.robots = app.robots
        self.events = app.events
        self.loop = Loop("sessions-sync", self.settings.check_seconds, self.sync_once)
        self.tasks = Tasks()
        self.evidence = Evidence(self)
        self.rdp = RdpOperations(self)
        self.offline_after_seconds = max(OFFLINE_AFTER_SECONDS, 3 * self.settings.check_seconds)
        self._event_loop: asyncio.AbstractEventLoop | None = None
        # Per agent connected here: its process's instance and the highest event number stored of it. Sent with the
        # next sync, the agent leaves those events out of its answer (50 events a session, every few seconds).
        self._synced: dict[str, tuple[str, int]] = {}
        self._event_thread: int | None = None
        # Per agent: its operations' turn (an rdp intent, a restart) and how many began, so that a sync built
        # before one is not delivered after its command (`agent_turn`).
        self._turns: dict[str, asyncio.Lock] = {}
        self._operations: dict[str, int] = {}
        self._skipped: set[str] = set()  # agents a pass left alone during an operation: synced again after it

    async def startup(self) -> None:
        """Apply the settings file's sessions, answer the robots' questions about sessions, keep the sessions of
        the agents connected here, and collect failed runs' evidence."""
        self._event_loop = asyncio.get_running_loop()
        self._event_thread = threading.get_ident()
        await asyncio.to_thread(self.apply_config, self.settings.declared)
        self.robots.sessions = self
        # This service owns the sessions' sync, so it takes the agents' hints itself (the other listeners are the
        # composition root's): a session that changed on its agent is synced at once, not at the next pass.
        self.hub.listeners.sessions_changed = self._agent_nudged
        self.loop.start()
        await self.evidence.start()

    async def stop(self) -> None:
        """The loops end; the agents keep their displays (a restarted `serve` syncs the same sessions again)."""
        if self.robots.sessions is self:
            self.robots.sessions = None
        if self.hub.listeners.sessions_changed == self._agent_nudged:
            self.hub.listeners.sessions_changed = None
        await self.loop.stop()
        await self.evidence.stop()
        await self.tasks.stop()

    # ---- reading -------------------------------------------------------------------------------------------------

    def list_sessions(
        self,
        principal: Principal,
        *,
        limit: int,
        cursor: str | None,
        agent: str | None = None,
        state: State | None = None,
        tag: str | None = None,
    ) -> Page[SessionOut]:
        """The sessions in the order of their creation, of `agent`, in `state`, with `tag` (None: any)."""
        principal.require("sessions:read")
        if not 1 <= limit <= 500:
            raise Invalid("limit must be between 1 and 500", details={"field": "limit"})
        after = _cursor_id(cursor)
        with self.store.transaction() as db:
            rows = [
                row
                for row in db.scalars(store_ops.sessions_query(agent, state).order_by(GraphicalSession.id))
                if (after is None or row.id > after)
                and (tag is None or tag in row.tags)
                and principal.can("sessions:read", session_ref(row))
            ]
            page = [store_ops.session_out(row) for row in rows[:limit]]
            more = len(rows) > limit
            return Page(page, encode_cursor(rows[limit - 1].id) if more else None)

    def get_session(self, principal: Principal, name: str) -> SessionOut:
        with self.store.transaction() as db:
            return store_ops.session_out(self.scoped(db, principal, "sessions:read", name))

    def scoped(
        self, db: Session, principal: Principal, permission: str, name: str, *, lock: bool = False
    ) -> GraphicalSession:
        """The session `principal` may act on with `permission`, as queues are narrowed: Forbidden without the
        permission, or when it may see the session but not do this; NotFound when the session is outside its roles'
        name globs and tags (a refusal would tell that a session of that name exists)."""
        principal.require(permission)
        row = store_ops.find(db, name, lock=lock)
        ref = session_ref(row)
        if not principal.can(permission, ref):
            if principal.can("sessions:read", ref):
                principal.require(permission, ref)
            raise store_ops.no_session(name)
        return row

    def may_see(self, principal: Principal) -> Callable[[str, Iterable[str]], bool]:
        """Whether `principal` may see a session of that name and tags (for the stream, decided without I/O)."""
        if robot_scope(principal.grants, "sessions:read") is None:
            return lambda _name, _tags: principal.can("sessions:read")
        return lambda name, tags: principal.can("sessions:read", RobotRef(name, tuple(tags)))

    def list_events(self, principal: Principal, name: str, *, limit: int, cursor: str | None) -> Page[SessionEventOut]:
        """The session's history, newest first: state changes, restarts and their reasons."""
        if not 1 <= limit <= 500:
            raise Invalid("limit must be between 1 and 500", details={"field": "limit"})
        with self.store.transaction() as db:
            row = self.scoped(db, principal, "sessions:read", name)
            events = store_ops.events_page(db, row.id, limit=limit, before=_cursor_id(cursor))
        more = len(events) > limit
        events = events[:limit]
        return Page(events, encode_cursor(events[-1].id) if more and events else None)

    def get_evidence(self, principal: Principal, run_id: int) -> EvidenceOut:
        """The evidence kept of a failed, killed or stopped run (evidence.py); NotFound when it has none."""
        return self.evidence.get(principal, run_id)

    # ---- definitions ---------------------------------------------------------------------------------------------

    def create_session(self, principal: Principal, data: SessionCreate, *, from_config: bool = False) -> SessionOut:
        details = {"agent": data.agent, "kind": data.kind}
        with audited(self.store, principal, "session.create", data.name, details) as db:
            # Nobody makes a session out of their own reach.
            principal.require("sessions:admin", RobotRef(data.name, tuple(data.tags)))
            require_reach(principal, data.name, data.kind, data.window_manager, "creating")
            if store_ops.exists(db, data.name):
                raise Conflict(f"a session named {data.name!r} exists already", details={"session": data.name})
            self._check_display(db, data.agent, data.display, data.name)
            values = data.model_dump()
            if values["record_seconds"] is None:
                values["record_seconds"] = self.settings.record_seconds
            values.update(rdp_columns(data.kind, values))
            now = utcnow()
            state = State.STARTING if data.enabled else State.STOPPED
            reason = None if data.enabled else "disabled"
            row = GraphicalSession(
                **values,
                from_config=from_config,
                state=state,
                state_reason=reason,
                restarts=0,
                state_since=now,
                last_seq=0,
                created_at=now,
                updated_at=now,
            )
            db.add(row)
            db.flush()
            store_ops.add_event(db, row, now, state, reason or "created", principal.actor)
            out = store_ops.session_out(row)
        self.publish([out])
        self.wake()
        return out

    def update_session(self, principal: Principal, name: str, data: SessionUpdate) -> SessionOut:
        """Fields left out keep their value (a password too: it is never sent back, so a form cannot resend it).
        A changed connection (host, user, password...) reconnects an rdp session at the next sync: that is also how
        one failed for wrong credentials is tried again."""
        changes = data.model_dump(exclude_unset=True)
        if data.password is not None:
            changes["password"] = data.password.get_secret_value()
        # Names only: never a password in the audit log.
        with audited(self.store, principal, "session.update", name, {"fields": sorted(changes)}) as db:
            row = self.scoped(db, principal, "sessions:admin", name, lock=True)
            if changes.get("tags") is not None:  # nobody moves a session out of their own reach
                principal.require("sessions:admin", RobotRef(name, tuple(changes["tags"])))
            kind = changes.get("kind", row.kind)
            merged = {key: changes.get(key, getattr(row, key)) for key in ("display", "window_manager")}
            if set(changes) - HARMLESS_FIELDS:
                require_reach(principal, name, kind, merged["window_manager"], "changing")
            if kind == "rdp":
                merged |= {key: changes.get(key, getattr(row, key)) for key in ("host", "username")}
                merged["password"] = bool(changes.get("password") or row.password)
            else:  # a session that stops being rdp forgets its connection: given, its fields are a mistake
                merged |= {key: changes[key] for key in RDP_FIELDS if key in changes}
            try:
                check_kind(kind, merged)
            except ValueError as exc:
                field = str(exc).partition(":")[0]
                raise Invalid(str(exc), details=[{"field": field, "message": str(exc)}]) from None
            agent = changes.get("agent", row.agent)
            if agent != row.agent:
                naming = self._robots_naming(name)
                if naming:
                    raise Conflict(
                        f"session {name!r} is named by robots on agent {row.agent}: {', '.join(naming)}; "
                        "move them first",
                        details={"session": name, "robots": naming},
                    )
            self._check_display(db, agent, merged["display"], name)
            now = utcnow()
            was_enabled, old_agent = row.enabled, row.agent
            for key, value in changes.items():
                setattr(row, key, value)
            for key, value in rdp_columns(kind, {key: getattr(row, key) for key in RDP_FIELDS}).items():
                setattr(row, key, value)
            if kind != "rdp":
                row.connection, row.connect = None, True
            row.updated_at = now
            if agent != old_agent:  # a new agent knows nothing of it yet: its events start afresh
                row.agent_instance, row.last_seq, row.synced_at, row.pid, row.actual_display = None, 0, None, None, None
                row.screen_width = row.screen_height = None
                self._set_state(db, row, State.STARTING, f"moved from agent {old_agent}", principal.actor, now)
            elif was_enabled and not row.enabled:
                self._set_state(db, row, State.STOPPED, "disabled", principal.actor, now)
            elif row.enabled and not was_enabled:
                self._set_state(db, row, State.STARTING, "enabled", principal.actor, now)
            db.flush()
            out = store_ops.session_out(row)
        self.publish([out])
        self.wake()
        return out

    def delete_session(self, principal: Principal, name: str) -> None:
        """Delete the session (its agent stops the display at the next sync, an attached one is only forgotten);
        Conflict while robots name it."""
        with audited(self.store, principal, "session.delete", name) as db:
            row = self.scoped(db, principal, "sessions:admin", name, lock=True)
            naming = self._robots_naming(name)
            if naming:
                raise Conflict(
                    f"session {name!r} is named by robots: {', '.join(naming)}; change them first",
                    details={"session": name, "robots": naming},
                )
            tags = list(row.tags or [])
            db.delete(row)
        self._publish_deleted(name, tags)
        self.wake()

    def apply_config(self, declared: Iterable[Any]) -> None:
        """Sessions of the settings file, created or brought up to date at every start and marked from config."""
        principal = system_principal("config")
        for item in declared:
            data = read_declared(SessionCreate, item, "sessions")
            with self.store.transaction() as db:
                exists = store_ops.exists(db, data.name)
            try:
                if exists:
                    # An entry of another kind carries the rdp fields' defaults: they are not its to change.
                    ignored = {"name"} | (set() if data.kind == "rdp" else set(RDP_FIELDS))
                    fields = data.model_dump(exclude=ignored, exclude_none=True)
                    fields.setdefault("display", None)
                    fields.setdefault("record_seconds", self.settings.record_seconds)
                    self.update_session(principal, data.name, SessionUpdate(**fields))
                else:
                    self.create_session(principal, data, from_config=True)
            except RobofleetError as exc:
                raise ConfigError(f"sessions.{data.name}: {exc.message}") from None

    def _check_display(self, db: Session, agent: str, display: str | None, name: str) -> None:
        if display is None:
            return
        holder = store_ops.display_holder(db, agent, display, but=name)
        if holder is not None:
            raise Conflict(
                f"display {display} on agent {agent} is session {holder!r}'s already",
                details={"display": display, "agent": agent, "session": holder},
                code="display_in_use",
            )

    # ---- what the robots ask (robots/service.py, SessionDirectory) ------------------------------------------------

    @property
    def session_wait_seconds(self) -> float:
        return self.settings.session_wait_seconds

    def check_robot_session(self, session: str, agent: str) -> None:
        """Nothing when `session` is a session on `agent`; Invalid naming the field otherwise."""
        with self.store.transaction() as db:
            try:
                row = store_ops.find(db, session)
            except RobofleetError:
                message = f"session: no session named {session!r}"
                raise Invalid(message, details=[{"field": "session", "message": message}]) from None
            if row.agent != agent:
                message = f"session: session {session!r} is on agent {row.agent}, not on the robot's agent {agent}"
                raise Invalid(message, details=[{"field": "session", "message": message}])

    def spec_for_run(self, session: str, agent: str) -> Spec:
        """The session as `process.start` carries it; Invalid when it is gone, moved or disabled."""
        self.check_robot_session(session, agent)
        with self.store.transaction() as db:
            row = store_ops.find(db, session)
            if not row.enabled:
                raise Conflict(
                    f"session {session!r} is disabled", details={"session": session}, code="session_unhealthy"
                )
            return self.spec(row)

    def spec(self, row: GraphicalSession) -> Spec:
        """The session as its agent keeps it; an rdp one's with its password (for the agent only)."""
        return Spec(
            name=row.name,
            kind=row.kind,
            display=row.display,
            width=row.width,
            height=row.height,
            depth=row.depth,
            window_manager=list(self.settings.window_manager) if row.window_manager and row.kind == "xvfb" else None,
            restart=row.restart,
            record_seconds=row.record_seconds,
            # As stored, also while a logoff plays: the agent leaves a session under a logoff alone whatever a sync
            # says (a spec made then and sent after the logoff ended would connect it again).
            connect=row.connect,
            rdp=rdp_spec(row, self.settings.rdp) if row.kind == "rdp" else None,
        )

    def _robots_naming(self, session: str) -> list[str]:
        return self.robots.robots_naming_session(session)

    # ---- the sync loop -------------------------------------------------------------------------------------------

    async def sync_once(self) -> None:
        """One pass: each agent connected here keeps its enabled sessions and reports them; then the sessions no
        replica heard of lately are their agent's: offline."""
        agents = list(self.hub.agents)
        begun = {agent: self._operations.get(agent, 0) for agent in agents}
        specs = await asyncio.to_thread(self._specs_of, agents)
        await asyncio.gather(*(self._sync_in_turn(agent, specs.get(agent, []), begun[agent]) for agent in agents))
        changes = await asyncio.to_thread(self._mark_offline, set(agents))
        await self._announce(changes)

    async def _sync_in_turn(self, agent: str, specs: list[Spec], begun: int) -> None:
        """Sync `agent` unless an operation on its sessions is under way (it stores its own answer and wakes the
        next pass); with its specs read again when one began since `specs` were read."""
        turn = self._turns.setdefault(agent, asyncio.Lock())
        if turn.locked():
            self._skipped.add(agent)
            return
        async with turn:
            if self._operations.get(agent, 0) != begun:
                specs = (await asyncio.to_thread(self._specs_of, [agent])).get(agent, [])
            await self.sync_agent(agent, specs)

    @contextlib.asynccontextmanager
    async def agent_turn(self, agent: str) -> AsyncIterator[None]:
        """An operation that changes what `agent` keeps of a session (an rdp intent, a restart): its command and
        stored answer take turns with the syncs of that agent. A sync built before the operation's change and
        delivered after its command would undo it (a disconnected session connected again); one answered after
        the operation's own answer would overwrite it with an older state."""
        turn = self._turns.setdefault(agent, asyncio.Lock())
        try:
            async with turn:
                self._operations[agent] = self._operations.get(agent, 0) + 1
                yield
        finally:
            if agent in self._skipped and not turn.locked():
                self._skipped.discard(agent)
                self.loop.wake()  # what changed meanwhile (a nudge, the pass's own time) is synced now

    async def sync_agent(self, agent: str, specs: list[Spec]) -> None:
        self.evidence.catch_up_once(agent)
        try:
            answer = await self.hub.command(agent, "session.sync", self.sync_args(agent, specs), within=SYNC_SECONDS)
        except RobofleetError as exc:
            if specs:
                log.warning("agent %s could not sync its sessions: %s", agent, exc.message)
                changes = await asyncio.to_thread(self._agent_refused, agent, exc.message)
                await self._announce(changes)
            return
        if not isinstance(answer, dict):
            return
        statuses: list[Status] = [status for status in answer.get("sessions", []) if isinstance(status, dict)]  # type: ignore[misc]
        instance = str(answer.get("instance") or "")
        changes, stored_up_to = await asyncio.to_thread(self._store_statuses, agent, instance, statuses)
        if instance:
            known, before = self._synced.get(agent, ("", 0))
            self._synced[agent] = (instance, max(stored_up_to, before if known == instance else 0))
        await self._announce(changes)

    def _agent_nudged(self, agent: str) -> None:
        """An agent says a session of its changed (on the event loop's thread): the sync pass runs now. Several
        nudges while a pass runs make one more pass, not one each (Loop.wake)."""
        self.loop.wake()

    def sync_args(self, agent: str, specs: list[Spec]) -> dict[str, Any]:
        """What `session.sync` carries to `agent`: its sessions, and which of its events are stored already."""
        args: dict[str, Any] = {"sessions": specs}
        if agent in self._synced:
            args["instance"], args["after_seq"] = self._synced[agent]
        return args

    def _specs_of(self, agents: list[str]) -> dict[str, list[Spec]]:
        with self.store.transaction() as db:
            return {agent: [self.spec(row) for row in store_ops.of_agent(db, agent) if row.enabled] for agent in agents}

    def _store_statuses(self, agent: str, instance: str, statuses: list[Status]) -> tuple[list[Change], int]:
        """The agent's report of its sessions, stored: their state, and the events not stored yet; and the highest
        event number up to which every event of the answer is stored."""
        by_name = {str(status.get("name")): status for status in statuses}
        now = utcnow()
        changes: list[Change] = []
        handled: set[str] = set()
        with self.store.transaction() as db:
            for row in store_ops.of_agent(db, agent):
                status = by_name.get(row.name)
                if status is None or not row.enabled:
                    continue  # made or disabled since the pass read the sessions: the next pass has it
                handled.add(row.name)
                change = self._apply_status(db, row, status, instance or row.agent_instance or "", now)
                if change is not None:
                    changes.append(change)
        seqs = {name: [_seq(event) for event in status.get("events") or []] for name, status in by_name.items()}
        stored = [seq for name in handled for seq in seqs.get(name, [])]
        unstored = [seq for name, found in seqs.items() if name not in handled for seq in found]
        up_to = max(stored, default=0)
        if unstored:
            up_to = min(up_to, min(unstored) - 1)
        return changes, max(up_to, 0)

    def _apply_status(
        self, db: Session, row: GraphicalSession, status: Status, instance: str, now: datetime
    ) -> Change | None:
        before = _reported(row)
        if instance and row.agent_instance != instance:
            row.agent_instance, row.last_seq = instance, 0  # a new agent process numbers its events from 1 again
        source = f"agent:{row.agent}"
        # A death and restart between two syncs shows only in the events: it left healthy all the same.
        left_healthy, why = False, None
        for event in sorted(status.get("events") or [], key=lambda event: int(event.get("seq", 0))):
            seq = int(event.get("seq", 0))
            if seq <= row.last_seq:
                continue
            at = _parse_time(event.get("at"), now)
            state = _state(event.get("state"))
            store_ops.add_event(db, row, at, state, event.get("reason"), source, seq)
            row.last_seq = seq
            if before[0] == State.HEALTHY and state != State.HEALTHY and not left_healthy:
                left_healthy, why = True, event.get("reason") or str(state)
        state = _state(status.get("state"))
        reason = status.get("reason")
        if state != row.state:
            row.state_since = _parse_time(status.get("since"), now)
        row.state, row.state_reason = state, reason
        row.actual_display = status.get("display")
        row.pid = status.get("pid")
        row.restarts = int(status.get("restarts") or 0)
        row.screen_width, row.screen_height = _size(status.get("screen_width")), _size(status.get("screen_height"))
        if row.kind == "rdp" and isinstance(status.get("connection"), dict):
            row.connection = dict(connection_facts(status["connection"]))
        if state == State.HEALTHY:
            row.last_healthy_at = now
        changed = before != _reported(row)
        if changed or row.synced_at is None or (now - row.synced_at).total_seconds() >= SYNCED_WRITE_SECONDS:
            row.synced_at = now
        if before[0] == State.HEALTHY and state != State.HEALTHY and not left_healthy:
            left_healthy, why = True, reason or str(state)
        if not changed and not left_healthy:
            return None
        db.flush()
        return Change(store_ops.session_out(row), left_healthy, why)

    def _agent_refused(self, agent: str, reason: str) -> list[Change]:
        """The agent is connected but could not sync (an agent without sessions, or one failing): its enabled
        sessions are unhealthy for that reason."""
        now = utcnow()
        with self.store.transaction() as db:
            return [
                change
                for row in store_ops.of_agent(db, agent)
                if row.enabled
                and (change := self._set_state(db, row, State.UNHEALTHY, f"agent {agent}: {reason}", "server", now))
            ]

    def _mark_offline(self, connected: set[str]) -> list[Change]:
        """The enabled sessions of agents not connected here that no replica synced lately: offline."""
        now = utcnow()
        horizon = now - timedelta(seconds=self.offline_after_seconds)
        with self.store.transaction() as db:
            return [
                change
                for row in store_ops.all_sessions(db)
                if row.enabled
                and row.agent not in connected
                and (row.synced_at or row.created_at) < horizon
                and (
                    change := self._set_state(db, row, State.UNHEALTHY, f"agent {row.agent} is offline", "server", now)
                )
            ]

    @staticmethod
    def _set_state(
        db: Session, row: GraphicalSession, state: State, reason: str, source: str, now: datetime
    ) -> Change | None:
        """The state the server itself gives a session, with its event; None when it had it already."""
        if row.state == state and row.state_reason == reason:
            return None
        left_healthy = row.state == State.HEALTHY and state != State.HEALTHY
        row.state, row.state_reason, row.state_since = state, reason, now
        store_ops.add_event(db, row, now, state, reason, source)
        db.flush()
        return Change(store_ops.session_out(row), left_healthy, reason)

    async def _announce(self, changes: list[Change]) -> None:
        """Published for the live views; a session that left healthy is said in the log of each active run of the
        robots naming it (the robot's restart policy decides what follows when its process dies of it)."""
        if not changes:
            return
        self.publish([change.out for change in changes])
        for change in changes:
            log.info(
                "session %s on agent %s is %s%s",
                change.out.name,
                change.out.agent,
                change.out.state,
                f": {change.out.state_reason}" if change.out.state_reason else "",
            )
            if not change.left_healthy:
                continue
            since = utcnow() - timedelta(seconds=DIED_WITH_SESSION_SECONDS)
            runs = await asyncio.to_thread(self.robots.runs_under_session, change.out.name, since)
            for run_id, _robot in runs:
                log.warning(
                    "session %s is unhealthy under this run: %s",
                    change.out.name,
                    change.why or change.out.state_reason or change.out.state,
                    extra={"run_id": str(run_id)},
                )

    # ---- screens and input ---------------------------------------------------------------------------------------

    async def screenshot(
        self, principal: Principal, name: str, shot: ShotRequest, etag: str | None = None
    ) -> Screenshot:
        """The session's screen as the agent grabs it now; with `etag` the last one the caller has, `unchanged`
        and no image when the screen is the same. Conflict (409) when the session is not healthy
        (session_unhealthy) or its agent is offline (agent_offline)."""
        principal.require("sessions:read")
        session = await asyncio.to_thread(self.get_session, principal, name)
        self.require_usable(session)
        args = {**shot.model_dump(), "name": name, "etag": etag}
        result = await self.command(session, "session.screenshot", args, SHOT_SECONDS)
        data = result.get("data")
        return Screenshot(
            etag=str(result["etag"]),
            unchanged=bool(result.get("unchanged")),
            content_type=str(result.get("content_type") or CONTENT_TYPES[shot.format]),
            data=_b64(data) if data and not result.get("unchanged") else None,
            width=int(result.get("width") or 0),
            height=int(result.get("height") or 0),
            screen_width=int(result.get("screen_width") or session.screen_width or session.width),
            screen_height=int(result.get("screen_height") or session.screen_height or session.height),
        )

    async def send_input(self, principal: Principal, name: str, given: Input) -> Done:
        """Click, type, press keys or scroll on the session's display (sessions:control, audited). Invalid for
        coordinates outside the screen; Conflict when the session is not healthy or its agent offline."""
        kind = _input_kind(given)
        details: dict[str, Any] = given.model_dump(exclude={"text"})
        if isinstance(given, TypeText):
            details["characters"] = len(given.text)  # what was typed may be a password: never in the audit log
        action = f"session.{kind}"

        def check() -> SessionOut:
            with audited(self.store, principal, action, name, details) as db:
                session = store_ops.session_out(self.scoped(db, principal, "sessions:control", name))
                if isinstance(given, Click | Scroll):
                    _inside(session, given.x, given.y)
                self.require_usable(session)
                return session

        session = await asyncio.to_thread(check)
        args: dict[str, Any] = {"name": name, "kind": kind, **given.model_dump()}
        try:
            await self.command(session, "session.input", args, _input_seconds(given))
        except RobofleetError as exc:
            await asyncio.to_thread(
                record_alone, self.store, principal, action, name, "failed", {**details, "error": exc.message}
            )
            raise
        return Done()

    async def restart(self, principal: Principal, name: str) -> SessionOut:
        """Stop and start the session now (sessions:admin, audited); its restarts count one more."""

        def check() -> SessionOut:
            with audited(self.store, principal, "session.restart", name) as db:
                session = store_ops.session_out(self.scoped(db, principal, "sessions:admin", name))
                if not session.enabled:
                    raise Conflict(f"session {name!r} is disabled: enable it instead", details={"session": name})
                self.hub.require(session.agent)
                return session

        session = await asyncio.to_thread(check)
        async with self.agent_turn(session.agent):
            status = await self.command(session, "session.restart", {"name": name}, RESTART_SECONDS)
            return await self.store_answer(principal, name, status)

    async def store_answer(self, principal: Principal, name: str, status: Any) -> SessionOut:
        """The session after its agent's answer to a command (its Status) is stored like a sync's, as `principal`
        sees it."""

        def store() -> Change | None:
            if not isinstance(status, dict):
                return None
            answer: Status = status  # type: ignore[assignment]
            with self.store.transaction() as db:
                row = store_ops.find(db, name)
                return self._apply_status(db, row, answer, row.agent_instance or "", utcnow())

        change = await asyncio.to_thread(store)
        await self._announce([change] if change else [])
        self.wake()
        return await asyncio.to_thread(self.get_session, principal, name)

    def require_usable(self, session: SessionOut) -> None:
        if session.agent not in self.hub.agents:
            raise Conflict(
                f"the agent {session.agent!r} of session {session.name!r} is offline",
                details={"agent": session.agent, "session": session.name},
                code="agent_offline",
            )
        if session.state != State.HEALTHY:
            raise _unhealthy(session.name, session.state_reason or str(session.state))

    async def command(self, session: SessionOut, command: str, args: dict[str, Any], within: float) -> Any:
        """The agent's answer; its refusals as the API's errors."""
        try:
            return await self.hub.command(session.agent, command, args, within=within)
        except CommandFailed as exc:
            details = exc.details if isinstance(exc.details, dict) else {}
            code = details.get("code")
            message = str(details.get("message") or exc.message)
            if code in ("unhealthy", "not_found"):
                raise _unhealthy(session.name, message) from None
            if code == "bad_args":
                raise Invalid(message, details=[{"field": "body", "message": message}]) from None
            if code in RDP_REFUSALS:
                raise Conflict(message, details={"session": session.name, **details}, code=code) from None
            raise

    # ---- helpers -------------------------------------------------------------------------------------------------

    def publish(self, outs: list[SessionOut]) -> None:
        """On the event hub (from any thread: CRUD runs in the API's worker threads)."""
        for out in outs:
            self._on_loop(self.events.publish, TOPIC, {"event": "session", **out.model_dump(mode="json")})

    def _publish_deleted(self, name: str, tags: list[str]) -> None:
        # The tags are for the stream's filter by scope; it leaves them out of what it sends.
        self._on_loop(self.events.publish, TOPIC, {"event": "session_deleted", "name": name, "tags": tags})

    def wake(self) -> None:
        self._on_loop(self.loop.wake)

    def _on_loop(self, call: Any, *args: Any) -> None:
        loop = self._event_loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._event_thread:
            call(*args)
        else:
            loop.call_soon_threadsafe(call, *args)


def require_reach(principal: Principal, name: str, kind: str, window_manager: bool, doing: str) -> None:
    """Forbidden (403, naming agents:admin) when the session is an attach one or has a window manager and
    `principal` lacks agents:admin."""
    if (kind != "attach" and not window_manager) or principal.can(REACH_PERMISSION):
        return
    what = "an attach session" if kind == "attach" else "a session with a window manager"
    raise Forbidden(
        f"{principal.username} lacks the permission {REACH_PERMISSION!r}: {doing} {what} ({name!r}) gives whoever "
        f"controls it a desktop as the agent's OS user, which takes {REACH_PERMISSION!r} besides 'sessions:admin'",
        details={"permission": REACH_PERMISSION, "session": name},
    )


def session_ref(row: GraphicalSession) -> RobotRef:
    """The session as a role's name globs and tags see it (as a robot's or a queue's)."""
    return RobotRef(row.name, tuple(row.tags or ()))


def _reported(row: GraphicalSession) -> tuple[Any, ...]:
    """What a sync may change of a session, to tell whether it did."""
    return (
        row.state,
        row.state_reason,
        row.actual_display,
        row.pid,
        row.restarts,
        row.screen_width,
        row.screen_height,
        row.connection,
    )


def _unhealthy(name: str, reason: str) -> Conflict:
    return Conflict(
        f"session {name!r} is not healthy: {reason}",
        details={"session": name, "reason": reason},
        code="session_unhealthy",
    )


def _inside(session: SessionOut, x: int, y: int) -> None:
    """Invalid unless (x, y) is on the screen: its size as the agent found it (an attached display has its own),
    else as defined."""
    width, height = session.screen_width or session.width, session.screen_height or session.height
    if x >= width or y >= height:
        message = f"({x}, {y}) is outside the screen of session {session.name!r} ({width}x{height})"
        raise Invalid(message, details=[{"field": "x" if x >= width else "y", "message": message}])


def _input_seconds(given: Input) -> float:
    return INPUT_SECONDS + (len(given.text) * TYPE_SECONDS_PER_CHARACTER if isinstance(given, TypeText) else 0.0)


def _size(value: Any) -> int | None:
    try:
        size = int(value)
    except (TypeError, ValueError):
        return None
    return size if size > 0 else None


def _input_kind(given: Input) -> str:
    if isinstance(given, Click):
        return "click"
    if isinstance(given, TypeText):
        return "type"
    if isinstance(given, Keys):
        return "key"
    return "scroll"


def _seq(event: Any) -> int:
    try:
        return int(event.get("seq", 0))
    except (AttributeError, TypeError, ValueError):
        return 0


def _state(value: Any) -> State:
    try:
        return State(str(value))
    except ValueError:
        return State.UNHEALTHY


def _parse_time(value: Any, default: datetime) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return default
    return parsed if parsed.tzinfo is not None else default


def _b64(data: str) -> bytes:
    return base64.b64decode(data)


def _cursor_id(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return int(decode_cursor(cursor))
    except ValueError:
        raise Invalid("the cursor is not one this server handed out", code="invalid_cursor") from None
