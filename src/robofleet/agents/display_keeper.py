"""The agent's graphical sessions and their watchdog (the seed's "graphical session control" thread).

The orchestrator says which sessions this agent keeps (`sync`, or one at a time as a run needs it: `ensure`); the
keeper's thread starts them, checks each every `check_seconds` (its X server answers; its window manager, if it
has one, runs) and restarts a dead one as its restart policy says, waiting longer after each failure in a row.

States: starting → healthy ⇄ unhealthy; failed when trying again cannot help (a display number in use, no Xvfb, a
dead display whose policy is `never`): a failed session stays so until its spec changes or a restart is asked,
so a refusal never turns into a storm of attempts. `stopped` is a session's last event when a sync removes it.
Every change is an event numbered by a counter of this agent process; the last EVENTS_KEPT of each session go
with its status, and the orchestrator stores those it has not seen.

Robots keep running across agent restarts, so their displays must too: what the keeper started is written to
its directory (sessions/NAME.json: the spec, the pids and start times) and a keeper that starts again adopts
those processes instead of starting new ones. Only a sync that drops a session stops its display; stopping the
keeper (the agent's end) leaves them all running. An attached display is never started or stopped, only checked.

An `rdp` session is an Xvfb display with an RDP client in it: the display is kept here, the connection by the
session's `Link` (rdp_keeper.py), ticked at every tick once the display is up. `connect`, `disconnect`, `logoff`
and (for rdp) `restart` act on the connection only; the display stays. While a logoff plays, its client is the
logoff's to watch: those commands are refused (`busy`) and a sync's changes to the session wait for the next sync
after it (the orchestrator keeps sending the session connected meanwhile).

Each session's state is also written, at every change, to sessions/states/NAME.json ({"name", "state", "reason",
"since"}; a folder of their own, so that no session's name makes its state file another's record): what a robot in
the session reads (`robofleet.sdk.session_state()`), even while the agent is down.

While a session with `record_seconds` > 0 is healthy, the keeper grabs a small frame of it every second into a
ring buffer of that many seconds: what a failed run's evidence shows as its last moments.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TypedDict

from robofleet.agents import displays, inputs, rdp_client, rdp_keeper, screens, xauth
from robofleet.agents.displays import Display, DisplayError, DisplaySpec, Screen
from robofleet.agents.rdp_keeper import ConnectionStatus, Link

log = logging.getLogger(__name__)
CHECK_SECONDS = 2.0
TICK_SECONDS = 0.25
EVENTS_KEPT = 50
MAX_BACKOFF_SECONDS = 60.0
HEALTHY_RESETS_SECONDS = 30.0  # healthy this long, a session's next failure is again a first one
HUNG_CHECKS = 3  # a living X server that fails this many checks in a row is restarted (policy always)
FRAME_SECONDS = 1.0
FRAME_WIDTH = 640
FRAME_GRAB_SECONDS = 1.0
STATES = "states"  # under the sessions folder: what robots read of their session
LOGOFF_POLL_SECONDS = 0.1


class SessionState(StrEnum):
    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    FAILED = "failed"
    STOPPED = "stopped"


class SessionProblem(Exception):
    """A session command that cannot be carried out: `code` is `not_found`, `unhealthy`, `not_rdp`, `busy` (a
    logoff is under way), `logoff_failed` (the client did not end, or ended otherwise than by a logoff: a drop) or
    `logoff_interrupted` (something else ended or replaced the client while the logoff played)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Event(TypedDict):
    seq: int
    at: str
    state: str
    reason: str | None


class Status(TypedDict):
    name: str
    state: str
    display: str | None
    pid: int | None
    restarts: int
    reason: str | None
    since: str
    events: list[Event]
    screen_width: int | None
    screen_height: int | None
    connection: ConnectionStatus | None  # an rdp session's client: its connects, drops, pid, last exit


def backoff(failures: int) -> float:
    """Seconds before the next attempt after `failures` in a row: at once after the first, then 1, 2, 4... 60."""
    return 0.0 if failures <= 1 else min(MAX_BACKOFF_SECONDS, 2.0 ** (failures - 2))


