"""The activities table: every call of an action, with who asked, when, and how it ended."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from robofleet.store.base import Base, BigId, UTCDateTime, utcnow


class ActivityState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


QUEUED, RUNNING, SUCCEEDED = ActivityState.QUEUED, ActivityState.RUNNING, ActivityState.SUCCEEDED
FAILED, CANCELLED = ActivityState.FAILED, ActivityState.CANCELLED
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})
STATES = tuple(ActivityState)


class Activity(Base):
    __tablename__ = "activities"
    __table_args__ = (
        UniqueConstraint("requested_by", "idempotency_key"),
        Index("ix_activities_state_id", "state", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    action: Mapped[str] = mapped_column(String(128), index=True)
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    mode: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16), default=QUEUED)
    result: Mapped[Any] = mapped_column(JSON, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    requested_by: Mapped[str] = mapped_column(String(128), index=True)
    requester_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    requester_via: Mapped[str] = mapped_column(String(16), default="token")
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    source_ip: Mapped[str] = mapped_column(String(64), default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    batch_id: Mapped[int | None] = mapped_column(BigId)
    batch_index: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The replica (serve process) that owns it while queued or running: runtime/replicas.py. NULL: none that lives.
    replica: Mapped[str | None] = mapped_column(String(32))
