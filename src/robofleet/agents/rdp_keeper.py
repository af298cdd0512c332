"""The watchdog of an rdp session's connection: one `Link` a session, ticked by the display keeper.

The keeper keeps the session's Xvfb as for any session; once it is up, the link keeps a client connected in it.
Its seam with the keeper is small: `tick` looks at the client (alive? painted? one colour?) and starts or stops
it, and answers what the session's state becomes, as a list of `Verdict`s (each an event: a drop and the reconnect
at once after it are two); the keeper applies them, writes them down, and saves the link's `record` when `dirty`.

- Connecting: a new client; `starting` until the screen has more than 20 colours (`healthy`). Still not painted
  after `first_frame_seconds` while the client runs, on a first connection (since the definition changed or a
  connect was asked): xrdp's login-failed dialog, or a server that gives no session: `failed`, and no retry: that
  needs new credentials or a connect asked for. A connection that painted before has credentials that work: its
  reconnect that does not paint in time is `unhealthy` (no desktop yet) and tried again with backoff.
- A drop (the client exited, or a one-colour screen at two checks in a row while the client's window is not
  viewable: a remote desktop may be one colour on purpose): an event with why, and a new client at once, then
  after 1, 2, 4 ... 60 s for failures in a row (display_keeper.backoff). A session healthy for 30 s counts its
  next failure as a first again.
- An ending that trying again cannot help (wrong credentials, a refused certificate, no client): `failed`.
- `connect` false (disconnected, logged off): no client, `stopped`.
- No password (a spec read back after the agent started again): `unhealthy` until the orchestrator's sync brings
  it, looked at again every PASSWORD_WAIT_SECONDS, not at every tick.

The client is checked at every tick (0.25 s): a drop is seen within one and the new client started in it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict

from robofleet.agents import inputs, rdp_client, screens
from robofleet.agents.displays import DisplaySpec
from robofleet.agents.rdp_client import Client, ClientError

log = logging.getLogger(__name__)
HEALTHY_RESETS_SECONDS = 30.0
ONE_COLOUR_CHECKS = 2  # a one-colour screen at this many checks in a row while connected is a drop
PASSWORD_WAIT_SECONDS = 1.0  # a link without the password looks again this often (the sync that brings it wakes it)

State = Literal["starting", "healthy", "unhealthy", "failed", "stopped"]


@dataclass(frozen=True)
class Verdict:
    """What the session's state becomes, and why (an event)."""

    state: State
    reason: str | None


class ConnectionStatus(TypedDict):
    connects: int
    drops: int
    client_pid: int | None
    last_exit: str | None


