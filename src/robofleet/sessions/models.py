"""Tables of graphical sessions (their definitions and the state their agent last reported), each session's history
(state changes, restarts and their reasons) and the evidence kept of failed runs (process tree, output, screenshot,
recording)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from robofleet.store.base import Base, BigId, UTCDateTime, utcnow


class GraphicalSession(Base):
    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_agent", "agent", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    agent: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # xvfb | attach | rdp
    display: Mapped[str | None] = mapped_column(String(32))  # as asked: attach's display, or xvfb's fixed one
    width: Mapped[int] = mapped_column(Integer, default=1280)
    height: Mapped[int] = mapped_column(Integer, default=800)
    depth: Mapped[int] = mapped_column(Integer, default=24)
    window_manager: Mapped[bool] = mapped_column(Boolean, default=False)
    restart: Mapped[str] = mapped_column(String(16), default="always")
    record_seconds: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    from_config: Mapped[bool] = mapped_column(Boolean, default=False)
    # An rdp session's connection (None for the other kinds). The password is kept as given, as the alert channels'
    # webhook secrets are: the agent needs it at every connect, so a hash would not do; it leaves the store only in
    # the specs sent to the session's agent.
    host: Mapped[str | None] = mapped_column(String(255))
    port: Mapped[int | None] = mapped_column(Integer)
    username: Mapped[str | None] = mapped_column(String(256))
    password: Mapped[str | None] = mapped_column(Text)
    domain: Mapped[str | None] = mapped_column(String(256))
    security: Mapped[str | None] = mapped_column(String(8))
    certificate: Mapped[str | None] = mapped_column(String(96))
    logoff: Mapped[list[str] | None] = mapped_column(JSON)
    # The stored intent: false after a disconnect or a logoff asked, true after a connect. What the agent is sent at
    # every sync, so that a restarted `serve` (even a killed one) asks for what was asked last.
    connect: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # What its agent said last of its client: connects, drops, client_pid, last_exit.
    connection: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What its agent said last (the sync loop writes these; nothing else does).
    state: Mapped[str] = mapped_column(String(16), default="starting")
    state_reason: Mapped[str | None] = mapped_column(Text)
    actual_display: Mapped[str | None] = mapped_column(String(32))
    pid: Mapped[int | None] = mapped_column(Integer)
    # The screen's size as its agent found it: an attached display's own, whatever width and height say.
    screen_width: Mapped[int | None] = mapped_column(Integer)
    screen_height: Mapped[int | None] = mapped_column(Integer)
    restarts: Mapped[int] = mapped_column(Integer, default=0)
    state_since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_healthy_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When a replica last heard of it from its agent: long ago (or never), and with its agent connected to no
    # replica that syncs it, the session counts as its agent's: offline.
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The agent process whose events were stored last, and the last of its event numbers stored: an event is
    # stored once, however many syncs repeat it.
    agent_instance: Mapped[str | None] = mapped_column(String(64))
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Of the definition: set by the service's changes, not by the sync loop's writes of the state.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def has_password(self) -> bool:
        """Whether a password is stored (what SessionOut says of it instead of the password)."""
        return bool(self.password)


class SessionEvent(Base):
    """One line of a session's history: a state its agent reported (with the agent's number of the event), or
    what the server saw itself (its agent offline, an operator's restart)."""

    __tablename__ = "session_events"
    __table_args__ = (Index("ix_session_events_session", "session_id", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(160))  # agent:NAME, server, or the actor of an operator's act
    seq: Mapped[int | None] = mapped_column(BigInteger)


class RunEvidence(Base):
    """What the agent kept of a run that failed, was killed or stopped: the bundle's facts as JSON, its images as
    bytes (served apart, never inside the JSON)."""

    __tablename__ = "run_evidence"
    __table_args__ = (Index("ix_run_evidence_stored_at", "stored_at"),)
    run_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    robot: Mapped[str] = mapped_column(String(64))
    agent: Mapped[str] = mapped_column(String(64))
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # exit, processes, output
    screenshot_type: Mapped[str | None] = mapped_column(String(64))
    screenshot: Mapped[bytes | None] = mapped_column(LargeBinary)
    recording_type: Mapped[str | None] = mapped_column(String(64))
    recording: Mapped[bytes | None] = mapped_column(LargeBinary)
    recording_frames: Mapped[int | None] = mapped_column(Integer)
