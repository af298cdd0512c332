"""Keyset pagination behind an opaque cursor: stable under inserts, cheap on large tables."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from robofleet.errors import Invalid

T = TypeVar("T")
MAX_LIMIT = 500


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(str(key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Invalid("the cursor is not one this server handed out", code="invalid_cursor") from None


def paginate(
    db: Session,
    stmt: Select[Any],
    key: InstrumentedAttribute[Any],
    *,
    limit: int,
    cursor: str | None,
    descending: bool = False,
    key_type: Callable[[str], Any] = int,
) -> Page[Any]:
    """Run `stmt` ordered by `key`, starting after `cursor`; `next_cursor` is None on the last page."""
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", details={"field": "limit"})
    if cursor:
        raw = decode_cursor(cursor)
        try:
            after = key_type(raw)
        except ValueError:
            raise Invalid("the cursor is not one this server handed out", code="invalid_cursor") from None
        stmt = stmt.where(key < after if descending else key > after)
    stmt = stmt.order_by(key.desc() if descending else key.asc()).limit(limit + 1)
    rows = list(db.scalars(stmt).unique().all())
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(getattr(rows[-1], key.key)) if more and rows else None
    return Page(rows, next_cursor)
