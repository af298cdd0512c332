"""A queue item's states and the transitions allowed between them (DESIGN.md, "Queues"), as data a test can read.

Every statement that changes an item's state names the states it may leave in its WHERE clause (`sources`), so a
change that is not in this table matches no row and is answered 409 with the item's state."""

from __future__ import annotations

from enum import StrEnum


class ItemState(StrEnum):
    NEW = "new"  # added, never attempted (or released before its first outcome)
    IN_PROGRESS = "in_progress"  # leased by a worker until lease_expires_at
    DONE = "done"
    FAILED = "failed"  # a business failure: final, never retried by itself
    RETRY = "retry"  # waiting for another attempt (from ready_at)
    ABANDONED = "abandoned"  # application failures or expired leases past the queue's max_retries
    DELETED = "deleted"  # removed by an operator; kept until retention


class Event(StrEnum):
    """What an entry of an item's history records: the end of an attempt, or an operator's act."""

    COMPLETED = "completed"
    FAILED = "failed"  # an attempt failed; the entry's `to_state` says whether it is retried
    RELEASED = "released"  # given back by its worker: the attempt does not count
    EXPIRED = "expired"  # the lease ran out (the worker died or hung)
    RETRIED = "retried"  # an operator asked for another round (bulk retry)
    DELETED = "deleted"


WAITING: tuple[ItemState, ...] = (ItemState.NEW, ItemState.RETRY)  # may be leased once ready_at has come
UNFINISHED: tuple[ItemState, ...] = (ItemState.NEW, ItemState.RETRY, ItemState.IN_PROGRESS)
FINISHED: tuple[ItemState, ...] = (ItemState.DONE, ItemState.FAILED, ItemState.ABANDONED, ItemState.DELETED)

# From each state, the states an item may move to.
TRANSITIONS: dict[ItemState, frozenset[ItemState]] = {
    ItemState.NEW: frozenset({ItemState.IN_PROGRESS, ItemState.DELETED}),
    ItemState.RETRY: frozenset({ItemState.IN_PROGRESS, ItemState.DELETED}),
    ItemState.IN_PROGRESS: frozenset(
        {
            ItemState.DONE,
            ItemState.FAILED,
            ItemState.RETRY,
            ItemState.ABANDONED,
            ItemState.NEW,  # released before any attempt counted
            ItemState.DELETED,  # its worker's next call is then a 409
        }
    ),
    ItemState.DONE: frozenset({ItemState.DELETED}),
    ItemState.FAILED: frozenset({ItemState.RETRY, ItemState.DELETED}),
    ItemState.ABANDONED: frozenset({ItemState.RETRY, ItemState.DELETED}),
    ItemState.DELETED: frozenset(),
}


def sources(target: ItemState) -> tuple[ItemState, ...]:
    """The states an item may move to `target` from, in the table's order."""
    return tuple(state for state, targets in TRANSITIONS.items() if target in targets)
