"""Every statement the processor runs on the activities table, as functions of a session (run by the group
committer). The processor is their only caller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, bindparam, func, select, update
from sqlalchemy import insert as sql_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

from robofleet.activities.models import CANCELLED, FAILED, QUEUED, RUNNING, Activity
from robofleet.activities.schemas import ActivityOut
from robofleet.auth.audit import record, record_each
from robofleet.auth.principal import Principal
from robofleet.errors import Conflict

# Writes go through Core on the table, not the ORM: no unit of work or identity map on the hot path.
TABLE: Table = Activity.__table__  # type: ignore[assignment]


@dataclass
class NewActivity:
    action: str
    args: dict[str, Any]
    mode: str
    idempotency_key: str | None


def activity_out(row: Activity) -> ActivityOut:
    duration = None
    if row.started_at and row.finished_at:
        duration = round((row.finished_at - row.started_at).total_seconds() * 1000, 3)
    return ActivityOut(
        id=row.id,
        action=row.action,
        args=row.args,
        mode=row.mode,
        state=row.state,
        result=row.result,
        error=row.error,
        requested_by=row.requested_by,
        idempotency_key=row.idempotency_key,
        batch_id=row.batch_id,
        batch_index=row.batch_index,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_ms=duration,
    )


_INSERT = sql_insert(TABLE).returning(TABLE.c.id, sort_by_parameter_order=True)
_SET_BATCH = (
    update(TABLE)
    .where(TABLE.c.id == bindparam("row_id"))
    .values(batch_id=bindparam("first"), batch_index=bindparam("row_index"))
)


def reused(existing: dict[str, ActivityOut], items: list[NewActivity], *, batch: bool) -> list[ActivityOut] | None:
    """What a request whose idempotency keys were seen before answers: the activities first made with them
    (None: nothing was reused, insert). Raises Conflict when only some of a list's keys were used before."""
    if not existing:
        return None
    keys = [item.idempotency_key for item in items if item.idempotency_key]
    if len(existing) == len(items) == len(keys) and (not batch or len({a.batch_id for a in existing.values()}) == 1):
        return [existing[item.idempotency_key or ""] for item in items]
    raise Conflict(
        "some idempotency keys of this request were used before with other activities",
        details={"reused": sorted(existing)},
    )


def new_rows(
    principal: Principal, items: list[NewActivity], now: datetime, start_first: bool, replica: str
) -> list[dict[str, Any]]:
    """The rows of a submit, owned by `replica` (this process: runtime/replicas.py)."""
    rows = [
        {
            "action": item.action,
            "args": item.args,
            "mode": item.mode,
            "state": QUEUED,
            "requested_by": principal.actor,
            "requester_id": principal.user_id,
            "requester_via": principal.via,
            "scopes": list(principal.scopes),
            "source_ip": principal.source_ip,
            "idempotency_key": item.idempotency_key,
            "created_at": now,
            "started_at": None,
            "replica": replica,
        }
        for item in items
    ]
    if start_first:
        rows[0]["state"], rows[0]["started_at"] = RUNNING, now
    return rows


def audit_target(ids: list[int]) -> str:
    return str(ids[0]) if len(ids) == 1 else f"{ids[0]}..{ids[-1]}"


def audit_details(items: list[NewActivity], batch: bool) -> dict[str, Any]:
    return {"actions": sorted({item.action for item in items}), "count": len(items), "batch": batch}


def outs_of(ids: list[int], rows: list[dict[str, Any]], *, batch: bool) -> list[ActivityOut]:
    return [
        ActivityOut(
            id=row_id,
            action=row["action"],
            args=row["args"],
            mode=row["mode"],
            state=row["state"],
            result=None,
            error=None,
            requested_by=row["requested_by"],
            idempotency_key=row["idempotency_key"],
            batch_id=ids[0] if batch else None,
            batch_index=index if batch else None,
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=None,
            duration_ms=None,
        )
        for index, (row_id, row) in enumerate(zip(ids, rows, strict=True))
    ]


def insert(
    session: Session,
    principal: Principal,
    items: list[NewActivity],
    *,
    batch: bool,
    now: datetime,
    replica: str,
    start_first: bool = False,
) -> tuple[list[ActivityOut], bool]:
    """Insert the activities of `replica` (and their audit record); (outs, created). A reused idempotency key returns
    the activity first made with it instead of a new one. `start_first` stores the first one as running already."""
    keys = [item.idempotency_key for item in items if item.idempotency_key]
    if keys:
        found = session.scalars(
            select(Activity).where(Activity.requested_by == principal.actor, Activity.idempotency_key.in_(keys))
        )
        earlier = reused(
            {row.idempotency_key: activity_out(row) for row in found if row.idempotency_key}, items, batch=batch
        )
        if earlier is not None:
            return earlier, False
    rows = new_rows(principal, items, now, start_first, replica)
    # Core, not the ORM: this runs for every submit, and the unit of work costs more than the insert.
    connection = session.connection()
    ids = list(connection.execute(_INSERT, rows).scalars())
    if batch:
        connection.execute(
            _SET_BATCH, [{"row_id": row_id, "first": ids[0], "row_index": index} for index, row_id in enumerate(ids)]
        )
    record(session, principal, "activity.submit", audit_target(ids), "ok", audit_details(items, batch))
    return outs_of(ids, rows, batch=batch), True


