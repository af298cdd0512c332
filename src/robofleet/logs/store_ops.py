"""Every statement on the log table but the writes (`writer`): filtered keyset queries (through the block
summaries of `blocks` whenever a filter narrows the blocks), and retention deletes in small batches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, false, func, or_, select
from sqlalchemy.orm import Session

from robofleet.logs import blocks
from robofleet.logs.filters import Filters
from robofleet.logs.globs import glob_to_like, glob_to_sqlite, is_glob
from robofleet.logs.models import LogRecord

TABLE: Table = LogRecord.__table__  # type: ignore[assignment]
COLUMNS = ("time", "level", "source", "run_id", "message", "fields", "truncated")


def conditions(
    filters: Filters, dialect: str, *, after: int | None = None, before: int | None = None
) -> list[ColumnElement[bool]]:
    """The filters as SQL, but for the words (the block index and a recheck answer those: `blocks.search`)."""
    found: list[ColumnElement[bool]] = []
    if filters.since is not None:
        found.append(TABLE.c.time >= filters.since)
    if filters.until is not None:
        found.append(TABLE.c.time < filters.until)
    if filters.min_level is not None:
        found.append(TABLE.c.level >= filters.min_level)
    if filters.run_id is not None:
        found.append(TABLE.c.run_id == filters.run_id)
    if filters.source:
        found.append(source_condition(filters.source, dialect))
    if filters.visible is not None:
        found.append(or_(false(), *(source_condition(glob, dialect) for glob in filters.visible)))
    if after is not None:
        found.append(TABLE.c.id > after)
    if before is not None:
        found.append(TABLE.c.id < before)
    return found


def source_condition(source: str, dialect: str) -> ColumnElement[bool]:
    if is_glob(source) and dialect == "sqlite":
        return TABLE.c.source.op("GLOB", is_comparison=True)(glob_to_sqlite(source))
    if is_glob(source):
        return TABLE.c.source.like(glob_to_like(source), escape="\\")
    return TABLE.c.source == source


def fetch(
    connection: Connection,
    filters: Filters,
    *,
    after: int | None = None,
    before: int | None = None,
    ascending: bool = False,
    limit: int = 100,
    scan_budget: int = blocks.SCAN_BUDGET,
) -> tuple[list[Any], int | None]:
    """Matching records in id order, and where to resume when a search through the blocks stopped at its scan
    budget before filling `limit` (None: nothing more to look at past the last record given)."""
    dialect = connection.dialect.name
    selection = blocks.selection_of(filters)
    if selection is not None:
        return blocks.search(
            connection,
            TABLE,
            conditions(filters, dialect),
            selection,
            filters.words,
            after=after,
            before=before,
            ascending=ascending,
            limit=limit,
            scan_budget=scan_budget,
        )
    stmt = select(TABLE).where(*conditions(filters, dialect, after=after, before=before))
    stmt = stmt.order_by(TABLE.c.id.asc() if ascending else TABLE.c.id.desc()).limit(limit)
    return list(connection.execute(stmt).all()), None


def blocks_older_than(session: Session, cutoff: datetime, after: int, count: int = 64) -> list[int]:
    """Blocks, in order past `after`, that hold a record older than `cutoff`."""
    query = select(blocks.BLOCKS.c.id).where(blocks.BLOCKS.c.min_time < cutoff, blocks.BLOCKS.c.id > after)
    return list(session.connection().execute(query.order_by(blocks.BLOCKS.c.id).limit(count)).scalars())


def expire_block(session: Session, block: int, cutoff: datetime) -> int:
    """Delete the block's records older than `cutoff` (at most one id range), then narrow its time span to what is
    left, or drop its summary when nothing is: the next pass does not look at it again."""
    connection = session.connection()
    in_block = TABLE.c.id.between(blocks.first_id(block), blocks.first_id(block + 1) - 1)
    deleted = int(connection.execute(TABLE.delete().where(in_block, TABLE.c.time < cutoff)).rowcount or 0)
    oldest = connection.execute(select(func.min(TABLE.c.time)).where(in_block)).scalar()
    summary = blocks.BLOCKS.c.id == block
    if oldest is None:
        connection.execute(blocks.BLOCKS.delete().where(summary))
    else:
        connection.execute(blocks.BLOCKS.update().where(summary).values(min_time=oldest))
    return deleted


def id_keeping_newest(session: Session, keep: int) -> int | None:
    """The id below which rows must go so that at most `keep` newest remain (None: nothing to remove)."""
    found = session.connection().execute(select(TABLE.c.id).order_by(TABLE.c.id.desc()).offset(keep).limit(1)).scalar()
    return int(found) + 1 if found is not None else None


def delete_below(session: Session, below_id: int, batch: int) -> int:
    ids = select(TABLE.c.id).where(TABLE.c.id < below_id).order_by(TABLE.c.id).limit(batch).scalar_subquery()
    result = session.connection().execute(TABLE.delete().where(TABLE.c.id.in_(ids)))
    return int(result.rowcount or 0)


def delete_emptied_blocks(session: Session) -> int:
    """Drop the summaries of blocks below the oldest record left (SQLite's FTS5 over them follows by trigger)."""
    oldest = session.connection().execute(select(func.min(TABLE.c.id))).scalar()
    stale = blocks.BLOCKS.delete()
    if oldest is not None:
        stale = stale.where(blocks.BLOCKS.c.id < blocks.block_of(int(oldest)))
    return int(session.connection().execute(stale).rowcount or 0)
