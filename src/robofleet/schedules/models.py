"""Tables of schedules (what fires when, and the stored next fire), their fires (every fire and skip, with its
outcome) and calendars (named sets of excluded days)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from robofleet.store.base import Base, BigId, UTCDateTime, utcnow


class Outcome(StrEnum):
    """What became of one planned fire."""

    FIRED = "fired"  # its activity was submitted (activity_id)
    QUEUED = "queued"  # overlap "queue": held until the robot's active run ends, then fired
    SKIPPED_OVERLAP = "skipped_overlap"  # overlap "skip": the target robot had an active run
    SKIPPED_MISFIRE = "skipped_misfire"  # misfire "skip": it fell due more than grace_seconds ago
    SKIPPED_CALENDAR = "skipped_calendar"  # its day became excluded after it was planned
    FAILED = "failed"  # the activity could not be submitted (error)


class Schedule(Base):
    __tablename__ = "schedules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    target_action: Mapped[str] = mapped_column(String(128))
    target_args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    trigger: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Read out of the JSON above when written, so that the engine and the checks find schedules by them in SQL:
    # the trigger's kind, the robot its target acts on (robots.* targets), the robot whose runs fire it (run_event).
    trigger_kind: Mapped[str] = mapped_column(String(16), default="", server_default="", index=True)
    target_robot: Mapped[str | None] = mapped_column(String(64), index=True)
    event_robot: Mapped[str | None] = mapped_column(String(64), index=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    calendars: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    misfire_policy: Mapped[str] = mapped_column(String(16), default="skip")
    misfire_grace_seconds: Mapped[float] = mapped_column(Float, default=60.0)
    overlap: Mapped[str] = mapped_column(String(16), default="skip")
    jitter_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The stored deadline the engine acts on: the next planned fire plus its jitter. `next_planned_at` is the
    # planned time itself (the next one is computed after it, so a jitter never skips a slot).
    next_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    next_planned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A window schedule inside its window: the end, when its robot's runs are stopped.
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Overlap "queue": a fire waiting for the robot's active run to end (its planned time).
    queued_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    broken: Mapped[str | None] = mapped_column(Text)  # why it fires nothing (its target is gone); None: healthy
    # Who the schedule acts as: its last writer (username, how they called, their token's scopes). The fires run
    # with that user's rights at fire time, never more.
    owner: Mapped[str] = mapped_column(String(128), default="")
    owner_via: Mapped[str] = mapped_column(String(16), default="system")
    owner_scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    from_config: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ScheduleFire(Base):
    __tablename__ = "schedule_fires"
    __table_args__ = (
        # One row per planned time of a schedule: the second of two racing engines fails here, never fires twice.
        UniqueConstraint("schedule", "planned_at", name="uq_schedule_fires_schedule_planned_at"),
        Index("ix_schedule_fires_schedule_id", "schedule", "id"),
        Index("ix_schedule_fires_planned_at", "planned_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    schedule: Mapped[str] = mapped_column(String(64))
    planned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(128), default="")
    activity_id: Mapped[int | None] = mapped_column(BigInteger)
    outcome: Mapped[str] = mapped_column(String(24))
    error: Mapped[str | None] = mapped_column(Text)
    missed: Mapped[int] = mapped_column(Integer, default=0)  # planned fires this row stands for beyond its own


class Calendar(Base):
    __tablename__ = "calendars"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    dates: Mapped[list[str]] = mapped_column(JSON, default=list)  # ISO dates
    holidays: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{"country", "subdiv"}]
    description: Mapped[str] = mapped_column(Text, default="")
    from_config: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