def insert_each(
    session: Session, entries: list[tuple[Principal, NewActivity]], *, now: datetime, replica: str
) -> list[ActivityOut]:
    """Activities of several requesters in the caller's transaction, one statement for the rows and one for their
    audit records (each its requester's submit). No idempotency keys: the caller's transaction writes them once."""
    rows = [row for principal, item in entries for row in new_rows(principal, [item], now, False, replica)]
    ids = list(session.connection().execute(_INSERT, rows).scalars())
    details = [audit_details([item], False) for _, item in entries]
    record_each(
        session,
        [
            (principal, "activity.submit", str(row_id), detail)
            for (principal, _), row_id, detail in zip(entries, ids, details, strict=True)
        ],
    )
    return outs_of(ids, rows, batch=False)


# Built once: constructing and coercing a statement per call costs more than SQLite running it.
_MARK_RUNNING = (
    update(TABLE).where(TABLE.c.id == bindparam("activity_id")).values(state=RUNNING, started_at=bindparam("at"))
)
_MARK_FINISHED = (
    update(TABLE)
    .where(TABLE.c.id == bindparam("activity_id"))
    .values(state=bindparam("state"), result=bindparam("result"), error=bindparam("error"), finished_at=bindparam("at"))
)


def running_statement(activity_id: int, at: datetime) -> tuple[Executable, dict[str, Any]]:
    """mark_running as a statement and its parameters, for the group committer to run many as one."""
    return _MARK_RUNNING, {"activity_id": activity_id, "at": at}


def finished_statement(
    activity_id: int, state: str, result: Any, error: dict[str, Any] | None, at: datetime
) -> tuple[Executable, dict[str, Any]]:
    """mark_finished as a statement and its parameters, for the group committer to run many as one."""
    return _MARK_FINISHED, {"activity_id": activity_id, "state": state, "result": result, "error": error, "at": at}


def mark_running(session: Session, activity_id: int, at: datetime) -> None:
    session.connection().execute(_MARK_RUNNING, {"activity_id": activity_id, "at": at})


def mark_finished(
    session: Session, activity_id: int, state: str, result: Any, error: dict[str, Any] | None, at: datetime
) -> None:
    session.connection().execute(
        _MARK_FINISHED, {"activity_id": activity_id, "state": state, "result": result, "error": error, "at": at}
    )


def mark_cancelled(session: Session, activity_ids: list[int], error: dict[str, Any], at: datetime) -> int:
    """Cancel those still queued; returns how many were."""
    result = session.execute(
        update(Activity)
        .where(Activity.id.in_(activity_ids), Activity.state == QUEUED)
        .values(state=CANCELLED, error=error, finished_at=at)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def replicas_left_behind(session: Session, replica: str) -> list[str | None]:
    """The replicas other than `replica` that own activities still queued or running (None: rows that name none)."""
    owners = select(Activity.replica).where(
        Activity.state.in_((QUEUED, RUNNING)), Activity.replica.is_distinct_from(replica)
    )
    return list(session.scalars(owners.distinct()))


def fail_interrupted(session: Session, replica: str | None, at: datetime) -> int:
    """Activities left running by `replica`, gone: failed, with the reason, never rerun. How many were."""
    error = {
        "code": "interrupted",
        "message": "the orchestrator stopped while this activity was running; it was not run again",
    }
    result = session.execute(
        update(Activity)
        .where(Activity.state == RUNNING, Activity.replica.is_not_distinct_from(replica))
        .values(state=FAILED, error=error, finished_at=at)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def take_over_queued(session: Session, replica: str | None, by: str) -> list[Activity]:
    """Activities left queued by `replica`, gone: now owned by `by`, in id order (the order they run in)."""
    taken = session.scalars(
        update(Activity)
        .where(Activity.state == QUEUED, Activity.replica.is_not_distinct_from(replica))
        .values(replica=by)
        .returning(Activity)
    )
    return sorted(taken, key=lambda row: row.id)


def list_query(state: str | None, action: str | None, requested_by: str | None, batch_id: int | None) -> Select[Any]:
    """Activities filtered by state, action name prefix, requester prefix and batch, for keyset paging by id."""
    stmt = select(Activity)
    if state:
        stmt = stmt.where(Activity.state == state)
    if action:
        stmt = stmt.where(Activity.action.startswith(action))
    if requested_by:
        stmt = stmt.where(Activity.requested_by.startswith(requested_by))
    if batch_id is not None:
        stmt = stmt.where(Activity.batch_id == batch_id)
    return stmt


def count_by_state(session: Session, states: list[str]) -> dict[str, int]:
    """How many activities are in each of `states` (for /metrics): a count per state on the (state, id) index."""
    return {
        state: int(session.scalar(select(func.count()).select_from(TABLE).where(TABLE.c.state == state)) or 0)
        for state in states
    }
