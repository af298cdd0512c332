"""Tables of queues (their definitions), their items (one row each, the claim's index on it) and the items'
history (how each attempt ended, and operators' acts)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from robofleet.store.base import Base, BigId, UTCDateTime, utcnow

# Items without a deadline sort after those with one. SQLite sorts NULL first and cannot index "NULLS LAST", so
# the claim orders by this stored value instead of the nullable deadline itself.
NO_DEADLINE = datetime(9999, 12, 31, tzinfo=UTC)
# The waiting states as SQL: the claim's partial index and the claim itself say it in the same words (states.WAITING).
WAITING_SQL = "state IN ('new', 'retry')"
_WAITING = text(WAITING_SQL)


class Queue(Base):
    __tablename__ = "queues"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    max_retries: Mapped[int] = mapped_column(Integer, default=3)
    retry_backoff_seconds: Mapped[float] = mapped_column(Float, default=30.0)
    lease_seconds: Mapped[float] = mapped_column(Float, default=300.0)
    unique_references: Mapped[bool] = mapped_column(Boolean, default=False)
    sla_minutes: Mapped[int | None] = mapped_column(Integer)
    retention_days: Mapped[int] = mapped_column(Integer, default=30)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    from_config: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class QueueItem(Base):
    __tablename__ = "queue_items"
    __table_args__ = (
        # The claim: the best waiting item of one queue is the first entry of this index past the queue's prefix
        # (those not ready yet are skipped by ready_at). Only waiting items are in it, so it stays as small as the
        # backlog however many finished items are kept.
        Index(
            "ix_queue_items_claim",
            "queue_id",
            "priority_rank",
            "order_deadline",
            "id",
            sqlite_where=_WAITING,
            postgresql_where=_WAITING,
        ),
        # Lists and counts by state, bulk acts, and the leases to expire (a queue's few in_progress items).
        Index("ix_queue_items_queue_state", "queue_id", "state", "id"),
        # Throughput, handling times and retention: the finished items of a time range.
        Index(
            "ix_queue_items_finished",
            "queue_id",
            "finished_at",
            sqlite_where=text("finished_at IS NOT NULL"),
            postgresql_where=text("finished_at IS NOT NULL"),
        ),
        # A duplicate reference in a unique queue fails here, whatever adds race: `unique_ref` is the reference
        # while the queue wants them unique and the item is not deleted, else NULL (and not in the index).
        Index(
            "uq_queue_items_reference",
            "queue_id",
            "unique_ref",
            unique=True,
            sqlite_where=text("unique_ref IS NOT NULL"),
            postgresql_where=text("unique_ref IS NOT NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"))
    reference: Mapped[str | None] = mapped_column(String(256))
    unique_ref: Mapped[str | None] = mapped_column(String(256))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    # Minus the priority: the claim's order (higher priority first, then deadline, then age) is then one ascending
    # index, which both stores read forwards and report back alike (SQLite loses a DESC key on reflection).
    priority_rank: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[Any] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="new")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    order_deadline: Mapped[datetime] = mapped_column(UTCDateTime, default=NO_DEADLINE)
    postpone_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When it may be leased: its postpone_until (or when it was added), a retry's backoff, now on a manual retry.
    ready_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The lease: a random id the worker must name to report; the stored expiry the housekeeping acts on.
    lease_id: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    leased_by: Mapped[str | None] = mapped_column(String(160))
    leased_run: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the current or last attempt's
    output: Mapped[Any | None] = mapped_column(JSON)
    error_kind: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    added_by: Mapped[str] = mapped_column(String(160), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handled_seconds: Mapped[float | None] = mapped_column(Float)  # the last attempt's, once finished


class QueueItemEvent(Base):
    """One line of an item's history: how an attempt ended (who held the lease, when it began, the outcome and
    error) or what an operator did. Leasing itself writes none: the item row holds the attempt in progress."""

    __tablename__ = "queue_item_events"
    __table_args__ = (Index("ix_queue_item_events_item", "item_id", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("queue_items.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    event: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(160))
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    leased_by: Mapped[str | None] = mapped_column(String(160))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_kind: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
