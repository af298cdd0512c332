"""HTTP routes of alerts (/api/v1/alerts), their rules, channels and the delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from robofleet.alerts.kinds import RuleKind
from robofleet.alerts.schemas import (
    AlertDetail,
    AlertFilter,
    AlertOut,
    AttemptFilter,
    AttemptOut,
    ChannelCreate,
    ChannelOut,
    ChannelUpdate,
    RuleCreate,
    RuleOut,
    RuleUpdate,
)
from robofleet.alerts.service import AlertsService
from robofleet.auth.principal import Principal
from robofleet.web.deps import Context
from robofleet.web.paging import Paging
from robofleet.web.schemas import PageOut
from robofleet.web.security import Require

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


async def alerts_service(ctx: Context) -> AlertsService:
    found = ctx.service("alerts")
    assert isinstance(found, AlertsService)
    return found


Alerts = Annotated[AlertsService, Depends(alerts_service)]
Read = Depends(Require("alerts:read"))
Admin = Depends(Require("alerts:admin"))


# ---- rules (before /{alert_id}: a static path first) --------------------------------------------------------------


@router.get("/rules")
def list_rules(alerts: Alerts, paging: Paging, principal: Principal = Read) -> PageOut[RuleOut]:
    return PageOut.of(alerts.list_rules(principal, **paging))


@router.post("/rules", status_code=201)
def create_rule(data: RuleCreate, alerts: Alerts, principal: Principal = Admin) -> RuleOut:
    """A rule: its `kind`, the `match` glob of the names it watches, its `threshold` where the kind takes one, the
    `cooldown_seconds` within which events of one subject are counted in one alert, and the `channels` it
    delivers to."""
    return alerts.create_rule(principal, data)


@router.get("/rules/{name}")
def get_rule(name: str, alerts: Alerts, principal: Principal = Read) -> RuleOut:
    return alerts.get_rule(principal, name)


@router.patch("/rules/{name}")
def update_rule(name: str, data: RuleUpdate, alerts: Alerts, principal: Principal = Admin) -> RuleOut:
    return alerts.update_rule(principal, name, data)


@router.delete("/rules/{name}", status_code=204)
def delete_rule(name: str, alerts: Alerts, principal: Principal = Admin) -> Response:
    alerts.delete_rule(principal, name)
    return Response(status_code=204)


# ---- channels -----------------------------------------------------------------------------------------------------


@router.get("/channels")
def list_channels(alerts: Alerts, paging: Paging, principal: Principal = Read) -> PageOut[ChannelOut]:
    """Webhook secrets are never shown: `has_secret` says whether one is set."""
    return PageOut.of(alerts.list_channels(principal, **paging))


@router.post("/channels", status_code=201)
def create_channel(data: ChannelCreate, alerts: Alerts, principal: Principal = Admin) -> ChannelOut:
    """`email` with `recipients` (sent through the `alerting.smtp` settings), or `webhook` with `url` and
    `secret` (the HMAC-SHA256 key of the `X-Robofleet-Signature` header; write-only)."""
    return alerts.create_channel(principal, data)


@router.get("/channels/{name}")
def get_channel(name: str, alerts: Alerts, principal: Principal = Read) -> ChannelOut:
    return alerts.get_channel(principal, name)


@router.patch("/channels/{name}")
def update_channel(name: str, data: ChannelUpdate, alerts: Alerts, principal: Principal = Admin) -> ChannelOut:
    return alerts.update_channel(principal, name, data)


@router.delete("/channels/{name}", status_code=204)
def delete_channel(name: str, alerts: Alerts, principal: Principal = Admin) -> Response:
    """409 while a rule delivers to it."""
    alerts.delete_channel(principal, name)
    return Response(status_code=204)


# ---- the delivery log ---------------------------------------------------------------------------------------------


@router.get("/deliveries")
def list_attempts(
    alerts: Alerts,
    paging: Paging,
    principal: Principal = Read,
    channel: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[str | None, Query(pattern="^(delivered|error)$")] = None,
    alert_id: Annotated[int | None, Query(ge=1)] = None,
) -> PageOut[AttemptOut]:
    """Each delivery attempt (when, channel, outcome, status, error), newest first."""
    where = AttemptFilter(channel=channel, outcome=outcome, alert_id=alert_id)
    return PageOut.of(alerts.list_attempts(principal, where, **paging))


# ---- alerts -------------------------------------------------------------------------------------------------------


@router.get("")
def list_alerts(
    alerts: Alerts,
    paging: Paging,
    principal: Principal = Read,
    kind: Annotated[RuleKind | None, Query()] = None,
    rule: Annotated[str | None, Query(max_length=64)] = None,
    subject: Annotated[str | None, Query(max_length=256)] = None,
    acknowledged: Annotated[bool | None, Query()] = None,
) -> PageOut[AlertOut]:
    """Newest first."""
    where = AlertFilter(kind=kind, rule=rule, subject=subject, acknowledged=acknowledged)
    return PageOut.of(alerts.list_alerts(principal, where, **paging))


@router.get("/{alert_id}")
def get_alert(alert_id: int, alerts: Alerts, principal: Principal = Read) -> AlertDetail:
    """The alert with its deliveries and their attempts."""
    return alerts.get_alert(principal, alert_id)


@router.post("/{alert_id}/acknowledge")
def acknowledge(alert_id: int, alerts: Alerts, principal: Principal = Admin) -> AlertOut:
    return alerts.acknowledge(principal, alert_id)