@dataclass
class KeptSession:
    spec: DisplaySpec
    state: SessionState = SessionState.STARTING
    reason: str | None = None
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    display: Display | None = None
    screen: tuple[int, int] | None = None
    restarts: int = 0
    events: deque[Event] = field(default_factory=lambda: deque(maxlen=EVENTS_KEPT))
    due: float = 0.0  # monotonic: the next start attempt, or the next check
    failures: int = 0  # failed starts or checks in a row
    healthy_since: float | None = None
    restart_reason: str | None = None  # set while a restart is due: why
    wm_retry_at: float | None = None  # monotonic: when a dead window manager is started again
    frames: deque[tuple[float, bytes]] = field(default_factory=deque)
    next_frame: float = 0.0
    gone: bool = False  # removed by a sync: whoever still holds it leaves it alone
    link: Link | None = None  # an rdp session's connection
    lock: threading.RLock = field(default_factory=threading.RLock)


def stop_recorded(state_dir: Path) -> list[int]:
    """Stop every display (and window manager) the agent of `state_dir` started and recorded, once that agent has
    ended: its displays outlive it on purpose, so whoever removes the agent for good (a test's fixture, an
    uninstall) ends them with this. A pid that is no longer the recorded process is left alone. The X servers'
    pids that were asked to stop."""
    stopped: list[int] = []
    for path in sorted((state_dir.resolve() / "sessions" / STATES).glob("*.json")):
        path.unlink(missing_ok=True)
    for path in sorted((state_dir.resolve() / "sessions").glob("*.json")):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            record = json.loads(path.read_text())
            rdp_log = path.with_suffix(".rdp.log")
            client = (record.get("rdp") or {}).get("client")
            if client is not None:  # before its display: it would only see the display go, and say so
                rdp_client.stop(rdp_client.Client.from_record(client, rdp_log))
            rdp_log.unlink(missing_ok=True)
            kept = record.get("display")
            if kept is not None:
                display = Display.from_record(kept)
                displays.stop(display)
                if display.pid is not None:
                    stopped.append(display.pid)
            path.unlink()
    return stopped


