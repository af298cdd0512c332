"""The audit log: every mutation, successful or not, with who, what, target, when, where, outcome."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, insert, select
from sqlalchemy.orm import Session

from robofleet.auth.models import AuditRecord
from robofleet.auth.principal import Principal
from robofleet.errors import Forbidden, RobofleetError, StoreUnavailable
from robofleet.store import Store
from robofleet.store.base import utcnow

log = logging.getLogger(__name__)
AUDIT_TABLE: Table = AuditRecord.__table__  # type: ignore[assignment]
_INSERT = insert(AUDIT_TABLE)


def record(
    db: Session,
    principal: Principal,
    action: str,
    target: str,
    outcome: str = "ok",
    details: dict[str, Any] | None = None,
) -> None:
    # A Core insert in the caller's transaction: every mutation writes one, and the ORM's unit of work would
    # cost more than the row.
    db.connection().execute(
        _INSERT,
        {
            "time": utcnow(),
            "actor": principal.actor,
            "action": action,
            "target": target,
            "source_ip": principal.source_ip,
            "outcome": outcome,
            "details": details or {},
        },
    )


def record_each(db: Session, entries: list[tuple[Principal, str, str, dict[str, Any]]]) -> None:
    """Successful mutations of several callers, (principal, action, target, details) each, in one statement: for
    work done for many at once (a scheduler pass submits the activities of many schedules)."""
    if not entries:
        return
    now = utcnow()
    db.connection().execute(
        _INSERT,
        [
            {
                "time": now,
                "actor": principal.actor,
                "action": action,
                "target": target,
                "source_ip": principal.source_ip,
                "outcome": "ok",
                "details": details,
            }
            for principal, action, target, details in entries
        ],
    )


def record_alone(
    store: Store,
    principal: Principal,
    action: str,
    target: str,
    outcome: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Record in a transaction of its own: for refusals and failures whose own transaction rolled back."""
    try:
        with store.transaction() as db:
            record(db, principal, action, target, outcome, details)
    except StoreUnavailable:
        log.warning("audit record lost, store unavailable: %s %s %s %s", principal.actor, action, target, outcome)


@contextmanager
def audited(
    store: Store,
    principal: Principal,
    action: str,
    target: str,
    details: dict[str, Any] | None = None,
) -> Iterator[Session]:
    """A transaction whose success is audited with it; a refusal or failure is audited on its own."""
    try:
        with store.transaction() as db:
            yield db
            record(db, principal, action, target, "ok", details)
    except StoreUnavailable:
        raise
    except RobofleetError as exc:
        outcome = "denied" if isinstance(exc, Forbidden) else "failed"
        record_alone(store, principal, action, target, outcome, {**(details or {}), "error": exc.message})
        raise
    except BaseException as exc:
        # A bug, or code that raised SystemExit or KeyboardInterrupt (the console runs anything): still recorded.
        record_alone(store, principal, action, target, "failed", {**(details or {}), "error": type(exc).__name__})
        raise


def query(
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select[Any]:
    stmt = select(AuditRecord)
    if actor:
        stmt = stmt.where(AuditRecord.actor.startswith(actor))
    if action:
        stmt = stmt.where(AuditRecord.action.startswith(action))
    if target:
        stmt = stmt.where(AuditRecord.target == target)
    if outcome:
        stmt = stmt.where(AuditRecord.outcome == outcome)
    if since:
        stmt = stmt.where(AuditRecord.time >= since)
    if until:
        stmt = stmt.where(AuditRecord.time < until)
    return stmt
