"""A queue's figures: counts by state, throughput, handling times, SLA and the oldest waiting item. The reads are
here with the arithmetic on them (percentile, buckets), so that the panel, the API and the metrics agree."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select

from robofleet.queues.lease_ops import Statements
from robofleet.queues.schemas import QueueStats
from robofleet.queues.states import UNFINISHED, ItemState
from robofleet.queues.store_ops import ITEMS, QueueRef

WINDOW_MINUTES = 60
HANDLING_SAMPLE = 10_000  # the handling times of at most this many of the hour's newest items are looked at


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of `values` (None when there are none)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def buckets(minutes: dict[int, int], now: datetime, count: int = WINDOW_MINUTES) -> list[int]:
    """Per-minute counts keyed by minutes since the epoch → the last `count` minutes up to `now`, oldest first."""
    current = int(now.timestamp()) // 60
    return [minutes.get(minute, 0) for minute in range(current - count + 1, current + 1)]


def queue_stats(connection: Connection, statements: Statements, queue: QueueRef, now: datetime) -> QueueStats:
    counts = {state: 0 for state in ItemState}
    by_state = select(ITEMS.c.state, func.count()).where(ITEMS.c.queue_id == queue.id).group_by(ITEMS.c.state)
    for state, count in connection.execute(by_state):
        counts[ItemState(state)] = int(count)

    since = now - timedelta(minutes=WINDOW_MINUTES)
    done_recently = (
        ITEMS.c.queue_id == queue.id,
        ITEMS.c.finished_at.is_not(None),
        ITEMS.c.finished_at >= since,
        ITEMS.c.state == ItemState.DONE.value,
    )
    minute = statements.minute_of(ITEMS.c.finished_at).label("minute")
    per_minute = select(minute, func.count()).where(*done_recently).group_by(minute)
    minutes: dict[int, int] = {}
    for bucket, count in connection.execute(per_minute):
        minutes[int(bucket)] = minutes.get(int(bucket), 0) + int(count)
    sample = (
        select(ITEMS.c.handled_seconds)
        .where(*done_recently, ITEMS.c.handled_seconds.is_not(None))
        .order_by(ITEMS.c.finished_at.desc())
        .limit(HANDLING_SAMPLE)
    )
    handled = [float(value) for value in connection.execute(sample).scalars()]

    unfinished = (ITEMS.c.queue_id == queue.id, ITEMS.c.state.in_([state.value for state in UNFINISHED]))
    past_sla = 0
    if queue.sla_minutes is not None:
        late = now - timedelta(minutes=queue.sla_minutes)
        past_sla = int(
            connection.execute(select(func.count()).where(*unfinished, ITEMS.c.created_at < late)).scalar_one()
        )
    past_deadline = int(
        connection.execute(select(func.count()).where(*unfinished, ITEMS.c.deadline < now)).scalar_one()
    )
    oldest: datetime | None = None
    for state in (ItemState.NEW, ItemState.RETRY):
        # The first id of each waiting state is its oldest: two index lookups, not a scan of the backlog.
        first = (
            select(ITEMS.c.created_at)
            .where(ITEMS.c.queue_id == queue.id, ITEMS.c.state == state.value)
            .order_by(ITEMS.c.id)
            .limit(1)
        )
        created = connection.execute(first).scalar()
        if created is not None and (oldest is None or created < oldest):
            oldest = created
    return QueueStats(
        queue=queue.name,
        counts=counts,
        throughput_per_minute=buckets(minutes, now),
        average_handling_seconds=round(sum(handled) / len(handled), 3) if handled else None,
        p95_handling_seconds=None if not handled else round(percentile(handled, 0.95) or 0.0, 3),
        past_sla=past_sla,
        past_deadline=past_deadline,
        oldest_waiting_seconds=None if oldest is None else round((now - oldest).total_seconds(), 3),
        at=now,
    )
