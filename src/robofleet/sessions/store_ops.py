"""The statements of sessions, their history and run evidence: the service's only SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, delete, select, update
from sqlalchemy import exists as sql_exists
from sqlalchemy.orm import Session

from robofleet.errors import NotFound
from robofleet.robots.models import Run
from robofleet.sessions.models import GraphicalSession, RunEvidence, SessionEvent
from robofleet.sessions.schemas import SessionEventOut, SessionOut


def no_session(name: str) -> NotFound:
    return NotFound(f"no session named {name!r}", details={"session": name})


def find(db: Session, name: str, *, lock: bool = False) -> GraphicalSession:
    stmt = select(GraphicalSession).where(GraphicalSession.name == name)
    if lock:
        stmt = stmt.with_for_update()
    row = db.scalar(stmt)
    if row is None:
        raise no_session(name)
    return row


def exists(db: Session, name: str) -> bool:
    return db.scalar(select(GraphicalSession.id).where(GraphicalSession.name == name)) is not None


def sessions_query(agent: str | None, state: str | None) -> Select[Any]:
    """The sessions of `agent` in `state` (None: any); a tag is matched by the caller (a JSON list in both stores)."""
    stmt = select(GraphicalSession)
    if agent is not None:
        stmt = stmt.where(GraphicalSession.agent == agent)
    if state is not None:
        stmt = stmt.where(GraphicalSession.state == state)
    return stmt


def all_sessions(db: Session) -> list[GraphicalSession]:
    return list(db.scalars(select(GraphicalSession).order_by(GraphicalSession.id)))


def of_agent(db: Session, agent: str) -> list[GraphicalSession]:
    return list(
        db.scalars(select(GraphicalSession).where(GraphicalSession.agent == agent).order_by(GraphicalSession.id))
    )


def display_holder(db: Session, agent: str, display: str, but: str | None = None) -> str | None:
    """The session of `agent` that asks for `display` (other than `but`), None when none does."""
    stmt = select(GraphicalSession.name).where(GraphicalSession.agent == agent, GraphicalSession.display == display)
    if but is not None:
        stmt = stmt.where(GraphicalSession.name != but)
    return db.scalar(stmt.limit(1))


def session_out(row: GraphicalSession) -> SessionOut:
    return SessionOut.model_validate(row)


def add_event(
    db: Session,
    row: GraphicalSession,
    at: datetime,
    state: str,
    reason: str | None,
    source: str,
    seq: int | None = None,
) -> None:
    db.add(SessionEvent(session_id=row.id, at=at, state=state, reason=reason, source=source, seq=seq))


def events_page(db: Session, session_id: int, *, limit: int, before: int | None) -> list[SessionEventOut]:
    """Up to `limit` + 1 events of the session, newest first, older than the event `before`."""
    stmt = select(SessionEvent).where(SessionEvent.session_id == session_id)
    if before is not None:
        stmt = stmt.where(SessionEvent.id < before)
    stmt = stmt.order_by(SessionEvent.id.desc()).limit(limit + 1)
    return [SessionEventOut.model_validate(row) for row in db.scalars(stmt)]


# ---- evidence -------------------------------------------------------------------------------------------------


def evidence(db: Session, run_id: int) -> RunEvidence | None:
    return db.get(RunEvidence, run_id)


def has_evidence(db: Session, run_id: int) -> bool:
    return db.scalar(select(RunEvidence.run_id).where(RunEvidence.run_id == run_id)) is not None


def runs_without_evidence(
    db: Session, agent: str, states: tuple[str, ...], since: datetime, limit: int
) -> list[tuple[int, str]]:
    """(id, robot) of the newest `limit` runs of `agent` that ended in `states` after `since` and have no evidence."""
    stored = sql_exists(select(RunEvidence.run_id).where(RunEvidence.run_id == Run.id))
    stmt = (
        select(Run.id, Run.robot)
        .where(Run.agent == agent, Run.state.in_(states), Run.ended_at >= since, ~stored)
        .order_by(Run.id.desc())
        .limit(limit)
    )
    return [(int(run_id), str(robot)) for run_id, robot in db.execute(stmt)]


def drop_old_images(db: Session, robot: str, keep: int) -> int:
    """Drop the images of the robot's bundles but its newest `keep` (their facts stay); how many lost them."""
    newest = select(RunEvidence.run_id).where(RunEvidence.robot == robot).order_by(RunEvidence.run_id.desc())
    kept = list(db.scalars(newest.limit(keep)))
    stmt = (
        update(RunEvidence)
        .where(
            RunEvidence.robot == robot,
            RunEvidence.run_id.not_in(kept),
            (RunEvidence.screenshot.is_not(None)) | (RunEvidence.recording.is_not(None)),
        )
        .values(screenshot=None, screenshot_type=None, recording=None, recording_type=None)
        .execution_options(synchronize_session=False)
    )
    return int(db.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]


def purge_evidence(connection: Connection, before: datetime) -> int:
    """Delete the evidence stored before `before`; how many bundles went."""
    result = connection.execute(delete(RunEvidence).where(RunEvidence.stored_at < before))
    return int(result.rowcount or 0)


def purge_events(connection: Connection, before: datetime) -> int:
    """Delete the sessions' history older than `before` (a session that restarts every few seconds for months must
    not grow its table for ever); how many events went."""
    result = connection.execute(delete(SessionEvent).where(SessionEvent.at < before))
    return int(result.rowcount or 0)
