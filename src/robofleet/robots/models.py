"""Tables of robots (definitions) and runs (executions, with every transition timestamped)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from robofleet.robots.states import ACTIVE, ENDED, RunState
from robofleet.store.base import Base, BigId, UTCDateTime, utcnow

QUEUED, STARTING, RUNNING, PAUSED = RunState.QUEUED, RunState.STARTING, RunState.RUNNING, RunState.PAUSED
STOPPING, SUCCEEDED, FAILED = RunState.STOPPING, RunState.SUCCEEDED, RunState.FAILED
STOPPED, KILLED, LOST = RunState.STOPPED, RunState.KILLED, RunState.LOST
__all__ = ["ACTIVE", "ENDED", "Robot", "Run", "RunState"]


class Robot(Base):
    __tablename__ = "robots"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    agent: Mapped[str] = mapped_column(String(64), default="local")
    argv: Mapped[list[str]] = mapped_column(JSON)
    cwd: Mapped[str | None] = mapped_column(String(1024))
    env: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    session: Mapped[str | None] = mapped_column(String(64))
    safe_stop_timeout: Mapped[float] = mapped_column(Float, default=30.0)
    max_runtime: Mapped[float | None] = mapped_column(Float)
    restart: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    max_concurrent: Mapped[int] = mapped_column(Integer, default=1)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    from_config: Mapped[bool] = mapped_column(Boolean, default=False)
    manual_stop: Mapped[bool] = mapped_column(Boolean, default=False)
    # Processes a run leaves behind (re-parented children, setsid grandchildren) are ended with it, unless this.
    keep_leftovers: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # How its output lines carry their level (logs/line_formats.py): auto, plain, or a regex with a group "level".
    log_format: Mapped[str] = mapped_column(String(300), default="auto", server_default="auto")
    # The restart policy's next start after a failure: stored, so a restart of serve neither loses nor doubles it.
    restart_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_robot_id_id", "robot", "id"),
        Index("ix_runs_state", "state"),
        Index("ix_runs_stop_deadline", "stop_deadline"),
        Index("ix_runs_runtime_deadline", "runtime_deadline"),
        Index("ix_runs_created_at_robot_state", "created_at", "robot", "state"),  # windowed figures (run_stats)
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    robot_id: Mapped[int | None] = mapped_column(ForeignKey("robots.id", ondelete="SET NULL"))
    robot: Mapped[str] = mapped_column(String(64))
    agent: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=QUEUED)
    pid: Mapped[int | None] = mapped_column(Integer)
    shim_pid: Mapped[int | None] = mapped_column(Integer)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    manual: Mapped[bool] = mapped_column(Boolean, default=True)
    requested_by: Mapped[str] = mapped_column(String(128), default="")
    stop_requested_by: Mapped[str | None] = mapped_column(String(128))
    kill_requested_by: Mapped[str | None] = mapped_column(String(128))  # so its end is "killed" after a restart too
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pause_asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # until the robot reaches a checkpoint
    transitions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Deadlines are stored, not timers: the robots' deadline loop enforces them after a restart of serve too.
    stop_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a safe stop becomes a kill at this time
    runtime_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)  # started_at + the robot's max_runtime
    token_id: Mapped[str | None] = mapped_column(String(32))  # the run's own API token, revoked when it ends
    leftovers: Mapped[int | None] = mapped_column(Integer)  # processes it left behind, ended with it
    # "stop" or "kill" asked while the run's agent was away: sent when the agent is back (robots service).
    pending_action: Mapped[str | None] = mapped_column(String(16), index=True)
