"""API shapes of queues and their items (DESIGN.md, "Contracts of the domains still to come": the field names are
the contract, the others are additions)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from robofleet.queues.states import Event, ItemState

QueueName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Reference = Annotated[str, StringConstraints(min_length=1, max_length=256)]
ErrorKind = Literal["business", "application"]
MAX_PRIORITY = 1000
MAX_LEASE_SECONDS = 86_400.0


class QueueFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = Field("", max_length=2000)
    max_retries: int = Field(3, ge=0, le=100, description="Retries after the first attempt of an application failure")
    retry_backoff_seconds: float = Field(
        30.0, ge=0, le=86_400, description="Wait before the first retry, doubled for each one after it"
    )
    lease_seconds: float = Field(
        300.0, gt=0, le=MAX_LEASE_SECONDS, description="How long a worker holds an item unless it extends the lease"
    )
    unique_references: bool = Field(False, description="Refuse an item whose reference the queue holds already")
    sla_minutes: int | None = Field(None, ge=1, le=525_600, description="Minutes from add to done")
    retention_days: int = Field(30, ge=1, le=36_500, description="Finished items are deleted after this long")
    tags: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=50
    )


class QueueCreate(QueueFields):
    name: QueueName


class QueueUpdate(BaseModel):
    """Left out, a field keeps its stored value."""

    model_config = ConfigDict(extra="forbid")
    description: str | None = Field(None, max_length=2000)
    max_retries: int | None = Field(None, ge=0, le=100)
    retry_backoff_seconds: float | None = Field(None, ge=0, le=86_400)
    lease_seconds: float | None = Field(None, gt=0, le=MAX_LEASE_SECONDS)
    unique_references: bool | None = None
    sla_minutes: int | None = Field(None, ge=1, le=525_600)
    retention_days: int | None = Field(None, ge=1, le=36_500)
    tags: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] | None = Field(None, max_length=50)

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        # sla_minutes may be cleared with null; any other null is a mistake, not "keep the value".
        if value is None and info.field_name != "sla_minutes":
            raise ValueError(f"{info.field_name} cannot be null; leave it out to keep the stored value")
        return value


class QueueOut(QueueFields):
    name: str
    from_config: bool
    created_at: datetime
    updated_at: datetime


class NewItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reference: Reference | None = None
    priority: int = Field(0, ge=0, le=MAX_PRIORITY, description="Higher is leased first")
    payload: dict[str, Any] = Field(default_factory=dict, description="What the worker needs, as a JSON object")
    deadline: AwareDatetime | None = Field(None, description="Leased before items with a later one or none")
    postpone_until: AwareDatetime | None = Field(None, description="Not leased before this time")


class AddItems(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[NewItem] = Field(min_length=1, max_length=100_000, description="At most queueing.max_batch")


class Refusal(BaseModel):
    index: int = Field(description="The refused item's place in the request's items, from 0")
    reason: str = Field(description="duplicate_reference")
    message: str


class Added(BaseModel):
    ids: list[int] = Field(description="The new items' ids, in the order of the items (those refused left out)")
    refused: list[Refusal]


class ItemOut(BaseModel):
    id: int
    queue: str
    reference: str | None
    priority: int
    payload: dict[str, Any]
    state: ItemState
    attempts: int
    deadline: datetime | None
    postpone_until: datetime | None
    ready_at: datetime
    lease_expires_at: datetime | None
    leased_by: str | None = Field(description="Who holds the lease now, or held the last one")
    started_at: datetime | None = Field(description="When the current or last attempt began")
    output: Any | None
    error_kind: ErrorKind | None
    error: str | None
    added_by: str
    created_at: datetime
    finished_at: datetime | None


class LeasedItem(ItemOut):
    lease_id: str = Field(description="Name it to complete, fail, extend or release the item")


class EventOut(BaseModel):
    id: int
    at: datetime
    event: Event
    actor: str
    from_state: ItemState
    to_state: ItemState
    attempt: int
    leased_by: str | None
    started_at: datetime | None
    error_kind: ErrorKind | None
    error: str | None


class ItemDetail(ItemOut):
    history: list[EventOut] = Field(description="How each attempt ended and what operators did, oldest first")


class Lease(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lease_id: str = Field(min_length=1, max_length=64)


class Complete(Lease):
    output: Any = None


class Fail(Lease):
    kind: ErrorKind
    message: str = Field("", max_length=20_000)


class Extend(Lease):
    seconds: float = Field(gt=0, le=MAX_LEASE_SECONDS, description="The lease runs this long from now")


class ItemQuery(BaseModel):
    """The conditions a list of items takes (`GET /queues/{name}/items`); every condition given must hold."""

    model_config = ConfigDict(extra="forbid")
    state: list[ItemState] | None = Field(None, max_length=10)
    reference_prefix: str | None = Field(None, min_length=1, max_length=256)
    since: AwareDatetime | None = Field(None, description="Added at or after")
    until: AwareDatetime | None = Field(None, description="Added before")


class ItemFilter(ItemQuery):
    """Which items a list, export or bulk act covers; every condition given must hold."""

    ids: list[int] | None = Field(None, max_length=10_000)


SkipReason = Literal["not_found", "wrong_state", "filtered_out"]


class Skipped(BaseModel):
    """An item named in a bulk act's `ids` that the act left as it was."""

    id: int
    state: ItemState | None = Field(description="The item's state now (None: no such item in the queue)")
    reason: SkipReason = Field(
        description="not_found; wrong_state: its state is not one the act moves (a retry moves failed and abandoned "
        "items, a delete any but deleted ones); filtered_out: the filter's other conditions leave it out"
    )


