"""Statements of the alerts domain: the only SQL that reads or writes its tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, Table, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from robofleet.alerts.kinds import ChannelKind, RuleKind
from robofleet.alerts.models import Alert, AlertAttempt, AlertChannel, AlertCursor, AlertDelivery, AlertMark, AlertRule
from robofleet.alerts.schemas import (
    AlertFilter,
    AlertOut,
    AttemptFilter,
    AttemptOut,
    ChannelOut,
    DeliveryOut,
    RuleOut,
)
from robofleet.errors import NotFound

MARKS: Table = AlertMark.__table__  # type: ignore[assignment]
ALERTS: Table = Alert.__table__  # type: ignore[assignment]
DELIVERIES: Table = AlertDelivery.__table__  # type: ignore[assignment]
ATTEMPTS: Table = AlertAttempt.__table__  # type: ignore[assignment]
CURSORS: Table = AlertCursor.__table__  # type: ignore[assignment]


# ---- shapes -----------------------------------------------------------------------------------------------------


def rule_out(rule: AlertRule) -> RuleOut:
    return RuleOut(
        name=rule.name,
        kind=RuleKind(rule.kind),
        match=rule.match,
        threshold=rule.threshold,
        cooldown_seconds=rule.cooldown_seconds,
        channels=list(rule.channels),
        enabled=rule.enabled,
        description=rule.description,
        from_config=rule.from_config,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


def channel_out(channel: AlertChannel) -> ChannelOut:
    return ChannelOut(
        name=channel.name,
        kind=ChannelKind(channel.kind),
        recipients=list(channel.recipients),
        url=channel.url,
        has_secret=bool(channel.secret),
        enabled=channel.enabled,
        description=channel.description,
        from_config=channel.from_config,
        created_at=channel.created_at,
        updated_at=channel.updated_at,
    )


def alert_out(alert: Alert) -> AlertOut:
    return AlertOut.model_validate(alert, from_attributes=True)


def delivery_out(row: AlertDelivery) -> DeliveryOut:
    return DeliveryOut.model_validate(row, from_attributes=True)


def attempt_out(row: AlertAttempt) -> AttemptOut:
    return AttemptOut.model_validate(row, from_attributes=True)


# ---- rules and channels -----------------------------------------------------------------------------------------


def rules_query() -> Select[Any]:
    return select(AlertRule)


def channels_query() -> Select[Any]:
    return select(AlertChannel)


def find_rule(session: Session, name: str) -> AlertRule:
    rule = session.scalar(select(AlertRule).where(AlertRule.name == name))
    if rule is None:
        raise NotFound(f"no alert rule named {name!r}", details={"rule": name})
    return rule


def find_channel(session: Session, name: str) -> AlertChannel:
    channel = session.scalar(select(AlertChannel).where(AlertChannel.name == name))
    if channel is None:
        raise NotFound(f"no alert channel named {name!r}", details={"channel": name})
    return channel


def rule_exists(session: Session, name: str) -> bool:
    return session.scalar(select(AlertRule.id).where(AlertRule.name == name)) is not None


def channel_exists(session: Session, name: str) -> bool:
    return session.scalar(select(AlertChannel.id).where(AlertChannel.name == name)) is not None


def channel_names(session: Session, names: list[str]) -> set[str]:
    if not names:
        return set()
    return set(session.scalars(select(AlertChannel.name).where(AlertChannel.name.in_(names))))


def rules_using(session: Session, channel: str) -> list[str]:
    return [rule.name for rule in session.scalars(select(AlertRule)) if channel in rule.channels]


@dataclass(frozen=True)
class RuleRef:
    """What the detection needs of a rule."""

    id: int
    name: str
    kind: RuleKind
    match: str
    threshold: float | None
    cooldown_seconds: float
    channels: tuple[str, ...]
    created_at: datetime


def enabled_rules(session: Session) -> list[RuleRef]:
    rows = session.scalars(select(AlertRule).where(AlertRule.enabled.is_(True)).order_by(AlertRule.id))
    return [
        RuleRef(
            id=row.id,
            name=row.name,
            kind=RuleKind(row.kind),
            match=row.match,
            threshold=row.threshold,
            cooldown_seconds=row.cooldown_seconds,
            channels=tuple(row.channels),
            created_at=row.created_at,
        )
        for row in rows
    ]


@dataclass(frozen=True)
class ChannelRef:
    """What a delivery needs of its channel (the webhook's secret included: it never leaves the service)."""

    name: str
    kind: ChannelKind
    recipients: tuple[str, ...]
    url: str | None
    secret: str | None
    enabled: bool


def channel_ref(session: Session, name: str) -> ChannelRef | None:
    row = session.scalar(select(AlertChannel).where(AlertChannel.name == name))
    if row is None:
        return None
    return ChannelRef(row.name, ChannelKind(row.kind), tuple(row.recipients), row.url, row.secret, row.enabled)


def enabled_channels(session: Session, names: tuple[str, ...]) -> list[tuple[str, str]]:
    """(name, kind) of the named channels that exist and are enabled, in the order named."""
    if not names:
        return []
    rows = {
        name: kind
        for name, kind in session.execute(
            select(AlertChannel.name, AlertChannel.kind).where(
                AlertChannel.name.in_(names), AlertChannel.enabled.is_(True)
            )
        ).all()
    }
    return [(name, rows[name]) for name in names if name in rows]


# ---- cursors and marks ------------------------------------------------------------------------------------------


def read_cursor(connection: Connection, name: str) -> str | None:
    value: str | None = connection.scalar(select(CURSORS.c.value).where(CURSORS.c.name == name))
    return value


def write_cursor(connection: Connection, name: str, value: str, now: datetime) -> None:
    done = connection.execute(update(CURSORS).where(CURSORS.c.name == name).values(value=value, updated_at=now))
    if not done.rowcount:
        connection.execute(CURSORS.insert().values(name=name, value=value, updated_at=now))


def add_mark(connection: Connection, rule_id: int, key: str, now: datetime, *, condition: bool = False) -> bool:
    """Mark the event `key` of the rule raised; False when it was marked already (by this pass or any before)."""
    values = {"rule_id": rule_id, "key": key, "at": now, "condition": condition}
    if connection.dialect.name == "postgresql":
        stmt: Any = postgresql.insert(MARKS).values(values).on_conflict_do_nothing()
    else:
        stmt = sqlite.insert(MARKS).values(values).on_conflict_do_nothing()
    # RETURNING, not rowcount: psycopg's rowcount of a DO NOTHING that did nothing is not reliably 0.
    return connection.execute(stmt.returning(MARKS.c.rule_id)).first() is not None


def condition_keys(connection: Connection, rule_id: int) -> set[str]:
    rows = connection.execute(select(MARKS.c.key).where(MARKS.c.rule_id == rule_id, MARKS.c.condition.is_(True)))
    return {key for (key,) in rows}


def drop_marks(connection: Connection, rule_id: int, keys: set[str]) -> None:
    if keys:
        connection.execute(delete(MARKS).where(MARKS.c.rule_id == rule_id, MARKS.c.key.in_(sorted(keys))))


def prune_marks(connection: Connection, before: datetime) -> int:
    """Event marks older than any window the detection reads again (conditions stay while they hold)."""
    return connection.execute(delete(MARKS).where(MARKS.c.condition.is_(False), MARKS.c.at < before)).rowcount


# ---- alerts -----------------------------------------------------------------------------------------------------


def recent_alert(connection: Connection, rule_id: int, subject: str, since: datetime) -> int | None:
    """The id of the rule's newest alert on `subject` whose last event came at or after `since`."""
    found: int | None = connection.scalar(
        select(ALERTS.c.id)
        .where(ALERTS.c.rule_id == rule_id, ALERTS.c.subject == subject, ALERTS.c.last_at >= since)
        .order_by(ALERTS.c.last_at.desc())
        .limit(1)
    )
    return found


def count_in(connection: Connection, alert_id: int, now: datetime) -> None:
    connection.execute(update(ALERTS).where(ALERTS.c.id == alert_id).values(count=ALERTS.c.count + 1, last_at=now))


def insert_alert(connection: Connection, values: dict[str, Any]) -> int:
    return int(connection.execute(ALERTS.insert().values(values).returning(ALERTS.c.id)).scalar_one())


def insert_deliveries(connection: Connection, alert_id: int, channels: list[tuple[str, str]], now: datetime) -> None:
    if channels:
        connection.execute(
            DELIVERIES.insert(),
            [
                {
                    "alert_id": alert_id,
                    "channel": name,
                    "kind": kind,
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for name, kind in channels
            ],
        )


def alerts_query(where: AlertFilter) -> Select[Any]:
    stmt = select(Alert)
    if where.kind is not None:
        stmt = stmt.where(Alert.kind == where.kind.value)
    if where.rule is not None:
        stmt = stmt.where(Alert.rule == where.rule)
    if where.subject is not None:
        stmt = stmt.where(Alert.subject == where.subject)
    if where.acknowledged is True:
        stmt = stmt.where(Alert.acknowledged_at.is_not(None))
    elif where.acknowledged is False:
        stmt = stmt.where(Alert.acknowledged_at.is_(None))
    return stmt


def find_alert(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id}", details={"alert": alert_id})
    return alert


def deliveries_of(session: Session, alert_id: int) -> list[AlertDelivery]:
    return list(
        session.scalars(select(AlertDelivery).where(AlertDelivery.alert_id == alert_id).order_by(AlertDelivery.id))
    )


def attempts_of(session: Session, alert_id: int) -> list[AlertAttempt]:
    return list(
        session.scalars(select(AlertAttempt).where(AlertAttempt.alert_id == alert_id).order_by(AlertAttempt.id))
    )


def attempts_query(where: AttemptFilter) -> Select[Any]:
    stmt = select(AlertAttempt)
    if where.channel is not None:
        stmt = stmt.where(AlertAttempt.channel == where.channel)
    if where.outcome is not None:
        stmt = stmt.where(AlertAttempt.outcome == where.outcome)
    if where.alert_id is not None:
        stmt = stmt.where(AlertAttempt.alert_id == where.alert_id)
    return stmt


def open_count(session: Session) -> int:
    return int(session.scalar(select(func.count(Alert.id)).where(Alert.acknowledged_at.is_(None))) or 0)


# ---- deliveries ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DueDelivery:
    id: int
    alert_id: int
    channel: str
    kind: str
    attempt: int  # the number of the attempt about to be made


def claim_due(connection: Connection, now: datetime, lease_seconds: float, limit: int) -> list[DueDelivery]:
    """The pending deliveries due now, each taken for `lease_seconds` (its next attempt moved past the attempt's own
    timeout, so one in flight when serve dies is tried again after that, and not before) and its attempt counted."""
    rows = connection.execute(
        select(DELIVERIES.c.id, DELIVERIES.c.alert_id, DELIVERIES.c.channel, DELIVERIES.c.kind, DELIVERIES.c.attempts)
        .where(DELIVERIES.c.state == "pending", DELIVERIES.c.next_attempt_at <= now)
        .order_by(DELIVERIES.c.next_attempt_at, DELIVERIES.c.id)
        .limit(limit)
    ).all()
    taken: list[DueDelivery] = []
    until = now + timedelta(seconds=lease_seconds)
    for row in rows:
        done = connection.execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.id == row.id, DELIVERIES.c.state == "pending", DELIVERIES.c.attempts == row.attempts)
            .values(next_attempt_at=until, attempts=row.attempts + 1)
        )
        if done.rowcount:
            taken.append(DueDelivery(row.id, row.alert_id, row.channel, row.kind, row.attempts + 1))
    return taken


