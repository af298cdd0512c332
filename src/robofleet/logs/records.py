"""A log record as readers get it: the one shape of a page of the API, an NDJSON export line, the Logs page and
an SSE `log` event of the live tail, whether the record was read from the store or has just been written."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, TypedDict

from robofleet.logs.models import LEVEL_NAMES


class RecordOut(TypedDict):
    id: int
    time: str  # ISO 8601 in UTC, "Z"
    level: str  # a level's name, or its number when it has none
    source: str
    run_id: str | None
    message: str
    fields: dict[str, Any]
    truncated: bool


class Stored(Protocol):
    """What a record has besides its id: a row read from the log table, or an `ingest.Row` just written."""

    @property
    def time(self) -> datetime: ...
    @property
    def level(self) -> int: ...
    @property
    def source(self) -> str: ...
    @property
    def run_id(self) -> str | None: ...
    @property
    def message(self) -> str: ...
    @property
    def fields(self) -> dict[str, Any] | str | None: ...
    @property
    def truncated(self) -> bool: ...


def time_text(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def records_out(ids: Sequence[int], records: Sequence[Stored]) -> list[RecordOut]:
    """The records, each with its id, as readers get them. A batch at a time: the live tail renders thousands of
    records a second, and a batch's records often share a time (when received), rendered once here."""
    times: dict[datetime, str] = {}
    return [
        {
            "id": record_id,
            "time": times.get(record.time) or times.setdefault(record.time, time_text(record.time)),
            "level": LEVEL_NAMES.get(record.level) or str(record.level),
            "source": record.source,
            "run_id": record.run_id,
            "message": record.message,
            # a JSON column read without its type (a raw query) comes back as text
            "fields": record.fields if isinstance(record.fields, dict) else json.loads(record.fields or "{}"),
            "truncated": record.truncated,
        }
        for record_id, record in zip(ids, records, strict=True)
    ]


def rows_out(rows: Sequence[Any]) -> list[RecordOut]:
    """Rows read from the log table (each has its id) as readers get them."""
    return records_out([row.id for row in rows], rows)
