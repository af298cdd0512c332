"""Work queues from a robot, over the orchestrator's HTTP API with the run's own token:

    for item in sdk.queue("invoices"):
        with item:
            item.output = pay(item.payload)

The loop leases one item at a time (`POST /api/v1/queues/{name}/items/next`, long-polling in slices of
`poll_seconds`) and keeps its lease alive while the robot works on it (`keepalive.LeaseKeeper`). How each item
ends:

- the body finishes: the item is completed with `item.output` (None unless the body set it);
- `with item:` sees an exception: a `BusinessError` fails the item for good (kind `business`, its message), any
  other `Exception` fails it as `application` ("TypeName: message" and the traceback), retried while the queue's
  max_retries allow. The exception is logged and swallowed, so the loop goes on to the next item: one bad item must
  not stop a worker. A KeyboardInterrupt or SystemExit fails the item as `application` and goes on up: the robot
  stops;
- the loop is left while an item is in hand without `with item:` seeing why (an exception out of the body, a
  `break`): the item is failed as `application`, the attempt counted. A `for` statement cannot go on after its
  body raised, nor can it tell its iterator what was raised: `with item:` is what reports the exception's kind;
- `item.complete(output)`, `item.fail(message, kind=…)` or `item.release()` reported it already: nothing more.

A report the orchestrator answers with 409 `lease_lost` (the lease ran out while the orchestrator or the network was
away; the item will come back, to this worker or another) is logged and the loop goes on.

Between items the loop is at a `checkpoint()`: a pause holds it there rather than freezing the robot mid-item
(unless the item outlasts the robot's safe_stop_timeout), and it ends once `should_stop()` turns true (a safe stop,
SIGTERM). A stop that comes during a long poll is seen when the slice ends; an item leased meanwhile is released
unattempted. With `idle=SECONDS` the loop also ends once no item came for that long while the orchestrator
answered; by default it waits for items until stopped.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from types import TracebackType
from typing import Any, Literal, TypedDict
from urllib.parse import quote

from robofleet.sdk.checkpoints import checkpoint
from robofleet.sdk.connection import Connection, Resend, default_connection
from robofleet.sdk.errors import BusinessError, ItemRefused, OrchestratorUnreachable, Refused
from robofleet.sdk.keepalive import LeaseKeeper
from robofleet.sdk.run import should_stop

log = logging.getLogger("robofleet.sdk")

POLL_SECONDS = 0.5  # a stop asked during a long poll is seen within this (and the request's round trip)
ADD_BATCH = 1000
MAX_MESSAGE = 20_000  # the orchestrator's longest failure message
DEFAULT_LEASE_SECONDS = 300.0
LEFT_THE_LOOP = (
    "the robot left its queue loop while it held the item (an exception out of the loop body, or a break); "
    "`with item:` reports the exception itself"
)


class _Away(Enum):
    AWAY = "away"  # the orchestrator did not answer a poll


AWAY = _Away.AWAY
ErrorKind = Literal["business", "application"]
NEW_ITEM_FIELDS = frozenset({"payload", "reference", "priority", "deadline", "postpone_until"})


class NewItem(TypedDict, total=False):
    """An item to add: what the worker needs (`payload`, a JSON object), an optional `reference` (unique per queue
    when the queue says so), `priority` (higher first, 0 to 1000), `deadline` and `postpone_until` (datetimes with a
    time zone, or ISO 8601 text)."""

    payload: dict[str, Any]
    reference: str | None
    priority: int
    deadline: datetime | str | None
    postpone_until: datetime | str | None


@dataclass(frozen=True)
class Refusal:
    index: int  # the refused item's place in the items given, from 0
    reason: str  # duplicate_reference
    message: str


@dataclass(frozen=True)
class Added:
    ids: list[int]  # the new items' ids, in the order given, those refused left out
    refused: list[Refusal]


class Item:
    """A leased queue item. Set `output` for the completion; report it yourself with `complete`, `fail` or
    `release`, or let the loop (and `with item:`) do it."""

    def __init__(self, queue: Queue, leased: dict[str, Any]) -> None:
        self.queue = queue.name
        self.id = int(leased["id"])
        self.reference: str | None = leased["reference"]
        self.payload: dict[str, Any] = leased["payload"]
        self.priority = int(leased["priority"])
        self.attempts = int(leased["attempts"])
        self.deadline = _moment(leased["deadline"])
        self.lease_id = str(leased["lease_id"])
        self.output: Any = None
        self.outcome: str | None = None  # once reported: the item's state, "lease_lost" or "unreported"
        self._connection = queue.connection
        self._path = f"{queue.path}/{self.id}"
        self._keeper = LeaseKeeper(self._connection, self._path, self.lease_id, _lease_seconds(leased))

    def __repr__(self) -> str:
        return f"<Item {self.id} of {self.queue!r} reference={self.reference!r} outcome={self.outcome}>"

    @property
    def reported(self) -> bool:
        return self.outcome is not None

    @property
    def lease_lost(self) -> str | None:
        """Why the orchestrator refused to extend the lease, once it did: the item may be someone else's now."""
        return self._keeper.lost

    def complete(self, output: Any = None) -> str:
        """Report the item done with `output` (else `self.output`); its state afterwards (see `outcome`). An output
        that is not JSON, or that the orchestrator refuses (too large), fails the item as `application` instead."""
        if output is not None:
            self.output = output
        try:
            json.dumps(self.output, allow_nan=False)
        except (TypeError, ValueError) as exc:
            return self.fail(f"item.output is not JSON: {type(exc).__name__}: {exc}")
        return self._report("complete", {"output": self.output})

    def fail(self, message: str, *, kind: ErrorKind = "application") -> str:
        """Report the item failed: `business` ends it for good, `application` is retried while the queue's
        max_retries allow, then abandoned. Its state afterwards."""
        if kind not in ("business", "application"):
            raise ValueError(f"kind must be 'business' or 'application', not {kind!r}")
        return self._report("fail", {"kind": kind, "message": _bounded(message)})

    def release(self) -> str:
        """Give the item back unattempted: it waits again at once, this attempt not counted."""
        return self._report("release", {})

    def keep_alive(self) -> None:
        """Start extending the lease until the item is reported (the queue does it for each item it leases)."""
        self._keeper.start()

    def __enter__(self) -> Item:
        return self

    def __exit__(
        self, error_type: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> bool:
        if error is None:
            if not self.reported:
                self.complete()
            return False
        if isinstance(error, BusinessError):
            log.warning("item %d of %r failed (business): %s", self.id, self.queue, error)
            if not self.reported:
                self.fail(str(error) or type(error).__name__, kind="business")
            return True
        if isinstance(error, Exception):
            log.error("item %d of %r failed", self.id, self.queue, exc_info=(type(error), error, trace))
            if not self.reported:
                self.fail(_described(error, trace))
            return True
        # KeyboardInterrupt, SystemExit: the robot is going, after saying what became of its item.
        if not self.reported:
            self.fail(f"the robot was interrupted: {type(error).__name__}{f': {error}' if str(error) else ''}")
        return False

    def _report(self, verb: str, body: dict[str, Any]) -> str:
        self._keeper.stop()
        if self.reported:
            raise RuntimeError(f"item {self.id} was reported already ({self.outcome})")
        try:
            response = self._connection.request(
                "POST", f"{self._path}/{verb}", json={"lease_id": self.lease_id, **body}
            )
        except OrchestratorUnreachable as exc:
            log.error(
                "could not %s item %d of %r (%s): it comes back once its lease runs out", verb, self.id, self.queue, exc
            )
            self.outcome = "unreported"
            return self.outcome
        if response.status_code == 200:
            self.outcome = str(response.json()["state"])
            return self.outcome
        refusal = Refused.of(response)
        if response.status_code == 409:
            log.warning("could not %s item %d of %r: %s", verb, self.id, self.queue, refusal.message)
            self.outcome = "lease_lost"
            return self.outcome
        if verb == "complete" and response.status_code in (413, 422):
            return self._report("fail", {"kind": "application", "message": f"output refused: {refusal.message}"})
        raise refusal


class Queue:
    """A queue of the orchestrator: iterate it to work its items (see the module's docstring), `add` to it."""

    def __init__(
        self,
        name: str,
        *,
        connection: Connection | None = None,
        idle: float | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        """NotInARun when no `connection` is given and the environment has no orchestrator or run token."""
        self.name = name
        self.connection = connection or default_connection()
        self.idle = idle
        self.poll_seconds = poll_seconds
        self.path = f"/api/v1/queues/{quote(name, safe='')}/items"

    def __repr__(self) -> str:
        return f"<Queue {self.name!r} at {self.connection.url}>"

    def __iter__(self) -> Iterator[Item]:
        idle_since = time.monotonic()
        # Between items: a stop ends the loop, a pause holds it here (checkpoint() answers should_stop() after it).
        while not should_stop() and not checkpoint():
            item = self._poll(self.poll_seconds)
            if item is AWAY:
                idle_since = time.monotonic()  # idle means an empty queue, not an orchestrator away
                continue
            if item is None:
                if self.idle is not None and time.monotonic() - idle_since >= self.idle:
                    return
                continue
            if should_stop():  # asked while the item was on its way: it goes back untouched
                item.release()
                return
            try:
                yield item
            except BaseException:  # GeneratorExit: the loop was left (an exception, a break) or dropped
                if not item.reported:
                    item.fail(LEFT_THE_LOOP)
                raise
            if not item.reported:
                item.complete()
            idle_since = time.monotonic()

    def lease(self, wait: float = 0.0) -> Item | None:
        """The best ready item, leased to this run and its lease kept alive until it is reported, waiting up to
        `wait` seconds (at most the orchestrator's queueing.max_wait_seconds) for one; None when none came (or
        the orchestrator did not answer meanwhile). Refused when the queue does not exist or the token may not
        work on it."""
        item = self._poll(wait)
        return None if item is AWAY else item

    def _poll(self, wait: float) -> Item | _Away | None:
        try:
            response = self.connection.request(
                "POST",
                f"{self.path}/next",
                params={"wait": wait},
                timeout=wait + self.connection.timeout,
                retry_for=max(wait, POLL_SECONDS),  # the loop tries again after a stop check
            )
        except OrchestratorUnreachable:
            return AWAY
        if response.status_code == 204:
            return None
        if response.status_code != 200:
            raise Refused.of(response)
        item = Item(self, response.json())
        item.keep_alive()
        return item

    def add(
        self,
        payload: dict[str, Any] | None = None,
        reference: str | None = None,
        priority: int = 0,
        deadline: datetime | str | None = None,
        postpone_until: datetime | str | None = None,
    ) -> int:
        """Add one item; its id. ItemRefused when the queue refuses it (a reference it holds already, in a queue of
        unique references); Refused for bad input (422) or an unknown queue (404)."""
        added = self.add_many(
            [
                NewItem(
                    payload=payload or {},
                    reference=reference,
                    priority=priority,
                    deadline=deadline,
                    postpone_until=postpone_until,
                )
            ]
        )
        if added.refused:
            raise ItemRefused(added.refused[0].reason, added.refused[0].message)
        return added.ids[0]

    def add_many(self, items: Iterable[NewItem], *, batch: int = ADD_BATCH) -> Added:
        """Add items, `batch` to a request (each request one transaction); the ids of those added, in order, and the
        refused with their place in `items`. An error (Refused, OrchestratorUnreachable: a request is not sent again
        once it may have reached the orchestrator) leaves the batches before it added."""
        ids: list[int] = []
        refused: list[Refusal] = []
        chunk: list[dict[str, Any]] = []
        offset = 0
        for index, item in enumerate(items):
            chunk.append(_wire(item, index))
            if len(chunk) == batch:
                self._add_chunk(chunk, offset, ids, refused)
                offset, chunk = index + 1, []
        if chunk:
            self._add_chunk(chunk, offset, ids, refused)
        return Added(ids, refused)

    def _add_chunk(self, chunk: list[dict[str, Any]], offset: int, ids: list[int], refused: list[Refusal]) -> None:
        response = self.connection.request("POST", self.path, json={"items": chunk}, resend=Resend.IF_UNSENT)
        if response.status_code != 201:
            raise Refused.of(response)
        answer = response.json()
        ids += [int(item_id) for item_id in answer["ids"]]
        refused += [Refusal(offset + int(r["index"]), str(r["reason"]), str(r["message"])) for r in answer["refused"]]


def queue(name: str, *, idle: float | None = None, url: str | None = None, token: str | None = None) -> Queue:
    """The queue `name` of the orchestrator that started this run, reached with the run's token (or at `url` with
    `token`). NotInARun, naming the variable, when the environment lacks them."""
    connection = Connection(url, token) if url or token else None
    return Queue(name, connection=connection, idle=idle)


def _wire(item: NewItem, index: int) -> dict[str, Any]:
    unknown = set(item) - NEW_ITEM_FIELDS
    if unknown:
        raise ValueError(f"item {index}: unknown field(s) {sorted(unknown)}; an item has {sorted(NEW_ITEM_FIELDS)}")
    wire: dict[str, Any] = {"payload": item.get("payload") or {}, "priority": item.get("priority", 0)}
    if item.get("reference") is not None:
        wire["reference"] = item["reference"]
    for field in ("deadline", "postpone_until"):
        value = item.get(field)
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError(f"item {index}: {field} needs a time zone (datetime.now(UTC), not datetime.now())")
            value = value.isoformat()
        if value is not None:
            wire[field] = value
    return wire


def _moment(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _lease_seconds(leased: dict[str, Any]) -> float:
    """The queue's lease time, as the orchestrator's own clock set it (lease expiry less the attempt's start)."""
    started, expires = _moment(leased.get("started_at")), _moment(leased.get("lease_expires_at"))
    if started is None or expires is None:
        return DEFAULT_LEASE_SECONDS
    return max((expires - started).total_seconds(), 0.1)


def _described(error: BaseException, trace: TracebackType | None) -> str:
    head = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    text = "".join(traceback.format_exception(type(error), error, trace))
    return _bounded(f"{head}\n\n{text}")


def _bounded(message: str) -> str:
    if len(message) <= MAX_MESSAGE:
        return message
    return message[: MAX_MESSAGE // 4] + "\n…\n" + message[-(MAX_MESSAGE * 3 // 4 - 3) :]
