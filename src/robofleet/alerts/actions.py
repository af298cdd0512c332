"""Alerts as actions: the same service functions as their routes, with the same permissions (alerts:read to look,
alerts:admin to acknowledge)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from robofleet.activities.registry import ActionContext, Params, Registry
from robofleet.alerts.kinds import RuleKind
from robofleet.alerts.schemas import AlertFilter
from robofleet.alerts.service import AlertsService


class ListParams(Params):
    kind: RuleKind | None = None
    rule: str | None = Field(None, max_length=64)
    subject: str | None = Field(None, max_length=256)
    acknowledged: bool | None = None
    limit: int = Field(100, ge=1, le=500)
    cursor: str | None = Field(None, max_length=200)


class AlertParams(Params):
    alert_id: int = Field(ge=1)


def service(ctx: ActionContext) -> AlertsService:
    found = ctx.app.service("alerts")
    assert isinstance(found, AlertsService)
    return found


def register(registry: Registry) -> None:
    @registry.register("alerts.list", permission="alerts:read", params=ListParams)
    def list_alerts(ctx: ActionContext, params: ListParams) -> dict[str, Any]:
        """Fired alerts, newest first, a page at a time."""
        where = AlertFilter(**params.model_dump(exclude={"limit", "cursor"}))
        page = service(ctx).list_alerts(ctx.principal, where, limit=params.limit, cursor=params.cursor)
        return {"items": [item.model_dump(mode="json") for item in page.items], "next_cursor": page.next_cursor}

    @registry.register("alerts.acknowledge", permission="alerts:admin", params=AlertParams)
    def acknowledge(ctx: ActionContext, params: AlertParams) -> dict[str, Any]:
        """Mark an alert seen."""
        return service(ctx).acknowledge(ctx.principal, params.alert_id).model_dump(mode="json")