@dataclass
class Link:
    """One rdp session's connection: its client and what the watchdog knows of it."""

    log_path: Path
    backoff: Callable[[int], float]
    client: Client | None = None
    connects: int = 0
    drops: int = 0
    last_exit: str | None = None
    failures: int = 0  # failed connects and drops in a row
    retry_at: float = 0.0  # monotonic: when the next client may start
    started_at: float = 0.0  # monotonic: when the current client started
    painted_at: float | None = None  # monotonic: when its desktop showed (None: not yet)
    one_colour: int = 0  # checks in a row that saw one colour while connected
    why: str | None = None  # why the next connect is made (a drop, a restart asked): its event says
    # Painted since the definition last changed or a connect was asked: its credentials work, so a reconnect that
    # does not paint in time is a desktop not there yet, not wrong credentials.
    painted_before: bool = False
    awaiting_password: bool = False  # the last connect waited for the orchestrator's password
    logging_off: bool = False  # a logoff command watches the client: the tick leaves it alone
    dirty: bool = False  # the client changed: the keeper saves the record

    # ---- the seam --------------------------------------------------------------------------------------

    def tick(self, spec: DisplaySpec, display: str, *, look: bool) -> list[Verdict]:
        """Look after the connection of `spec` in `display`; `look`: the checks' pace has come (a one-colour
        screen is looked for then, not at every tick). The state changes, in order, or none."""
        if self.logging_off:
            return []
        if not spec.connect:
            self.end()
            return [Verdict("stopped", "not connected (connect is false)")]
        now = time.monotonic()
        if self.client is not None and not self.client.alive:
            verdicts = self._ended(now)
            if verdicts[-1].state == "failed" or now < self.retry_at:
                return verdicts
            return verdicts + self._connect(spec, display, now)
        if self.client is None:
            return self._connect(spec, display, now) if now >= self.retry_at else []
        if self.painted_at is None:
            return self._first_frame(spec, display, now)
        return self._connected(spec, display, now, look)

    def record(self) -> dict[str, Any]:
        return {
            "client": self.client.record() if self.client is not None else None,
            "connects": self.connects,
            "drops": self.drops,
            "last_exit": self.last_exit,
            "painted_before": self.painted_before,
        }

    def adopt(self, record: dict[str, Any]) -> str | None:
        """Take over what an earlier agent process recorded: its counts and, if it still runs, its client (its
        desktop is looked at again before the session is healthy). What was adopted, for the event."""
        self.connects, self.drops = int(record.get("connects") or 0), int(record.get("drops") or 0)
        self.last_exit = record.get("last_exit")
        self.painted_before = bool(record.get("painted_before"))
        kept = record.get("client")
        if not kept:
            return None
        client = Client.from_record(kept, self.log_path)
        if not client.alive:
            return None
        self.client, self.started_at = client, time.monotonic()
        return f"adopted the RDP client (pid {client.pid})"

    def status(self) -> ConnectionStatus:
        return {
            "connects": self.connects,
            "drops": self.drops,
            "client_pid": self.client.pid if self.client is not None else None,
            "last_exit": self.last_exit,
        }

    def end(self, why: str | None = None) -> None:
        """Stop the client, if any (SIGTERM, then SIGKILL): a disconnect; `why`: the next connect's reason."""
        if self.client is not None:
            rdp_client.stop(self.client)
            self.client, self.painted_at, self.dirty = None, None, True
        self.why = why

    def again(self, why: str, *, first: bool = True) -> None:
        """Connect at the next tick, without waiting (an operator asked; the definition changed); `first`: as if
        for the first time, so that a connection that never paints may be judged wrong credentials (false for a
        reconnect asked of the same definition)."""
        self.end(why)
        self.failures, self.retry_at, self.one_colour = 0, 0.0, 0
        if first:
            self.painted_before = False
            self.dirty = True

    def password_known(self) -> None:
        """The orchestrator sent the password: a link waiting for it connects at the next tick."""
        if self.awaiting_password:
            self.retry_at = 0.0

    # ---- connecting and watching -----------------------------------------------------------------------

    def _connect(self, spec: DisplaySpec, display: str, now: float) -> list[Verdict]:
        rdp = spec.rdp
        assert rdp is not None
        if rdp.password is None:
            # Not a failure (no backoff): the orchestrator's next sync brings it and wakes the link.
            self.awaiting_password, self.retry_at = True, now + PASSWORD_WAIT_SECONDS
            waiting = "the password is not known to this agent (it started again): waiting for the orchestrator's sync"
            return [Verdict("unhealthy", waiting)]
        self.awaiting_password = False
        try:
            self.client = rdp_client.start(spec, display, self.log_path)
        except ClientError as exc:
            self.failures += 1
            if exc.permanent:
                return [Verdict("failed", exc.reason)]
            self.retry_at = now + max(1.0, self.backoff(self.failures))
            return [Verdict("unhealthy", exc.reason)]
        self.connects += 1
        self.started_at, self.painted_at, self.one_colour, self.dirty = now, None, 0, True
        where = f"{rdp.host}:{rdp.port}"
        why, self.why = self.why, None
        log.info("session %s: connecting to %s (connect %d, pid %d)", spec.name, where, self.connects, self.client.pid)
        said = f"connecting to {where} (connect {self.connects})"
        return [Verdict("starting", f"{said} after: {why}" if why else said)]

    def _ended(self, now: float) -> list[Verdict]:
        assert self.client is not None
        ending = rdp_client.ending(self.client)
        was_connected = self.painted_at is not None
        self.client, self.painted_at, self.dirty = None, None, True
        self.last_exit = ending.reason
        self.failures += 1
        if not ending.retry:
            return [Verdict("failed", ending.reason)]
        self.retry_at = now + self.backoff(self.failures)
        if was_connected:
            self.drops += 1
            self.why = f"drop {self.drops}: {ending.reason}"
            return [Verdict("unhealthy", f"dropped: {ending.reason}")]
        self.why = f"could not connect: {ending.reason}"
        return [Verdict("unhealthy", self.why)]

    def _first_frame(self, spec: DisplaySpec, display: str, now: float) -> list[Verdict]:
        rdp = spec.rdp
        assert rdp is not None and self.client is not None
        try:
            count = rdp_client.colours(display)
        except screens.ScreenError:
            count = 0
        if count > rdp_client.PAINTED_COLOURS:
            self.painted_at = now
            if not self.painted_before:
                self.painted_before, self.dirty = True, True
            took = now - self.started_at
            log.info("session %s: the remote desktop shows, %.2f s after the client started", spec.name, took)
            return [Verdict("healthy", None)]
        if now - self.started_at < rdp.first_frame_seconds:
            return []
        said = rdp_client.last_words(self.client)
        self.end()
        self.failures += 1
        self.last_exit = f"no remote desktop within {rdp.first_frame_seconds:g} s"
        if self.painted_before:
            # These credentials showed the desktop before: the server is slow or not back yet. Tried again.
            wait = max(1.0, self.backoff(self.failures))
            self.retry_at = now + wait
            self.why = f"no remote desktop yet within {rdp.first_frame_seconds:g} s of reconnecting"
            reason = f"{self.why} ({count} colours on the screen); trying again in {wait:g} s"
            return [Verdict("unhealthy", f"{reason}: {said}" if said else reason)]
        reason = (
            f"no remote desktop within {rdp.first_frame_seconds:g} s ({count} colours on the screen): wrong "
            "credentials, or the server gives no session (its login screen or a login-failed dialog shows); "
            "waiting for new credentials or a connect"
        )
        return [Verdict("failed", f"{reason}: {said}" if said else reason)]

    def _connected(self, spec: DisplaySpec, display: str, now: float, look: bool) -> list[Verdict]:
        assert self.painted_at is not None
        if now - self.painted_at >= HEALTHY_RESETS_SECONDS:
            self.failures = 0
        if look:
            try:
                count = rdp_client.colours(display, limit=1)
            except screens.ScreenError:
                count = 2  # the display's own check says what is wrong with it
            self.one_colour = self.one_colour + 1 if count <= 1 else 0
            if self.one_colour >= ONE_COLOUR_CHECKS and self._window_shown(display):
                # The client's window is there: the remote desktop is one colour itself (a blank screensaver).
                log.debug("session %s: the screen is one colour but the client's window shows", spec.name)
            elif self.one_colour >= ONE_COLOUR_CHECKS:
                reason = f"the screen was one colour at {self.one_colour} checks in a row"
                self.end()
                self.drops += 1
                self.failures += 1
                self.last_exit = reason
                self.why = f"drop {self.drops}: {reason}"
                self.retry_at = now + self.backoff(self.failures)
                dropped = [Verdict("unhealthy", f"dropped: {reason}")]
                return dropped + (self._connect(spec, display, now) if now >= self.retry_at else [])
        # Healthy is said at the checks' pace, once the display's own check has passed.
        return [Verdict("healthy", None)] if look else []

    def _window_shown(self, display: str) -> bool:
        """Whether the client's window is viewable; not knowing counts as not (the colours alone decide)."""
        return self.client is not None and rdp_client.window_shown(display, self.client.pid) is True

    def ended_by_logoff(self, ending: rdp_client.Ending) -> None:
        """The client ended by the logoff its steps asked: the server session is over, nothing to reconnect."""
        self.last_exit = ending.reason
        self.client, self.painted_at, self.dirty, self.failures = None, None, True, 0


def play(display: str, steps: tuple[str, ...]) -> None:
    """Play logoff steps into `display`: `key:<keys>` (xdotool's key names, as a session's input takes them),
    `type:<text>`, `wait:<seconds>`; InputFailed when one cannot be delivered, ValueError for a bad key."""
    for step in steps:
        kind, _, value = step.partition(":")
        if kind == "wait":
            time.sleep(float(value))
        elif kind == "type":
            inputs.run(display, ["type", "--delay", str(inputs.TYPE_DELAY_MS), "--", value])
        else:
            inputs.run(display, ["key", "--", *(inputs.key_combo(combo) for combo in value.split())])
