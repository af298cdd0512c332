"""Queues as actions: the same service functions as their routes, with the same permissions (queues:read to look at
queues, their items and figures, queues:write to define queues and add, retry or delete items, queues:work to lease
items and report on them)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from robofleet.activities.registry import ActionContext, Params, Registry
from robofleet.queues.schemas import (
    MAX_LEASE_SECONDS,
    ErrorKind,
    ItemFilter,
    ItemQuery,
    NewItem,
    QueueCreate,
    QueueName,
    QueueUpdate,
)
from robofleet.queues.service import QueuesService


class NameParams(Params):
    name: QueueName


class PageParams(Params):
    limit: int = Field(100, ge=1, le=500)
    cursor: str | None = Field(None, max_length=200)


class CreateParams(QueueCreate):
    pass


class UpdateParams(QueueUpdate):
    name: QueueName


class DeleteParams(NameParams):
    force: bool = False


class AddParams(NameParams):
    items: list[NewItem] = Field(min_length=1, max_length=100_000)


class NextParams(NameParams):
    wait: float = Field(0.0, ge=0, description="Seconds to wait for an item")


class LeaseParams(NameParams):
    item_id: int
    lease_id: str = Field(min_length=1, max_length=64)


class CompleteParams(LeaseParams):
    output: Any = None


class FailParams(LeaseParams):
    kind: ErrorKind
    message: str = Field("", max_length=20_000)


class ExtendParams(LeaseParams):
    seconds: float = Field(gt=0, le=MAX_LEASE_SECONDS)


class ItemsParams(NameParams, PageParams, ItemQuery):
    """The filter of `GET /queues/{name}/items` with its page."""


class ItemParams(NameParams):
    item_id: int


class RetryParams(NameParams, ItemFilter):
    pass


class DeleteItemsParams(NameParams, ItemFilter):
    pass


def service(ctx: ActionContext) -> QueuesService:
    found = ctx.app.service("queues")
    assert isinstance(found, QueuesService)
    return found


def register(registry: Registry) -> None:
    @registry.register("queues.list", permission="queues:read", params=PageParams)
    def list_queues(ctx: ActionContext, params: PageParams) -> dict[str, Any]:
        """List the queues, a page at a time."""
        page = service(ctx).list_queues(ctx.principal, limit=params.limit, cursor=params.cursor)
        return {"items": [item.model_dump(mode="json") for item in page.items], "next_cursor": page.next_cursor}

    @registry.register("queues.get", permission="queues:read", params=NameParams)
    def get_queue(ctx: ActionContext, params: NameParams) -> dict[str, Any]:
        """One queue's definition."""
        return service(ctx).get_queue(ctx.principal, params.name).model_dump(mode="json")

    @registry.register("queues.create", permission="queues:write", params=CreateParams)
    def create(ctx: ActionContext, params: CreateParams) -> dict[str, Any]:
        """Create a queue."""
        data = QueueCreate(**params.model_dump())
        return service(ctx).create_queue(ctx.principal, data).model_dump(mode="json")

    @registry.register("queues.update", permission="queues:write", params=UpdateParams)
    def update(ctx: ActionContext, params: UpdateParams) -> dict[str, Any]:
        """Change a queue (fields left out keep their value)."""
        data = QueueUpdate(**params.model_dump(exclude={"name"}, exclude_unset=True))
        return service(ctx).update_queue(ctx.principal, params.name, data).model_dump(mode="json")

    @registry.register("queues.delete", permission="queues:write", params=DeleteParams)
    def delete(ctx: ActionContext, params: DeleteParams) -> dict[str, Any]:
        """Delete a queue with its items (refused while items are unfinished, unless force)."""
        service(ctx).delete_queue(ctx.principal, params.name, force=params.force)
        return {"deleted": params.name}

    @registry.register("queues.add", permission="queues:write", params=AddParams)
    def add(ctx: ActionContext, params: AddParams) -> dict[str, Any]:
        """Add items to a queue in one transaction; duplicates of a unique queue are refused one by one."""
        return service(ctx).add_items(ctx.principal, params.name, params.items).model_dump(mode="json")

    @registry.register("queues.next", permission="queues:work", params=NextParams)
    async def next_item(ctx: ActionContext, params: NextParams) -> dict[str, Any] | None:
        """Lease the queue's best ready item (null when none came within wait seconds)."""
        item = await service(ctx).leases.next(ctx.principal, params.name, wait=params.wait)
        return None if item is None else item.model_dump(mode="json")

    @registry.register("queues.complete", permission="queues:work", params=CompleteParams)
    def complete(ctx: ActionContext, params: CompleteParams) -> dict[str, Any]:
        """Report a leased item done, with its output."""
        leases = service(ctx).leases
        return leases.complete(ctx.principal, params.name, params.item_id, params.lease_id, params.output).model_dump(
            mode="json"
        )

    @registry.register("queues.fail", permission="queues:work", params=FailParams)
    def fail(ctx: ActionContext, params: FailParams) -> dict[str, Any]:
        """Report a leased item failed: business (final) or application (retried while retries are left)."""
        item = service(ctx).leases.fail(
            ctx.principal, params.name, params.item_id, params.lease_id, params.kind, params.message
        )
        return item.model_dump(mode="json")

    @registry.register("queues.extend", permission="queues:work", params=ExtendParams)
    def extend(ctx: ActionContext, params: ExtendParams) -> dict[str, Any]:
        """Extend a lease to run `seconds` from now."""
        item = service(ctx).leases.extend(ctx.principal, params.name, params.item_id, params.lease_id, params.seconds)
        return item.model_dump(mode="json")

    @registry.register("queues.release", permission="queues:work", params=LeaseParams)
    def release(ctx: ActionContext, params: LeaseParams) -> dict[str, Any]:
        """Give a leased item back unattempted."""
        item = service(ctx).leases.release(ctx.principal, params.name, params.item_id, params.lease_id)
        return item.model_dump(mode="json")

    @registry.register("queues.stats", permission="queues:read", params=NameParams)
    def stats(ctx: ActionContext, params: NameParams) -> dict[str, Any]:
        """A queue's counts by state, throughput, handling times, SLA and oldest waiting item."""
        return service(ctx).stats(ctx.principal, params.name).model_dump(mode="json")

    @registry.register("queues.retry", permission="queues:write", params=RetryParams)
    def retry(ctx: ActionContext, params: RetryParams) -> dict[str, Any]:
        """Retry a queue's failed and abandoned items that match the filter (state, reference_prefix, since,
        until, ids)."""
        where = ItemFilter(**params.model_dump(exclude={"name"}))
        return service(ctx).retry_items(ctx.principal, params.name, where).model_dump(mode="json")

    @registry.register("queues.items", permission="queues:read", params=ItemsParams)
    def list_items(ctx: ActionContext, params: ItemsParams) -> dict[str, Any]:
        """A queue's items, newest first, that match the filter (state, reference_prefix, since, until), a page at
        a time."""
        where = ItemFilter(**params.model_dump(include=set(ItemQuery.model_fields)))
        page = service(ctx).list_items(ctx.principal, params.name, where, limit=params.limit, cursor=params.cursor)
        return {"items": [item.model_dump(mode="json") for item in page.items], "next_cursor": page.next_cursor}

    @registry.register("queues.item", permission="queues:read", params=ItemParams)
    def get_item(ctx: ActionContext, params: ItemParams) -> dict[str, Any]:
        """One item with its history, oldest first."""
        return service(ctx).get_item(ctx.principal, params.name, params.item_id).model_dump(mode="json")

    @registry.register("queues.delete_items", permission="queues:write", params=DeleteItemsParams)
    def delete_items(ctx: ActionContext, params: DeleteItemsParams) -> dict[str, Any]:
        """Mark a queue's items that match the filter (state, reference_prefix, since, until, ids) deleted; an
        empty filter is refused."""
        where = ItemFilter(**params.model_dump(exclude={"name"}))
        return service(ctx).delete_items(ctx.principal, params.name, where).model_dump(mode="json")