class DisplayKeeper:
    def __init__(self, state_dir: Path, check_seconds: float = CHECK_SECONDS) -> None:
        self.folder = state_dir.resolve() / "sessions"
        self.check_seconds = check_seconds
        # Events are numbered from 1 in each agent process: the orchestrator tells the numberings apart by this.
        self.instance = uuid.uuid4().hex
        self.sessions: dict[str, KeptSession] = {}
        self._lock = threading.RLock()  # the map; taken before a session's own lock, never after
        self._seq = 0
        self._seq_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # Told (from the keeper's thread) that a session's state changed: the agent nudges the orchestrator to
        # sync now, so that a drop and its reconnect show within a moment, not at the next periodic sync.
        self.on_change: Callable[[], object] | None = None

    # ---- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Adopt what an earlier agent process left running and start watching; again, it does nothing."""
        with self._lock:
            if self._thread is not None:
                return
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            (self.folder / STATES).mkdir(mode=0o700, exist_ok=True)
            xauth.prepare(self.folder)  # before any display is started or probed: their cookies go there
            self._adopt()
            self._stopping.clear()
            self._thread = threading.Thread(target=self._watch, name="display-keeper", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop watching. The displays stay up (robots draw in them): the next keeper adopts them."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            self._wake.set()
            thread.join(15)

    def stop_all(self) -> None:
        """Stop every session and forget it, as a sync of none does (the agent is being removed, or a test ends),
        without starting to watch."""
        with self._lock:
            removed = [self.sessions.pop(name) for name in list(self.sessions)]
        for session in removed:
            self._remove(session)

    # ---- what the orchestrator says ----------------------------------------------------------------------

    def sync(self, specs: Iterable[DisplaySpec]) -> list[Status]:
        """Keep exactly these sessions: start the new, stop the removed (an attached display is only forgotten),
        restart those whose display changed. The statuses of those kept."""
        wanted: dict[str, DisplaySpec] = {}
        for spec in specs:
            if spec.name in wanted:
                raise ValueError(f"session {spec.name} is named twice")
            wanted[spec.name] = spec
        self.start()
        with self._lock:
            removed = [self.sessions.pop(name) for name in list(self.sessions) if name not in wanted]
            for spec in wanted.values():
                self._keep(spec)
        self._wake.set()
        # Stopping a display may take seconds (one that ignores SIGTERM): not while holding every session.
        for session in removed:
            self._remove(session)
        return self.statuses()

    def ensure(self, spec: DisplaySpec) -> Status:
        """Keep this session too (started unless kept already; restarted if its display changed)."""
        self.start()
        with self._lock:
            session = self._keep(spec)
        self._wake.set()
        return self._status(session)

    def restart(self, name: str) -> Status:
        """Stop and start the session now (an attached display is checked again); its restarts count one more.
        An rdp session whose display is up is reconnected (a new client), its display kept."""
        session = self._session(name)
        with session.lock:
            if session.link is not None:
                self._not_logging_off(session, session.link)
            if session.link is not None and session.display is not None and session.display.server_alive:
                session.restarts += 1
                session.link.again("asked", first=False)  # the same definition: it painted before, it may again
                self._connect_now(session, "asked")
                return self._status(session)
            if session.link is not None:
                session.link.end()
            if session.display is not None:
                displays.stop(session.display)
                session.display = None
            session.restarts += 1
            session.failures = 0
            session.restart_reason = None
            self._change(session, SessionState.STARTING, "asked")
            self._start(session)
        return self._status(session)

    def _keep(self, spec: DisplaySpec) -> KeptSession:
        session = self.sessions.get(spec.name)
        if session is None:
            session = KeptSession(spec, link=self._link(spec))
            self.sessions[spec.name] = session
            self._event(session, "new session")
            self._save(session)
            self._write_state(session)
            return session
        with session.lock:
            kept = session.spec
            if session.link is not None and session.link.logging_off:
                # The logoff's client is left alone: the next sync, once it has ended, says again what is wanted.
                if spec != kept:
                    log.info("session %s: a sync's changes wait until the logoff under way ends", spec.name)
                return session
            if kept.same_display(spec):
                session.spec = spec
                if spec.record_seconds == 0:
                    session.frames.clear()
                if session.link is not None and spec.rdp is not None and spec.rdp.password is not None:
                    session.link.password_known()
                if session.link is not None and spec.connect != kept.connect:
                    self._connect_intent(session, spec.connect)
                self._save(session)
                return session
            if session.link is not None and kept.same_screen(spec) and session.display is not None:
                # Another host, user, password, certificate...: a new client in the same display.
                session.spec = spec
                session.restarts += 1
                session.link.again("its connection settings changed")
                if spec.connect:
                    self._connect_now(session, "its connection settings changed")
                else:
                    self._connect_intent(session, False)
                self._save(session)
                return session
            # Another kind may come with it (xvfb to rdp, rdp to attach): the old client, if any, ends; an rdp
            # spec gets a new link, any other none.
            if session.link is not None:
                session.link.end()
            session.link = self._link(spec)
            if session.display is not None and session.spec.kind != "attach":
                displays.stop(session.display)
            session.display = None
            session.spec = spec
            session.frames.clear()
            session.failures = 0
            session.restarts += 1
            session.restart_reason = None
            session.due = 0.0
            self._change(session, SessionState.STARTING, "its settings changed")
            self._save(session)
        return session

    def _remove(self, session: KeptSession) -> None:
        with session.lock:
            session.gone = True
            if session.link is not None:
                session.link.end()
            if session.display is not None and session.spec.kind != "attach":
                displays.stop(session.display)
            session.display = None
            self._change(session, SessionState.STOPPED, "removed")
        with self._lock:
            if session.spec.name in self.sessions:
                return  # kept again meanwhile, as a new session: the record is the new one's
            with contextlib.suppress(FileNotFoundError):
                self._path(session.spec.name).unlink()
            self._state_path(session.spec.name).unlink(missing_ok=True)
            self._rdp_log(session.spec.name).unlink(missing_ok=True)

    # ---- an rdp session's connection ---------------------------------------------------------------------

    def connect(self, name: str) -> Status:
        """Connect the rdp session now (its kept intent becomes connect = true); a failed or stopped one is tried
        again, as an operator asked; one connected or connecting already is left as it is. SessionProblem
        `not_rdp` for another kind, `busy` while a logoff plays."""
        session = self._session(name)
        with session.lock:
            link = self._rdp(session)
            self._not_logging_off(session, link)
            alive = link.client is not None and link.client.alive
            if session.spec.connect and alive and session.state in (SessionState.STARTING, SessionState.HEALTHY):
                return self._status(session)
            session.spec = replace(session.spec, connect=True)
            link.again("connect asked")
            self._connect_now(session, "connect asked")
            self._save(session)
        return self._status(session)

    def disconnect(self, name: str) -> Status:
        """End the rdp session's client (the server session stays) and keep it so: connect = false, stopped.
        SessionProblem `busy` while a logoff plays."""
        session = self._session(name)
        with session.lock:
            self._not_logging_off(session, self._rdp(session))
            session.spec = replace(session.spec, connect=False)
            self._connect_intent(session, False)
            self._save(session)
        return self._status(session)

    def logoff(self, name: str, wait_seconds: float) -> Status:
        """Play the session's logoff steps into its display and wait up to `wait_seconds` for its client to end by
        a logoff (LOGOFF_EXITS): then stopped, "logged off", connect = false. SessionProblem `unhealthy` for a
        session that is not connected, `busy` while another logoff plays, `logoff_failed` when the client is still
        connected after the wait (it stays so) or ended otherwise (a drop: it is reconnected as any drop is),
        `logoff_interrupted` when something else ended or replaced the client meanwhile (a display that died, the
        session removed)."""
        session = self._session(name)
        with session.lock:
            link = self._rdp(session)
            self._not_logging_off(session, link)
            client, display = link.client, session.display
            if session.state != SessionState.HEALTHY or client is None or display is None:
                why = session.reason or session.state.value
                raise SessionProblem("unhealthy", f"session {name} is not connected ({session.state}): {why}")
            assert session.spec.rdp is not None
            steps = session.spec.rdp.logoff
            link.logging_off = True  # its exit is this command's to see, not a drop to reconnect
        began = time.monotonic()
        step_failed: str | None = None
        try:
            try:
                rdp_keeper.play(display.display, steps)
            except inputs.InputFailed as exc:
                step_failed = str(exc)
            # Until it ends, or something else ends or replaces it (read without the lock: the answer is taken
            # under it below).
            while step_failed is None and link.client is client and client.alive:
                if time.monotonic() - began >= wait_seconds:
                    break
                time.sleep(LOGOFF_POLL_SECONDS)
        finally:
            with session.lock:
                link.logging_off = False
                waited = (
                    f"a logoff step failed: {step_failed}"
                    if step_failed is not None
                    else f"{time.monotonic() - began:.1f} s after the {len(steps)} logoff steps began"
                )
                problem = self._logoff_outcome(session, link, client, waited)
        if problem is not None:
            raise problem
        return self._status(session)

    def _logoff_outcome(
        self, session: KeptSession, link: Link, client: rdp_client.Client, waited: str
    ) -> SessionProblem | None:
        """What the logoff of `client` came to, applied (under the session's lock): None when logged off, else the
        problem to answer; `waited`: what the steps came to, for a client still connected."""
        name = session.spec.name
        if session.gone or session.link is not link or link.client is not client:
            now = f"{session.state}: {session.reason}" if session.reason else str(session.state)
            return SessionProblem(
                "logoff_interrupted",
                f"session {name}: its client was ended or replaced by something else while the logoff played "
                f"(the session is {'removed' if session.gone else now}); whether the server session ended is not known",
            )
        if client.alive:
            return SessionProblem("logoff_failed", f"session {name}: its client is still connected: {waited}")
        ending = rdp_client.ending(client)
        if rdp_client.logged_off(client, ending):
            link.ended_by_logoff(ending)
            session.spec = replace(session.spec, connect=False)
            self._change(session, SessionState.STOPPED, "logged off")
            self._save(session)
            return None
        # Not a logoff's exit (a network drop, a crash): left for the watchdog, which sees a drop and reconnects.
        self._wake.set()
        return SessionProblem(
            "logoff_failed",
            f"session {name}: its client exited during the logoff, but not by a logoff ({ending.reason}): a drop, "
            "reconnected as any drop is; the server session may still be there",
        )

    def _not_logging_off(self, session: KeptSession, link: Link) -> None:
        """SessionProblem `busy` while a logoff plays: its client is that command's to watch."""
        if link.logging_off:
            raise SessionProblem(
                "busy", f"session {session.spec.name}: a logoff is under way; ask again once it has ended"
            )

    def _rdp_log(self, name: str) -> Path:
        return self.folder / f"{name}.rdp.log"

    def _rdp(self, session: KeptSession) -> Link:
        if session.link is None:
            raise SessionProblem("not_rdp", f"session {session.spec.name} is not an rdp session")
        return session.link

    def _link(self, spec: DisplaySpec) -> Link | None:
        return Link(self._rdp_log(spec.name), backoff) if spec.kind == "rdp" else None

    def _connect_now(self, session: KeptSession, why: str) -> None:
        """Connect at once if the display is up, else once it is (the watchdog starts it)."""
        if session.display is not None and session.display.server_alive:
            self._tick_connection(session, look=False)
        elif session.state != SessionState.STARTING or session.reason != why:
            session.due = 0.0
            self._change(session, SessionState.STARTING, why)
        self._wake.set()

    def _connect_intent(self, session: KeptSession, connect: bool) -> None:
        """Act on a changed intent: a disconnect now, or a connect."""
        assert session.link is not None
        if connect:
            session.link.again("connect asked")
            self._connect_now(session, "connect asked")
        else:
            session.link.end()
            self._change(session, SessionState.STOPPED, "disconnected on request; the server session stays")

    def _tick_connection(self, session: KeptSession, *, look: bool) -> None:
        link, display = session.link, session.display
        assert link is not None and display is not None
        verdicts = link.tick(session.spec, display.display, look=look)
        if link.dirty:  # a client started or ended: recorded at once (it outlives the agent)
            link.dirty = False
            self._save(session)
        for verdict in verdicts:
            # Said once: the same verdict again (a link waiting for its password says it at every look) is no news.
            news = (verdict.state, verdict.reason) != (session.state.value, session.reason)
            if news and verdict.state in ("unhealthy", "failed"):
                log.warning("session %s: %s", session.spec.name, verdict.reason)
            self._change(session, SessionState(verdict.state), verdict.reason)

    # ---- what commands ask -------------------------------------------------------------------------------

    def statuses(self) -> list[Status]:
        with self._lock:
            sessions = list(self.sessions.values())
        return [self._status(session) for session in sessions]

    def status(self, name: str) -> Status:
        return self._status(self._session(name))

    def wait_healthy(self, name: str, timeout: float) -> Status:
        """The session's status once healthy, or as it is after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        session = self._session(name)
        while session.state != SessionState.HEALTHY and time.monotonic() < deadline:
            if session.state in (SessionState.FAILED, SessionState.STOPPED):
                break
            self._wake.set()
            time.sleep(0.05)
        return self._status(session)

    def screen(self, name: str) -> Screen:
        """The display of a healthy session; SessionProblem `not_found` or `unhealthy` (with why) otherwise."""
        session = self._session(name)
        with session.lock:
            if session.state != SessionState.HEALTHY or session.display is None or session.screen is None:
                why = session.reason or session.state.value
                raise SessionProblem("unhealthy", f"session {name} is not healthy ({session.state}): {why}")
            return Screen(name, session.display.display, *session.screen)

    def frames(self, name: str, seconds: float | None = None) -> list[bytes]:
        """The recorded frames of the session's last `seconds` (all it keeps when None), oldest first."""
        with self._lock:
            session = self.sessions.get(name)
        if session is None:
            return []
        with session.lock:
            since = time.monotonic() - (seconds if seconds is not None else float("inf"))
            return [frame for at, frame in session.frames if at >= since]

    def _session(self, name: str) -> KeptSession:
        with self._lock:
            session = self.sessions.get(name)
        if session is None:
            raise SessionProblem("not_found", f"no session {name} on this agent")
        return session

    def _status(self, session: KeptSession) -> Status:
        with session.lock:
            display = session.display
            return {
                "name": session.spec.name,
                "state": session.state.value,
                "display": display.display if display is not None else None,
                "pid": display.pid if display is not None else None,
                "restarts": session.restarts,
                "reason": session.reason,
                "since": session.since.isoformat(),
                "events": list(session.events),
                "screen_width": session.screen[0] if session.screen else None,
                "screen_height": session.screen[1] if session.screen else None,
                "connection": session.link.status() if session.link is not None else None,
            }

    # ---- the watchdog ------------------------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                sessions = list(self.sessions.values())
            for session in sessions:
                if self._stopping.is_set():
                    return
                try:
                    self._tend(session)
                except Exception:
                    log.exception("looking after session %s failed; the keeper goes on", session.spec.name)
            self._wake.wait(TICK_SECONDS)
            self._wake.clear()

    def _tend(self, session: KeptSession) -> None:
        # A command working on this session (a restart, a sync) has it: the next tick comes soon enough.
        if not session.lock.acquire(blocking=False):
            return
        try:
            # Not the map's lock: a sync holds it while it waits for this session's.
            if session.gone or session.state in (SessionState.FAILED, SessionState.STOPPED):
                return
            now = time.monotonic()
            if now >= session.due:
                if session.display is None:
                    self._start(session)
                else:
                    self._check(session)
            elif session.link is not None and session.display is not None:
                self._tick_connection(session, look=False)  # its client at every tick: a drop is seen at once
            display = self._frame_due(session)
        finally:
            session.lock.release()
        if display is not None:
            self._record(session, display)

    def _frame_due(self, session: KeptSession) -> Display | None:
        """The display to grab a recording's frame of now, if one is due."""
        now = time.monotonic()
        if session.spec.record_seconds <= 0 or session.state != SessionState.HEALTHY or session.display is None:
            return None
        if now < session.next_frame:
            return None
        session.next_frame = now + FRAME_SECONDS
        return session.display

    def _record(self, session: KeptSession, display: Display) -> None:
        # Grabbed without the session's lock and with a deadline: a frozen X server must not hold the session
        # (its status, its screenshots, a sync) nor the watchdog's checks, which end such a server.
        try:
            frame = screens.small_frame(display.display, FRAME_WIDTH, FRAME_GRAB_SECONDS)
        except screens.ScreenError as exc:
            log.debug("session %s: no frame: %s", session.spec.name, exc)
            return
        now = time.monotonic()
        if not session.lock.acquire(timeout=FRAME_GRAB_SECONDS):
            return
        try:
            if session.display is not display or session.spec.record_seconds <= 0:
                return  # restarted or changed meanwhile: the frame is of what is gone
            session.frames.append((now, frame))
            while session.frames and session.frames[0][0] < now - session.spec.record_seconds:
                session.frames.popleft()
        finally:
            session.lock.release()

    def _start(self, session: KeptSession) -> None:
        spec = session.spec
        if session.restart_reason is not None:
            session.restarts += 1
            self._change(session, SessionState.STARTING, f"restart {session.restarts}: {session.restart_reason}")
            session.restart_reason = None
        elif session.state != SessionState.STARTING:
            self._change(session, SessionState.STARTING, None)
        try:
            if spec.kind == "attach":
                assert spec.display is not None
                probe = displays.probe(spec.display)
                if not probe.answers:
                    raise DisplayError(probe.reason or f"display {spec.display} does not answer")
                display = Display(spec.display)
            else:
                display = displays.start_xvfb(
                    spec, self.folder / f"{spec.name}.xvfb.log", started=lambda begun: self._save(session, begun)
                )
                if spec.window_manager:
                    try:
                        displays.start_window_manager(display, spec.window_manager, self.folder / f"{spec.name}.wm.log")
                    except DisplayError:
                        displays.stop(display)
                        raise
        except DisplayError as exc:
            self._save(session)  # its Xvfb, if one began, is ended
            self._start_failed(session, exc)
            return
        session.display = display
        self._save(session)
        log.info("session %s: display %s is up (pid %s)", spec.name, display.display, display.pid)
        self._check(session)

    def _start_failed(self, session: KeptSession, exc: DisplayError) -> None:
        session.failures += 1
        if exc.permanent or (session.spec.kind == "xvfb" and session.spec.restart == "never"):
            log.warning("session %s failed: %s", session.spec.name, exc.reason)
            self._change(session, SessionState.FAILED, exc.reason)
            return
        # An attached display is looked at again at the checks' pace; an Xvfb that would not start, with backoff.
        wait = self.check_seconds if session.spec.kind == "attach" else max(backoff(session.failures), 1.0)
        session.due = time.monotonic() + wait
        self._change(session, SessionState.UNHEALTHY, exc.reason)

    def _check(self, session: KeptSession) -> None:
        display = session.display
        assert display is not None
        spec = session.spec
        now = time.monotonic()
        session.due = now + self.check_seconds
        if not display.server_alive:
            assert display.pid is not None
            self._died(session, f"Xvfb {displays.exit_reason(display.pid, display.popen)}")
            return
        probe = displays.probe(display.display, cookie=display.cookie)
        if not probe.answers:
            session.failures += 1
            reason = probe.reason or f"display {display.display} does not answer"
            if spec.kind == "xvfb" and spec.restart == "always" and session.failures >= HUNG_CHECKS:
                displays.stop(display, hung=True)
                self._died(session, f"{reason} ({session.failures} checks in a row)")
                return
            self._change(session, SessionState.UNHEALTHY, reason)
            return
        if not display.manager_alive:
            assert display.wm_pid is not None and spec.window_manager
            ended = displays.exit_reason(display.wm_pid, display.wm_popen)
            reason = f"the window manager {spec.window_manager[0]} {ended}"
            if spec.restart == "never":
                self._change(session, SessionState.UNHEALTHY, reason)
                return
            if session.wm_retry_at is None:
                # One that keeps dying is started again less and less often, as a display is.
                session.failures += 1
                session.wm_retry_at = now + backoff(session.failures)
            if now < session.wm_retry_at:
                wait = session.wm_retry_at - now
                self._change(session, SessionState.UNHEALTHY, f"{reason}; started again in {wait:.0f} s")
                return
            session.wm_retry_at = None
            session.restarts += 1
            self._change(session, SessionState.STARTING, f"restart {session.restarts}: {reason}")
            try:
                displays.start_window_manager(display, spec.window_manager, self.folder / f"{spec.name}.wm.log")
            except DisplayError as exc:
                self._change(session, SessionState.UNHEALTHY, exc.reason)
                return
            self._save(session)
        session.screen = (probe.width or spec.width, probe.height or spec.height)
        if session.link is not None:  # healthy once its remote desktop shows: the link says
            self._tick_connection(session, look=True)
            return
        if session.healthy_since is None:
            session.healthy_since = now
        elif now - session.healthy_since >= HEALTHY_RESETS_SECONDS:
            session.failures = 0
        self._change(session, SessionState.HEALTHY, None)

    def _died(self, session: KeptSession, reason: str) -> None:
        """The session's X server is gone (or was ended for not answering): restart it, or fail, per policy."""
        log.warning("session %s: %s", session.spec.name, reason)
        display = session.display
        if session.link is not None:
            session.link.end(f"its display restarted: {reason}")
        if display is not None and display.wm_pid is not None:
            displays.stop_process(display.wm_pid, display.wm_create_time, display.wm_popen)
        session.display = None
        session.screen = None
        session.frames.clear()
        self._save(session)
        if session.spec.restart == "never":
            self._change(session, SessionState.FAILED, f"{reason}; its restart policy is never")
            return
        session.failures += 1
        session.restart_reason = reason
        session.due = time.monotonic() + backoff(session.failures)
        self._change(session, SessionState.UNHEALTHY, reason)

    # ---- states and events -------------------------------------------------------------------------------

    def _change(self, session: KeptSession, state: SessionState, reason: str | None) -> None:
        if state == session.state and reason == session.reason:
            return
        if state != SessionState.HEALTHY:
            session.healthy_since = None
        if state != session.state:
            session.since = datetime.now(UTC)
        session.state, session.reason = state, reason
        self._event(session, reason)
        self._write_state(session)
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:  # a nudge is a hint: the periodic sync carries the change all the same
                log.debug("the session change nudge failed", exc_info=True)

    def _write_state(self, session: KeptSession) -> None:
        """The session's state where a robot in it reads it (ROBOFLEET_SESSION_STATE); best effort."""
        path = self._state_path(session.spec.name)
        record = {
            "name": session.spec.name,
            "state": session.state.value,
            "reason": session.reason,
            "since": session.since.isoformat(),
        }
        try:
            temporary = path.with_name(f".{path.name}.tmp")
            temporary.write_text(json.dumps(record))
            os.replace(temporary, path)
        except OSError as exc:
            log.debug("session %s: its state file was not written: %s", session.spec.name, exc)

    def state_path(self, name: str) -> Path:
        """Where the session's state is written for its robots."""
        return self._state_path(name)

    def _state_path(self, name: str) -> Path:
        return self.folder / STATES / f"{name}.json"

    def _event(self, session: KeptSession, reason: str | None) -> None:
        with self._seq_lock:
            self._seq += 1
            seq = self._seq
        session.events.append(
            {"seq": seq, "at": datetime.now(UTC).isoformat(), "state": session.state.value, "reason": reason}
        )

    # ---- what survives the agent -------------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def _save(self, session: KeptSession, starting: Display | None = None) -> None:
        """Write what survives the agent; `starting`: an Xvfb that began and is not ready yet, recorded at once so
        that an agent killed meanwhile leaves no display nobody knows of."""
        display = starting or session.display
        record = {
            "spec": session.spec.as_dict(),
            "display": display.record() if display is not None else None,
            "starting": starting is not None,
            "restarts": session.restarts,
            "rdp": session.link.record() if session.link is not None else None,
        }
        path = self._path(session.spec.name)
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(record))
        os.replace(temporary, path)

    def _adopt(self) -> None:
        """Sessions an earlier agent process kept: their displays still running are taken over (checked at once),
        the others are started again as their policy says."""
        for path in sorted(self.folder.glob("*.json")):
            try:
                record = json.loads(path.read_text())
                spec = DisplaySpec.from_args(record["spec"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("ignored %s, which an earlier agent left: %s", path, exc)
                continue
            if spec.name in self.sessions:
                continue
            session = KeptSession(spec, restarts=int(record.get("restarts", 0)), link=self._link(spec))
            kept = record.get("display")
            link_record = record.get("rdp") or {}
            if kept is not None and record.get("starting"):
                # Its agent died before it was ready: which display it took is not known. Ended, started anew.
                displays.stop(Display.from_record(kept))
                log.info("session %s: ended the Xvfb (pid %s) an earlier agent was starting", spec.name, kept["pid"])
                kept = None
            if kept is not None:
                display = Display.from_record(kept)
                if display.pid is None or display.server_alive:
                    session.display = display
                    self._event(session, f"adopted display {display.display} (pid {display.pid})")
                    log.info("session %s: adopted display %s (pid %s)", spec.name, display.display, display.pid)
                    adopted = session.link.adopt(link_record) if session.link is not None else None
                    if adopted is not None:
                        self._event(session, adopted)
                        log.info("session %s: %s", spec.name, adopted)
                else:
                    gone = f"its Xvfb (pid {display.pid}) ended while the agent was away"
                    if display.wm_pid is not None:
                        displays.stop_process(display.wm_pid, display.wm_create_time)
                    if session.link is not None:  # its client lost its display: ended, counts kept
                        session.link.adopt(link_record)
                        session.link.end(gone)
                    if spec.restart == "never":
                        self._change(session, SessionState.FAILED, f"{gone}; its restart policy is never")
                    else:
                        session.restart_reason = gone
            self.sessions[spec.name] = session