def alert_row(connection: Connection, alert_id: int) -> Any:
    return connection.execute(select(ALERTS).where(ALERTS.c.id == alert_id)).one_or_none()


def record_attempt(
    connection: Connection,
    due: DueDelivery,
    *,
    now: datetime,
    ok: bool,
    status: str | None,
    error: str | None,
    seconds: float,
    next_attempt_at: datetime | None,
) -> None:
    """The attempt in the delivery log, and the delivery delivered, tried again at `next_attempt_at`, or (None
    after an error) given up."""
    connection.execute(
        ATTEMPTS.insert().values(
            delivery_id=due.id,
            alert_id=due.alert_id,
            channel=due.channel,
            kind=due.kind,
            attempt=due.attempt,
            at=now,
            outcome="delivered" if ok else "error",
            status=status,
            error=error,
            seconds=seconds,
        )
    )
    if ok:
        values: dict[str, Any] = {
            "state": "delivered",
            "delivered_at": now,
            "next_attempt_at": None,
            "last_error": None,
        }
    elif next_attempt_at is not None:
        values = {"next_attempt_at": next_attempt_at, "last_error": error}
    else:
        values = {"state": "failed", "next_attempt_at": None, "last_error": error}
    connection.execute(update(DELIVERIES).where(DELIVERIES.c.id == due.id).values(values))


