"""Alerts: the only code that changes the alerts tables. Rules and channels (CRUD, `[[alerts]]` and
`[[alert_channels]]` of the settings), acknowledgements (audited in their transaction), and the leader's two loops:
detection (the facts since the stored cursors → events → alerts, de-duplicated by marks and a cool-down, with one
delivery per channel) and delivery (each due delivery tried, logged, and either done or tried again at a stored
`next_attempt_at` with doubling backoff), both acting on stored state, so a `kill -9` of serve loses nothing."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from robofleet.alerts import store_ops
from robofleet.alerts.delivery import Sent, body_of, send_email, send_webhook
from robofleet.alerts.detection import Event, Findings, detect
from robofleet.alerts.kinds import ChannelKind, RuleKind, backoff_seconds, check_threshold
from robofleet.alerts.models import Alert, AlertAttempt, AlertChannel, AlertRule
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
    describe_errors,
)
from robofleet.alerts.store_ops import DueDelivery, RuleRef
from robofleet.auth.audit import audited
from robofleet.auth.principal import Principal, system_principal
from robofleet.errors import ConfigError, Conflict, Invalid, RobofleetError
from robofleet.queues.schemas import QueueStats
from robofleet.runtime import Loop, Timers
from robofleet.store.base import utcnow
from robofleet.store.pagination import Page, paginate

if TYPE_CHECKING:
    from robofleet.orchestrator import Orchestrator

log = logging.getLogger(__name__)
DELIVERY_POLL_SECONDS = 1.0  # the delivery loop's safety net; a timer brings it at the next stored attempt
DELIVERY_BATCH = 20
PARALLEL_SENDS = 4
LEASE_MARGIN_SECONDS = 10.0  # an attempt in flight holds its delivery this long past its own timeout
MARKS_KEPT = timedelta(days=1)  # well past OVERLAP: an event read again is still known as raised
RETENTION_EVERY_SECONDS = 3600.0


class AlertsService:
    """Built by the Domain's factory with the orchestrator."""

    def __init__(self, app: Orchestrator) -> None:
        self.app = app
        self.store = app.store
        self.settings = app.settings.alerting
        self.leader = app.leader
        self.detection = Loop("alerts-detect", self.settings.check_seconds, self.detect_once, gate=self.leader.leads)
        self.delivery = Loop("alerts-deliver", DELIVERY_POLL_SECONDS, self.deliver_once, gate=self.leader.leads)
        self.timers = Timers()
        self._next_retention = 0.0
        self._sends = asyncio.Semaphore(PARALLEL_SENDS)

    async def startup(self) -> None:
        """Apply the settings file's channels and rules, then, leading, detect (at once: what happened while no
        serve ran) and deliver (at once: deliveries due or cut short by a crash)."""
        await asyncio.to_thread(self.apply_config, self.app.settings.alert_channels, self.app.settings.alerts)
        await self.leader.start(self._gained)
        self.detection.start()
        self.delivery.start()

    async def stop(self) -> None:
        await self.detection.stop()
        await self.delivery.stop()
        await self.timers.stop()

    def _gained(self) -> None:
        self.detection.wake()
        self.delivery.wake()

    # ---- rules --------------------------------------------------------------------------------------------------

    def list_rules(self, principal: Principal, *, limit: int, cursor: str | None) -> Page[RuleOut]:
        principal.require("alerts:read")
        with self.store.transaction() as session:
            page = paginate(session, store_ops.rules_query(), AlertRule.id, limit=limit, cursor=cursor)
            return Page([store_ops.rule_out(row) for row in page.items], page.next_cursor)

    def get_rule(self, principal: Principal, name: str) -> RuleOut:
        principal.require("alerts:read")
        with self.store.transaction() as session:
            return store_ops.rule_out(store_ops.find_rule(session, name))

    def create_rule(self, principal: Principal, data: RuleCreate, *, from_config: bool = False) -> RuleOut:
        with audited(self.store, principal, "alert_rule.create", data.name, {"kind": data.kind.value}) as session:
            principal.require("alerts:admin")
            if store_ops.rule_exists(session, data.name):
                raise Conflict(f"an alert rule named {data.name!r} exists already", details={"rule": data.name})
            _known_channels(session, data.channels)
            row = AlertRule(**data.model_dump(mode="json"), from_config=from_config)
            session.add(row)
            session.flush()
            return store_ops.rule_out(row)

    def update_rule(self, principal: Principal, name: str, data: RuleUpdate) -> RuleOut:
        changes = data.model_dump(mode="json", exclude_unset=True)
        with audited(self.store, principal, "alert_rule.update", name, {"fields": sorted(changes)}) as session:
            principal.require("alerts:admin")
            row = store_ops.find_rule(session, name)
            if "threshold" in changes:
                try:
                    changes["threshold"] = check_threshold(RuleKind(row.kind), changes["threshold"])
                except ValueError as exc:
                    raise Invalid(f"threshold: {exc}", details={"field": "threshold"}) from None
            if "channels" in changes:
                _known_channels(session, changes["channels"])
            for key, value in changes.items():
                setattr(row, key, value)
            session.flush()
            return store_ops.rule_out(row)

    def delete_rule(self, principal: Principal, name: str) -> None:
        with audited(self.store, principal, "alert_rule.delete", name) as session:
            principal.require("alerts:admin")
            session.delete(store_ops.find_rule(session, name))

    # ---- channels -----------------------------------------------------------------------------------------------

    def list_channels(self, principal: Principal, *, limit: int, cursor: str | None) -> Page[ChannelOut]:
        principal.require("alerts:read")
        with self.store.transaction() as session:
            page = paginate(session, store_ops.channels_query(), AlertChannel.id, limit=limit, cursor=cursor)
            return Page([store_ops.channel_out(row) for row in page.items], page.next_cursor)

    def get_channel(self, principal: Principal, name: str) -> ChannelOut:
        principal.require("alerts:read")
        with self.store.transaction() as session:
            return store_ops.channel_out(store_ops.find_channel(session, name))

    def create_channel(self, principal: Principal, data: ChannelCreate, *, from_config: bool = False) -> ChannelOut:
        with audited(self.store, principal, "alert_channel.create", data.name, {"kind": data.kind.value}) as session:
            principal.require("alerts:admin")
            if store_ops.channel_exists(session, data.name):
                raise Conflict(f"an alert channel named {data.name!r} exists already", details={"channel": data.name})
            values = data.model_dump(mode="json", exclude={"secret"})
            secret = data.secret.get_secret_value() if data.secret is not None else None
            row = AlertChannel(**values, secret=secret, from_config=from_config)
            session.add(row)
            session.flush()
            return store_ops.channel_out(row)

    def update_channel(self, principal: Principal, name: str, data: ChannelUpdate) -> ChannelOut:
        changes = data.model_dump(mode="json", exclude_unset=True, exclude={"secret"})
        if "secret" in data.model_fields_set:
            changes["secret"] = data.secret.get_secret_value() if data.secret is not None else None
        fields = sorted(changes)  # names only: never the secret itself in the audit log
        with audited(self.store, principal, "alert_channel.update", name, {"fields": fields}) as session:
            principal.require("alerts:admin")
            row = store_ops.find_channel(session, name)
            merged = {
                "name": row.name,
                "kind": row.kind,
                "recipients": row.recipients,
                "url": row.url,
                "secret": row.secret,
                "enabled": row.enabled,
                "description": row.description,
                **changes,
            }
            try:
                ChannelCreate(**merged)
            except ValidationError as exc:
                raise Invalid(describe_errors(exc), details={"fields": fields}) from None
            for key, value in changes.items():
                setattr(row, key, value)
            session.flush()
            return store_ops.channel_out(row)

    def delete_channel(self, principal: Principal, name: str) -> None:
        with audited(self.store, principal, "alert_channel.delete", name) as session:
            principal.require("alerts:admin")
            row = store_ops.find_channel(session, name)
            users = store_ops.rules_using(session, name)
            if users:
                raise Conflict(
                    f"alert channel {name!r} is used by the rule(s) {', '.join(users)}: take it out of them first",
                    details={"channel": name, "rules": users},
                )
            session.delete(row)

    def apply_config(self, channels: list[Any], rules: list[Any]) -> None:
        """Channels and rules of the settings file, created or brought up to date at every start, from config."""
        principal = system_principal("config")
        for item in channels:
            values = item.model_dump()
            if item.secret is not None:
                values["secret"] = item.secret.get_secret_value()
            try:
                data = ChannelCreate(**values)
            except ValidationError as exc:
                raise ConfigError(f"alert_channels.{item.name}: {describe_errors(exc)}") from None
            with self.store.transaction() as session:
                exists = store_ops.channel_exists(session, data.name)
            if exists:
                update = ChannelUpdate(**data.model_dump(exclude={"name", "kind"}))
                self.update_channel(principal, data.name, update)
            else:
                self.create_channel(principal, data, from_config=True)
        for item in rules:
            try:
                rule = RuleCreate(**item.model_dump())
            except ValidationError as exc:
                raise ConfigError(f"alerts.{item.name}: {describe_errors(exc)}") from None
            with self.store.transaction() as session:
                exists = store_ops.rule_exists(session, rule.name)
            try:
                if exists:
                    self._apply_rule(principal, rule)
                else:
                    self.create_rule(principal, rule, from_config=True)
            except RobofleetError as exc:
                raise ConfigError(f"alerts.{rule.name}: {exc.message}") from None

    def _apply_rule(self, principal: Principal, data: RuleCreate) -> None:
        """A rule of the settings file brought up to date in place (its alerts, marks and cool-down kept)."""
        values = data.model_dump(mode="json", exclude={"name"})
        with audited(self.store, principal, "alert_rule.update", data.name, {"fields": sorted(values)}) as session:
            principal.require("alerts:admin")
            row = store_ops.find_rule(session, data.name)
            _known_channels(session, data.channels)
            for key, value in values.items():
                setattr(row, key, value)
            row.from_config = True

    # ---- alerts -------------------------------------------------------------------------------------------------

    def list_alerts(
        self, principal: Principal, where: AlertFilter, *, limit: int, cursor: str | None
    ) -> Page[AlertOut]:
        """Newest first."""
        principal.require("alerts:read")
        with self.store.transaction() as session:
            stmt = store_ops.alerts_query(where)
            page = paginate(session, stmt, Alert.id, limit=limit, cursor=cursor, descending=True)
            return Page([store_ops.alert_out(row) for row in page.items], page.next_cursor)

    def get_alert(self, principal: Principal, alert_id: int) -> AlertDetail:
        principal.require("alerts:read")
        with self.store.transaction() as session:
            alert = store_ops.find_alert(session, alert_id)
            return AlertDetail(
                **store_ops.alert_out(alert).model_dump(),
                deliveries=[store_ops.delivery_out(row) for row in store_ops.deliveries_of(session, alert_id)],
                attempts=[store_ops.attempt_out(row) for row in store_ops.attempts_of(session, alert_id)],
            )

    def acknowledge(self, principal: Principal, alert_id: int) -> AlertOut:
        """Mark the alert seen (once: acknowledging it again keeps the first acknowledgement)."""
        with audited(self.store, principal, "alert.acknowledge", str(alert_id)) as session:
            principal.require("alerts:admin")
            alert = store_ops.find_alert(session, alert_id)
            if alert.acknowledged_at is None:
                alert.acknowledged_at = utcnow()
                alert.acknowledged_by = principal.actor
            session.flush()
            return store_ops.alert_out(alert)

    def list_attempts(
        self, principal: Principal, where: AttemptFilter, *, limit: int, cursor: str | None
    ) -> Page[AttemptOut]:
        """The delivery log, newest first."""
        principal.require("alerts:read")
        with self.store.transaction() as session:
            stmt = store_ops.attempts_query(where)
            page = paginate(session, stmt, AlertAttempt.id, limit=limit, cursor=cursor, descending=True)
            return Page([store_ops.attempt_out(row) for row in page.items], page.next_cursor)

    def open_count(self, principal: Principal) -> int:
        principal.require("alerts:read")
        with self.store.transaction() as session:
            return store_ops.open_count(session)

    def delivery_counts(self) -> list[tuple[str, str, str, int]]:
        with self.store.connection() as connection:
            return store_ops.delivery_counts(connection)

    # ---- detection (the leader's) -------------------------------------------------------------------------------

    async def detect_once(self) -> None:
        # The hub's agents are read here, on the event loop that changes them.
        connected = frozenset(self.app.hub.agents) if self.app.hub is not None else frozenset()
        raised = await asyncio.to_thread(self.detect_and_store, connected)
        if raised:
            self.delivery.wake()
        if time.monotonic() >= self._next_retention:
            self._next_retention = time.monotonic() + RETENTION_EVERY_SECONDS
            await asyncio.to_thread(self.apply_retention)

    def detect_and_store(self, connected_agents: frozenset[str] = frozenset()) -> int:
        """One detection pass, stored in one transaction with its cursors; the number of alerts raised (with
        deliveries to make)."""
        now = utcnow()
        with self.store.transaction() as session:
            rules = store_ops.enabled_rules(session)
            connection = session.connection()
            cursors = {name: store_ops.read_cursor(connection, name) for name in ("runs", "fires")}
        if not rules:
            return 0
        findings = detect(self.store, rules, cursors, now, self._queue_figures, connected_agents)
        return self._store_findings(findings, now)

    def _queue_figures(self) -> list[QueueStats]:
        from robofleet.queues.service import QueuesService

        queues = self.app.services.get("queues")
        if not isinstance(queues, QueuesService):
            return []
        return queues.figures(system_principal("alerts"))

    def _store_findings(self, findings: Findings, now: datetime) -> int:
        raised = 0
        with self.store.transaction() as session:
            connection = session.connection()
            for event in findings.events:
                if store_ops.add_mark(connection, event.rule.id, event.key, now):
                    raised += self._raise(session, event, now)
            for rule_id, holding in findings.conditions.items():
                marked = store_ops.condition_keys(connection, rule_id)
                for key, event in holding.items():
                    if key not in marked:
                        store_ops.add_mark(connection, rule_id, key, now, condition=True)
                        raised += self._raise(session, event, now)
                store_ops.drop_marks(connection, rule_id, marked - holding.keys())
            for name, value in findings.cursors.items():
                store_ops.write_cursor(connection, name, value, now)
            store_ops.prune_marks(connection, now - MARKS_KEPT)
        return raised

    def _raise(self, session: Any, event: Event, now: datetime) -> int:
        """A new alert with its deliveries (1), or the event counted in the rule's alert on the same subject whose
        last event is within the cool-down (0)."""
        rule: RuleRef = event.rule
        connection = session.connection()
        if rule.cooldown_seconds > 0:
            recent = store_ops.recent_alert(
                connection, rule.id, event.subject, now - timedelta(seconds=rule.cooldown_seconds)
            )
            if recent is not None:
                store_ops.count_in(connection, recent, now)
                return 0
        alert_id = store_ops.insert_alert(
            connection,
            {
                "rule_id": rule.id,
                "rule": rule.name,
                "kind": rule.kind.value,
                "subject": event.subject,
                "title": event.title,
                "detail": event.detail,
                "facts": event.facts,
                "count": 1,
                "first_at": min(event.at, now),
                "last_at": now,
            },
        )
        channels = store_ops.enabled_channels(session, rule.channels)
        store_ops.insert_deliveries(connection, alert_id, channels, now)
        log.warning("alert %s (%s): %s", alert_id, rule.name, event.title)
        return 1 if channels else 0

    def apply_retention(self) -> int:
        with self.store.transaction() as session:
            return store_ops.purge_alerts(session.connection(), utcnow() - timedelta(days=self.settings.retention_days))

    # ---- delivery (the leader's) --------------------------------------------------------------------------------

    async def deliver_once(self) -> None:
        lease = max(self.settings.webhook_timeout_seconds, self.settings.smtp.timeout_seconds) + LEASE_MARGIN_SECONDS
        while True:
            due = await asyncio.to_thread(self._claim, lease)
            if not due:
                break
            await asyncio.gather(*(self._attempt(item) for item in due))
            if len(due) < DELIVERY_BATCH:
                break
        following = await asyncio.to_thread(self._next_due)
        if following is not None:
            self.timers.set("next", (following - utcnow()).total_seconds() + 0.01, self._wake_delivery)

    async def _wake_delivery(self) -> None:
        self.delivery.wake()

    def _claim(self, lease: float) -> list[DueDelivery]:
        with self.store.transaction() as session:
            return store_ops.claim_due(session.connection(), utcnow(), lease, DELIVERY_BATCH)

    def _next_due(self) -> datetime | None:
        with self.store.connection() as connection:
            return store_ops.next_due(connection)

    async def _attempt(self, due: DueDelivery) -> None:
        async with self._sends:
            sent = await asyncio.to_thread(self._send, due)
        await asyncio.to_thread(self._record, due, sent)

    def _send(self, due: DueDelivery) -> Sent:
        with self.store.transaction() as session:
            channel = store_ops.channel_ref(session, due.channel)
            row = store_ops.alert_row(session.connection(), due.alert_id)
        if row is None:
            return Sent(False, None, "the alert was deleted", 0.0)
        if channel is None or not channel.enabled:
            return Sent(False, None, f"the channel {due.channel!r} was deleted or disabled", 0.0)
        alert = _wire(row, self.app.settings.server.public_url)
        if channel.kind == ChannelKind.WEBHOOK:
            assert channel.url is not None and channel.secret is not None
            return send_webhook(
                channel.url, channel.secret, body_of(alert), due.id, self.settings.webhook_timeout_seconds
            )
        subject = f"[robofleet] {row.title}"
        return send_email(self.settings.smtp, list(channel.recipients), subject, _email_text(alert))

    def _record(self, due: DueDelivery, sent: Sent) -> None:
        now = utcnow()
        retry_at: datetime | None = None
        if not sent.ok and due.attempt < self.settings.max_attempts:
            retry_at = now + timedelta(seconds=backoff_seconds(self.settings.retry_backoff_seconds, due.attempt))
        with self.store.transaction() as session:
            store_ops.record_attempt(
                session.connection(),
                due,
                now=now,
                ok=sent.ok,
                status=sent.status,
                error=sent.error,
                seconds=sent.seconds,
                next_attempt_at=retry_at,
            )
        if not sent.ok:
            log.warning(
                "alert delivery %s to %s, attempt %s: %s%s",
                due.id,
                due.channel,
                due.attempt,
                sent.error,
                "" if retry_at else " (given up)",
            )


