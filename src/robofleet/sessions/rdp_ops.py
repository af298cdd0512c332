"""What an operator (or a robot's action) asks of an rdp session: connect, disconnect (the server session stays),
log off (the server session ends), reconnect, and the secure attention keys (Ctrl+Alt+Del as RDP clients send it).

Connected or not is an intent stored with the session (`connect`) before the agent is asked: every sync sends it,
so a `serve` killed in between, or an agent offline now, ends up doing what was asked last. The agent's answer is the
session's Status, stored like a sync's. Each operation takes sessions:control and is audited (names, never a value of
the connection). A session of another kind is refused with 409 `not_rdp`.

Also here, as pure functions: an rdp session's columns from its fields, the spec its agent gets, and the client's
counts as its agent reports them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from sqlalchemy.orm import Session

from robofleet.auth.audit import audited, record_alone
from robofleet.auth.principal import Principal
from robofleet.errors import Conflict, RobofleetError
from robofleet.sessions import store_ops
from robofleet.sessions.models import GraphicalSession
from robofleet.sessions.schemas import (
    DEFAULT_PORT,
    RDP_FIELDS,
    WINDOWS_LOGOFF,
    ConnectionStatus,
    Done,
    LogoffRequest,
    RdpSpec,
    SessionOut,
)
from robofleet.settings.model import RdpSettings

if TYPE_CHECKING:
    from robofleet.sessions.service import SessionsService

log = logging.getLogger(__name__)
# The agent answers once the client is started or stopped (stopping waits for SIGTERM, then SIGKILL).
CONNECT_SECONDS = 30.0
# Beyond the logoff's own waits: the steps typed and the client's end seen.
LOGOFF_MARGIN_SECONDS = 15.0
INPUT_SECONDS = 15.0
# Ctrl+Alt+Del itself: injected into the client's own Xvfb (no window manager, nothing local takes it), xfreerdp
# sends its scan codes on, which a Windows server takes as the secure attention sequence. (mstsc's ctrl+alt+End is
# a local shortcut of that client; xfreerdp passes ctrl+alt+End on as it is.)
SECURE_ATTENTION_KEYS = "ctrl+alt+Delete"
# The agent's answers to a logoff that leave its client as it was: the stored intent goes back to what it was.
UNCHANGED_BY_LOGOFF = frozenset({"logoff_failed", "busy", "session_unhealthy", "agent_offline", "not_rdp"})


class RdpOperations:
    """Built by the sessions service, which it asks for the session, the agent and the storing of answers."""

    def __init__(self, service: SessionsService) -> None:
        self.service = service

    async def connect(self, principal: Principal, name: str) -> SessionOut:
        """Connect it now (a failed one is tried again: an operator asked) and at every sync from now on. An
        offline agent connects it at its next sync: the answer is the session with `connect` true."""
        return await self._set_intent(principal, name, True, "session.connect")

    async def disconnect(self, principal: Principal, name: str) -> SessionOut:
        """End its client now, and keep it ended (state `stopped`); the server session stays, to connect again
        later. An offline agent ends it at its next sync."""
        return await self._set_intent(principal, name, False, "session.disconnect")

    async def logoff(self, principal: Principal, name: str, request: LogoffRequest) -> SessionOut:
        """Play its logoff steps into the display and wait for the client to end: the server session ends, the
        next connect starts a new one. Conflict when its agent is offline (agent_offline), it is not connected
        (session_unhealthy), or the client did not end within `wait_seconds` (logoff_failed: it stays connected)."""

        def check() -> tuple[SessionOut, bool]:
            with audited(self.service.store, principal, "session.logoff", name) as db:
                row = self._rdp_row(db, principal, name)
                session = store_ops.session_out(row)
                self.service.require_usable(session)
                was, row.connect = row.connect, False  # stored first: a serve killed meanwhile keeps it logged off
                return store_ops.session_out(row), was

        session, was_connect = await asyncio.to_thread(check)
        steps = session.logoff if session.logoff is not None else list(WINDOWS_LOGOFF)
        within = request.wait_seconds + sum(_wait_of(step) for step in steps) + LOGOFF_MARGIN_SECONDS
        # The agent's syncs wait while the steps play (`agent_turn`); the agent leaves a session under a logoff
        # alone anyway.
        async with self.service.agent_turn(session.agent):
            try:
                status = await self.service.command(
                    session, "session.logoff", {"name": name, "wait_seconds": request.wait_seconds}, within
                )
            except RobofleetError as exc:
                # Put back only when the agent surely left the client as it was. After a timeout the agent may still
                # end it (connected again, it would log in to a new server session); after an interruption another
                # operation stored its own intent since.
                if exc.code in UNCHANGED_BY_LOGOFF:
                    await asyncio.to_thread(self._restore, name, was_connect)
                await asyncio.to_thread(
                    record_alone,
                    self.service.store,
                    principal,
                    "session.logoff",
                    name,
                    "failed",
                    {"error": exc.message},
                )
                raise
            return await self.service.store_answer(principal, name, status)

    async def reconnect(self, principal: Principal, name: str) -> SessionOut:
        """End its client and start a new one now (the display stays; the server session too); a disconnected
        one is connected. Conflict when its agent is offline or the session is disabled."""

        def check() -> tuple[SessionOut, bool]:
            with audited(self.service.store, principal, "session.reconnect", name) as db:
                row = self._rdp_row(db, principal, name)
                if not row.enabled:
                    raise Conflict(f"session {name!r} is disabled: enable it instead", details={"session": name})
                self.service.hub.require(row.agent)
                was, row.connect = row.connect, True
                return store_ops.session_out(row), was

        session, was_connect = await asyncio.to_thread(check)
        # A disconnected session has no client to end: the agent connects it (its kept spec still says false).
        command = "session.restart" if was_connect else "session.connect"
        async with self.service.agent_turn(session.agent):
            status = await self.service.command(session, command, {"name": name}, CONNECT_SECONDS)
            return await self.service.store_answer(principal, name, status)

    async def secure_attention(self, principal: Principal, name: str) -> Done:
        """Send the remote desktop Ctrl+Alt+Del (the client passes the keys on as they are). Conflict when the
        session is not healthy or its agent offline."""

        def check() -> SessionOut:
            with audited(self.service.store, principal, "session.secure_attention", name) as db:
                session = store_ops.session_out(self._rdp_row(db, principal, name))
                self.service.require_usable(session)
                return session

        session = await asyncio.to_thread(check)
        args = {"name": name, "kind": "key", "keys": SECURE_ATTENTION_KEYS}
        try:
            await self.service.command(session, "session.input", args, INPUT_SECONDS)
        except RobofleetError as exc:
            await asyncio.to_thread(
                record_alone,
                self.service.store,
                principal,
                "session.secure_attention",
                name,
                "failed",
                {"error": exc.message},
            )
            raise
        return Done()

    async def _set_intent(self, principal: Principal, name: str, connect: bool, command: str) -> SessionOut:
        def store() -> SessionOut:
            with audited(self.service.store, principal, command, name, {"connect": connect}) as db:
                row = self._rdp_row(db, principal, name)
                row.connect = connect
                db.flush()
                return store_ops.session_out(row)

        session = await asyncio.to_thread(store)
        self.service.publish([session])
        if not session.enabled or session.agent not in self.service.hub.agents:
            return session  # the intent is stored: its agent's next sync carries it
        async with self.service.agent_turn(session.agent):
            try:
                status = await self.service.command(session, command, {"name": name}, CONNECT_SECONDS)
            except RobofleetError as exc:
                # Stored all the same: the next sync carries it (the agent may not keep the session yet, or left).
                log.warning("session %s: %s not done now (%s); its agent gets it at the next sync", name, command, exc)
                self.service.wake()
                return await asyncio.to_thread(self.service.get_session, principal, name)
            return await self.service.store_answer(principal, name, status)

    def _rdp_row(self, db: Session, principal: Principal, name: str) -> GraphicalSession:
        """The session `principal` may control (Forbidden, NotFound as for input), locked; Conflict not_rdp when it
        is of another kind."""
        row = self.service.scoped(db, principal, "sessions:control", name, lock=True)
        if row.kind != "rdp":
            raise Conflict(
                f"session {name!r} is an {row.kind} session: only an rdp session connects, disconnects and logs off",
                details={"session": name, "kind": row.kind},
                code="not_rdp",
            )
        return row

    def _restore(self, name: str, connect: bool) -> None:
        """The intent as it was before a logoff that did not happen (the client is still connected)."""
        with self.service.store.transaction() as db:
            store_ops.find(db, name, lock=True).connect = connect


def _wait_of(step: str) -> float:
    kind, _, value = step.partition(":")
    return float(value) if kind == "wait" else 0.0


def rdp_columns(kind: str, values: dict[str, Any]) -> dict[str, Any]:
    """The rdp columns of a session of `kind` from its fields: the password as text, the defaults of those not set
    (a session that became rdp); all None for the other kinds."""
    if kind != "rdp":
        return dict.fromkeys(RDP_FIELDS)
    password = values.get("password")
    return {
        **{key: values.get(key) for key in RDP_FIELDS},
        "password": password.get_secret_value() if isinstance(password, SecretStr) else password,
        "port": values.get("port") or DEFAULT_PORT,
        "domain": values.get("domain") or "",
        "security": values.get("security") or "auto",
        "certificate": values.get("certificate") or "tofu",
        "logoff": list(WINDOWS_LOGOFF) if values.get("logoff") is None else list(values["logoff"]),
    }


def rdp_spec(row: GraphicalSession, client: RdpSettings) -> RdpSpec:
    """What the agent of an rdp session gets to connect it: the connection, with its password, and the client."""
    return RdpSpec(
        host=row.host or "",
        port=row.port or DEFAULT_PORT,
        username=row.username or "",
        domain=row.domain or "",
        password=row.password or "",
        security=row.security or "auto",
        certificate=row.certificate or "tofu",
        logoff=list(WINDOWS_LOGOFF if row.logoff is None else row.logoff),
        client=client.client,
        extra_args=list(client.extra_args),
        first_frame_seconds=client.first_frame_seconds,
    )


def connection_facts(given: Mapping[str, Any]) -> ConnectionStatus:
    """An rdp client's counts as the agent reported them, kept to their shape (the answer is the agent's to make)."""
    last_exit = given.get("last_exit")
    pid = _count(given.get("client_pid"))
    return ConnectionStatus(
        connects=_count(given.get("connects")),
        drops=_count(given.get("drops")),
        client_pid=pid or None,
        last_exit=str(last_exit)[:500] if last_exit is not None else None,
    )


def _count(value: Any) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0
