"""The pure rules of queues: the state table, what a failure leads to, backoff, and the figures' arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from robofleet.queues.retries import MAX_BACKOFF_SECONDS, after_failure, backoff_seconds
from robofleet.queues.states import FINISHED, TRANSITIONS, WAITING, ItemState, sources
from robofleet.queues.stats import buckets, percentile

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def test_the_state_table_is_the_designs() -> None:
    assert set(TRANSITIONS) == set(ItemState)
    assert TRANSITIONS[ItemState.DELETED] == frozenset()
    assert TRANSITIONS[ItemState.DONE] == {ItemState.DELETED}  # done is done: never retried
    assert sources(ItemState.IN_PROGRESS) == WAITING  # only a waiting item is leased
    assert set(sources(ItemState.DONE)) == {ItemState.IN_PROGRESS}  # only the lease holder completes
    assert set(FINISHED) | set(WAITING) | {ItemState.IN_PROGRESS} == set(ItemState)


def test_a_business_failure_is_final_an_application_one_retried_then_abandoned() -> None:
    assert after_failure("business", attempts=1, max_retries=3, backoff=10, now=NOW).state == ItemState.FAILED
    first = after_failure("application", attempts=1, max_retries=2, backoff=10, now=NOW)
    assert first.state == ItemState.RETRY and first.ready_at == NOW + timedelta(seconds=10)
    second = after_failure("application", attempts=2, max_retries=2, backoff=10, now=NOW)
    assert second.state == ItemState.RETRY and second.ready_at == NOW + timedelta(seconds=20)
    assert after_failure("application", attempts=3, max_retries=2, backoff=10, now=NOW).state == ItemState.ABANDONED
    assert after_failure("application", attempts=1, max_retries=0, backoff=10, now=NOW).state == ItemState.ABANDONED


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_seconds(5, n) for n in range(0, 5)] == [0.0, 5, 10, 20, 40]
    assert backoff_seconds(0, 7) == 0.0
    assert backoff_seconds(60, 1000) == MAX_BACKOFF_SECONDS


def test_percentile_and_minute_buckets() -> None:
    assert percentile([], 0.95) is None
    assert percentile([float(n) for n in range(1, 101)], 0.95) == 95.0
    assert percentile([3.0], 0.95) == 3.0
    minute = int(NOW.timestamp()) // 60
    counts = buckets({minute: 4, minute - 59: 1, minute - 60: 9}, NOW)
    assert len(counts) == 60 and counts[-1] == 4 and counts[0] == 1 and sum(counts) == 5
