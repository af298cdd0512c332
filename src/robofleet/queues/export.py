"""Items as export text: CSV (a header, then a row per item; payload and output as JSON) or NDJSON (an item's
JSON per line, the API's shape). Rendered as the pages arrive, so an export of millions of items holds one page."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from robofleet.queues.schemas import ItemOut

COLUMNS = (
    "id",
    "queue",
    "reference",
    "priority",
    "state",
    "attempts",
    "deadline",
    "postpone_until",
    "created_at",
    "started_at",
    "finished_at",
    "leased_by",
    "error_kind",
    "error",
    "payload",
    "output",
)
# A spreadsheet runs a cell that starts with one of these as a formula: text cells get a leading apostrophe.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def render(pages: Iterable[list[ItemOut]], fmt: str) -> Iterator[str]:
    """The text of `pages` in `fmt` ("csv" or "ndjson"), a chunk per page."""
    if fmt == "ndjson":
        for page in pages:
            yield "".join(item.model_dump_json() + "\n" for item in page)
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    yield _drain(buffer)
    for page in pages:
        writer.writerows(csv_row(item) for item in page)
        yield _drain(buffer)


def csv_row(item: ItemOut) -> list[Any]:
    data = item.model_dump(mode="json")
    row: list[Any] = []
    for column in COLUMNS:
        value = data[column]
        if column in ("payload", "output"):
            row.append("" if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":")))
        elif (
            isinstance(value, str)
            and column in ("reference", "error", "leased_by")
            and value.startswith(FORMULA_STARTS)
        ):
            row.append("'" + value)
        else:
            row.append("" if value is None else value)
    return row


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