class Bulk(BaseModel):
    count: int = Field(description="Items changed")
    skipped: list[Skipped] = Field(
        default_factory=list,
        description="Of the `ids` given, those left as they were, in their order (none without ids)",
    )


class QueueStats(BaseModel):
    queue: str
    counts: dict[ItemState, int]
    throughput_per_minute: list[int] = Field(description="Items done in each of the last 60 minutes, oldest first")
    average_handling_seconds: float | None = Field(description="Of items done in the last hour")
    p95_handling_seconds: float | None
    past_sla: int = Field(description="Unfinished items added more than sla_minutes ago")
    past_deadline: int = Field(description="Unfinished items whose deadline has passed")
    oldest_waiting_seconds: float | None = Field(description="Age of the oldest new or retry item")
    at: datetime


MAX_LEASE_BATCH = 100  # most items leased by one call (`?count=`, `?next=`)
MAX_COMPLETIONS = 1000  # most completions reported by one call


class LeasedItems(BaseModel):
    items: list[LeasedItem] = Field(description="The items leased, best first, each with a lease_id of its own")


class Completion(Lease):
    """One item's completion among others (`POST /queues/{name}/items/complete`)."""

    id: int
    output: Any = None


class CompleteMany(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Completion] = Field(min_length=1, max_length=MAX_COMPLETIONS)


class LeaseRefusal(BaseModel):
    id: int
    code: str = Field(description="lease_lost (the caller no longer holds the item's lease) or not_found")
    message: str
    state: ItemState | None = Field(description="The item's state now (None: no such item in the queue)")


class Completed(BaseModel):
    completed: list[int] = Field(description="The items done now, in the order reported")
    refused: list[LeaseRefusal] = Field(description="The reports refused, each for its own reason; the others stand")
    items: list[LeasedItem] = Field(default_factory=list, description="The items leased next (`?next=N`)")


class CompletedOne(BaseModel):
    """A completion answered with the next items leased (`POST /queues/{name}/items/{id}/complete?next=N`)."""

    completed: ItemOut
    items: list[LeasedItem] = Field(description="The items leased next, best first (none when none was ready)")