def next_due(connection: Connection) -> datetime | None:
    found: datetime | None = connection.scalar(
        select(func.min(DELIVERIES.c.next_attempt_at)).where(DELIVERIES.c.state == "pending")
    )
    return found


def delivery_counts(connection: Connection) -> list[tuple[str, str, str, int]]:
    """(channel, kind, outcome, attempts) of the delivery log."""
    rows = connection.execute(
        select(ATTEMPTS.c.channel, ATTEMPTS.c.kind, ATTEMPTS.c.outcome, func.count()).group_by(
            ATTEMPTS.c.channel, ATTEMPTS.c.kind, ATTEMPTS.c.outcome
        )
    ).all()
    return [(channel, kind, outcome, int(count)) for channel, kind, outcome, count in rows]


def purge_alerts(connection: Connection, before: datetime) -> int:
    """Alerts whose last event is older than `before`, with their deliveries and log (by the foreign keys)."""
    old = select(ALERTS.c.id).where(ALERTS.c.last_at < before).scalar_subquery()
    connection.execute(delete(ATTEMPTS).where(ATTEMPTS.c.alert_id.in_(old)))
    connection.execute(delete(DELIVERIES).where(DELIVERIES.c.alert_id.in_(old)))
    return connection.execute(delete(ALERTS).where(ALERTS.c.last_at < before)).rowcount
