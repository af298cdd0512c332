"""What becomes of an item whose attempt ended without success: pure functions of the queue's policy and the
item's attempts, no store and no clock of their own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from robofleet.queues.states import ItemState

ErrorKind = Literal["business", "application"]
MAX_BACKOFF_SECONDS = 86_400.0  # a day: past it, doubling again tells the operator nothing new


@dataclass(frozen=True)
class AfterFailure:
    state: ItemState  # failed, retry or abandoned
    ready_at: datetime | None  # for a retry: when it may be leased again


def backoff_seconds(base: float, attempts: int) -> float:
    """The wait before attempt `attempts + 1`: `base` after the first attempt, doubled after each one since."""
    if base <= 0 or attempts < 1:
        return 0.0
    return min(base * 2.0 ** min(attempts - 1, 30), MAX_BACKOFF_SECONDS)


def after_failure(kind: ErrorKind, *, attempts: int, max_retries: int, backoff: float, now: datetime) -> AfterFailure:
    """A business failure is final. An application failure (an expired lease counts as one) is retried while the
    item has had at most `max_retries` retries, i.e. `max_retries + 1` attempts in all; then it is abandoned."""
    if kind == "business":
        return AfterFailure(ItemState.FAILED, None)
    if attempts <= max_retries:
        return AfterFailure(ItemState.RETRY, now + timedelta(seconds=backoff_seconds(backoff, attempts)))
    return AfterFailure(ItemState.ABANDONED, None)