def _known_channels(session: Any, names: list[str]) -> None:
    missing = sorted(set(names) - store_ops.channel_names(session, names))
    if missing:
        raise Invalid(
            f"channels: no alert channel named {', '.join(repr(name) for name in missing)}",
            details={"field": "channels", "missing": missing},
        )


def _wire(row: Any, public_url: str | None) -> dict[str, Any]:
    """The alert as a webhook's JSON and an e-mail tell it."""
    alert = {
        "id": row.id,
        "rule": row.rule,
        "kind": row.kind,
        "subject": row.subject,
        "title": row.title,
        "detail": row.detail,
        "facts": row.facts,
        "count": row.count,
        "first_at": row.first_at.isoformat() if row.first_at else None,
        "last_at": row.last_at.isoformat() if row.last_at else None,
    }
    if public_url:
        alert["url"] = f"{public_url.rstrip('/')}/panel/alerts?alert={row.id}"
    return alert


def _email_text(alert: dict[str, Any]) -> str:
    lines = [alert["detail"], "", f"Rule: {alert['rule']} ({alert['kind']})", f"Subject: {alert['subject']}"]
    lines += [f"{key}: {value}" for key, value in sorted(alert["facts"].items()) if value is not None]
    if alert.get("url"):
        lines += ["", alert["url"]]
    return "\n".join(lines) + "\n"
