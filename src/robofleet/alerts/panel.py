"""Alerts pages: the inbox (alerts newest first, filtered by state, kind and rule, refreshed every few seconds by
htmx, acknowledged one by one), an alert's page (its deliveries and every attempt), the rules and channels (lists
and New forms, shown again with the values entered and the mistake when refused; delete), and the delivery log.
Every change goes through AlertsService, which checks the permission and audits."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from robofleet.alerts.api import Alerts
from robofleet.alerts.kinds import SUBJECTS, THRESHOLDS, ChannelKind, RuleKind
from robofleet.alerts.schemas import AlertFilter, AttemptFilter, ChannelCreate, RuleCreate
from robofleet.alerts.service import AlertsService
from robofleet.auth.principal import Principal
from robofleet.errors import Invalid, RobofleetError
from robofleet.web.form_state import text_of, texts_of
from robofleet.web.security import Require
from robofleet.web.templating import page, redirect

router = APIRouter(prefix="/panel/alerts", include_in_schema=False)
HOME = "/panel/alerts"
READ = Depends(Require("alerts:read", panel=True))
ADMIN = Depends(Require("alerts:admin", panel=True))
REFRESH_SECONDS = 5
PAGE = 50
STATES = {"open": False, "acknowledged": True, "all": None}


def _page(request: Request, template: str, principal: Principal, status: int = 200, **context: Any) -> Response:
    return page(
        request,
        template,
        principal,
        status=status,
        section="alerts",
        admin=principal.can("alerts:admin"),
        kinds=list(RuleKind),
        refresh_seconds=REFRESH_SECONDS,
        **context,
    )


def _everything(list_page: Any, principal: Principal) -> list[Any]:
    found: list[Any] = []
    cursor: str | None = None
    while True:
        got = list_page(principal, limit=500, cursor=cursor)
        found += got.items
        cursor = got.next_cursor
        if cursor is None or not got.items:
            return found


# ---- the inbox ----------------------------------------------------------------------------------------------------


@router.get("")
def inbox(
    request: Request,
    alerts: Alerts,
    principal: Principal = READ,
    state: str = Query("open", pattern="^(open|acknowledged|all)$"),
    kind: str = Query("", max_length=32),
    rule: str = Query("", max_length=64),
    cursor: str | None = Query(None, max_length=200),
    part: str | None = Query(None, max_length=20, description="rows: the table's body alone, for the refresh"),
) -> Response:
    try:
        chosen = RuleKind(kind) if kind else None
    except ValueError:
        raise Invalid(f"kind: one of {', '.join(RuleKind)}", details={"field": "kind"}) from None
    where = AlertFilter(kind=chosen, rule=rule or None, acknowledged=STATES[state])
    found = alerts.list_alerts(principal, where, limit=PAGE, cursor=cursor)
    kept = {"state": state, "kind": kind, "rule": rule}
    query = urlencode({key: value for key, value in kept.items() if value})
    context: dict[str, Any] = {
        "alerts": found.items,
        "next_cursor": found.next_cursor,
        "query": query,
        "filters": kept,
        "live": cursor is None,
        "back": f"{HOME}?{query}" if query else HOME,
    }
    if part == "rows":
        return _page(request, "alert_rows.html", principal, **context)
    rules = [rule.name for rule in _everything(alerts.list_rules, principal)]
    return _page(request, "alerts.html", principal, tab="inbox", rules=rules, states=list(STATES), **context)


@router.get("/rules")
def rules_page(request: Request, alerts: Alerts, principal: Principal = READ) -> Response:
    return _rules_page(request, alerts, principal)


def _rules_page(
    request: Request,
    alerts: AlertsService,
    principal: Principal,
    *,
    status: int = 200,
    rule_form: dict[str, Any] | None = None,
    channel_form: dict[str, Any] | None = None,
) -> Response:
    return _page(
        request,
        "alert_rules.html",
        principal,
        status=status,
        tab="rules",
        rules=_everything(alerts.list_rules, principal),
        channels=_everything(alerts.list_channels, principal),
        subjects=SUBJECTS,
        thresholds=THRESHOLDS,
        channel_kinds=list(ChannelKind),
        rule_form=rule_form or {"values": {"match": "*", "cooldown_seconds": "300", "channels": []}, "error": None},
        channel_form=channel_form or {"values": {}, "error": None},
    )


@router.post("/rules")
async def rule_create(request: Request, alerts: Alerts, principal: Principal = ADMIN) -> Response:
    form = await request.form()
    values = {
        key: text_of(form, key) for key in ("name", "kind", "match", "threshold", "cooldown_seconds", "description")
    }
    channels = texts_of(form, "channels")

    def create() -> Response:
        try:
            data = RuleCreate.model_validate(
                {
                    "name": values["name"],
                    "kind": values["kind"],
                    "match": values["match"] or "*",
                    "threshold": values["threshold"] or None,
                    "cooldown_seconds": values["cooldown_seconds"] or 300,
                    "channels": channels,
                    "description": values["description"],
                }
            )
            alerts.create_rule(principal, data)
        except (ValidationError, RobofleetError) as exc:
            error = _message(exc)
            shown = {"values": {**values, "channels": channels}, "error": error}
            status = exc.status if isinstance(exc, RobofleetError) else 422
            return _rules_page(request, alerts, principal, status=status, rule_form=shown)
        return redirect(f"{HOME}/rules", notice=f"Rule {data.name} created.")

    return await run_in_threadpool(create)


@router.post("/rules/{name}/delete")
async def rule_delete(name: str, alerts: Alerts, principal: Principal = ADMIN) -> Response:
    try:
        await run_in_threadpool(alerts.delete_rule, principal, name)
    except RobofleetError as exc:
        return redirect(f"{HOME}/rules", error=exc.message)
    return redirect(f"{HOME}/rules", notice=f"Rule {name} deleted.")


@router.post("/channels")
async def channel_create(request: Request, alerts: Alerts, principal: Principal = ADMIN) -> Response:
    form = await request.form()
    values = {key: text_of(form, key) for key in ("name", "kind", "recipients", "url", "description")}
    secret = text_of(form, "secret")

    def create() -> Response:
        try:
            recipients = [part for part in values["recipients"].replace(",", " ").split() if part]
            data = ChannelCreate.model_validate(
                {
                    "name": values["name"],
                    "kind": values["kind"],
                    "recipients": recipients,
                    "url": values["url"] or None,
                    "secret": secret or None,
                    "description": values["description"],
                }
            )
            alerts.create_channel(principal, data)
        except (ValidationError, RobofleetError) as exc:
            status = exc.status if isinstance(exc, RobofleetError) else 422
            # The secret is never sent back: it must be typed again.
            shown = {"values": values, "error": _message(exc)}
            return _rules_page(request, alerts, principal, status=status, channel_form=shown)
        return redirect(f"{HOME}/rules", notice=f"Channel {data.name} created.")

    return await run_in_threadpool(create)


@router.post("/channels/{name}/delete")
async def channel_delete(name: str, alerts: Alerts, principal: Principal = ADMIN) -> Response:
    try:
        await run_in_threadpool(alerts.delete_channel, principal, name)
    except RobofleetError as exc:
        return redirect(f"{HOME}/rules", error=exc.message)
    return redirect(f"{HOME}/rules", notice=f"Channel {name} deleted.")


@router.get("/deliveries")
def deliveries_page(
    request: Request,
    alerts: Alerts,
    principal: Principal = READ,
    channel: str = Query("", max_length=64),
    outcome: str = Query("", pattern="^(|delivered|error)$"),
    cursor: str | None = Query(None, max_length=200),
) -> Response:
    where = AttemptFilter(channel=channel or None, outcome=outcome or None)
    found = alerts.list_attempts(principal, where, limit=PAGE, cursor=cursor)
    query = urlencode({key: value for key, value in (("channel", channel), ("outcome", outcome)) if value})
    return _page(
        request,
        "alert_deliveries.html",
        principal,
        tab="deliveries",
        attempts=found.items,
        next_cursor=found.next_cursor,
        query=query,
        filters={"channel": channel, "outcome": outcome},
    )


@router.get("/{alert_id}")
def alert_page(alert_id: int, request: Request, alerts: Alerts, principal: Principal = READ) -> Response:
    return _page(request, "alert.html", principal, tab="inbox", alert=alerts.get_alert(principal, alert_id))


@router.post("/{alert_id}/acknowledge")
async def acknowledge(alert_id: int, request: Request, alerts: Alerts, principal: Principal = ADMIN) -> Response:
    form = await request.form()
    back = text_of(form, "back")
    if not (back == HOME or back.startswith((HOME + "?", HOME + "/"))) or any(c in back for c in "\\\r\n"):
        back = HOME
    try:
        await run_in_threadpool(alerts.acknowledge, principal, alert_id)
    except RobofleetError as exc:
        return redirect(back, error=exc.message)
    return redirect(back, notice=f"Alert {alert_id} acknowledged.")


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    assert isinstance(exc, RobofleetError)
    return exc.message
