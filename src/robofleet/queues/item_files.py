"""Items read from a file as the panel's upload reads them (web/static/queues.js, `itemsOf`): a JSON array or NDJSON of
item objects, or CSV with a header row. Text in, items out, or every malformed line with its number: no I/O here, so
that `robofleet queue add --file` can refuse a file before it sends anything.

CSV as queues.js reads it: the separator is the commonest of `,` `;` and tab on the header line; a value may be
quoted ("" for a quote inside it, line breaks kept); the columns reference, priority, deadline, postpone_until and
payload (a JSON object) are the item's fields, named in any case; any other column goes into the payload under its
header, as text, over the payload column's keys; an empty value leaves its field out. A row is numbered by the line
it starts on."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ITEM_FIELDS = ("reference", "priority", "payload", "deadline", "postpone_until")
SEPARATORS = (",", ";", "\t")
TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|z|[+-]\d{2}:\d{2})", re.ASCII)
WHOLE = re.compile(r"\s*\d+\s*", re.ASCII)
BOM = "\ufeff"


@dataclass(frozen=True)
class Problem:
    line: int | None  # None: the file as a whole
    message: str


class MalformedFile(Exception):
    """The file's malformed lines, in their order; nothing of it should be added."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(problem.message for problem in problems))
        self.problems = problems


def read_items(name: str, text: str) -> list[dict[str, Any]]:
    """The items of the file `name` (its name only decides JSON or CSV, as the panel's does) holding `text`;
    MalformedFile naming each bad line."""
    text = text.removeprefix(BOM)
    looks_json = re.search(r"\.(json|ndjson|jsonl)$", name, re.IGNORECASE) or re.match(r"\s*[\[{]", text[:200])
    return json_items(text) if looks_json else csv_items(text)


# ---- JSON -----------------------------------------------------------------------------------------------------------


def json_items(text: str) -> list[dict[str, Any]]:
    """A JSON array of item objects, or NDJSON: one item object a line (blank lines skipped)."""
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MalformedFile([Problem(None, f"not a JSON array of items: {exc}")]) from None
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise MalformedFile([Problem(None, "every item must be a JSON object")])
        return items
    found: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(number, f"not JSON ({exc.msg} at column {exc.colno})"))
            continue
        if isinstance(item, dict):
            found.append(item)
        else:
            problems.append(Problem(number, "an item must be a JSON object"))
    if problems:
        raise MalformedFile(problems)
    return found


# ---- CSV ------------------------------------------------------------------------------------------------------------


@dataclass
class Record:
    line: int  # the line it starts on
    fields: list[str] = field(default_factory=list)
    problem: str | None = None


def sniff(text: str) -> str:
    """The separator of the header line: the commonest of SEPARATORS on it (the first of them on a tie), else ','."""
    first = re.split(r"\r|\n", text, maxsplit=1)[0]
    best = max(SEPARATORS, key=first.count)
    return best if first.count(best) else ","


def parse_csv(text: str, separator: str) -> tuple[list[Record], int | None]:
    """The records of `text` (blank lines left out) and the line a quoted value that never closes starts on (its
    record and the rest of the file are not records then)."""
    records: list[Record] = []
    record = Record(1)
    value = ""
    quoted = closed = False
    line = 1
    index = 0

    def end_value() -> None:
        nonlocal value, closed
        record.fields.append(value)
        value, closed = "", False

    def end_record() -> None:
        end_value()
        if not (record.fields == [""] and record.problem is None):
            records.append(record)

    while index < len(text):
        char = text[index]
        if quoted:
            if char == '"':
                if text[index + 1 : index + 2] == '"':
                    value += '"'
                    index += 1
                else:
                    quoted, closed = False, True
            else:
                if char == "\n":
                    line += 1
                value += char
        elif char == separator:
            end_value()
        elif char in "\r\n":
            end_record()
            if char == "\r" and text[index + 1 : index + 2] == "\n":
                index += 1
            line += 1
            record = Record(line)
        elif char == '"' and value == "" and not closed:
            quoted = True
        else:
            if closed and record.problem is None:
                record.problem = 'text after a closing quote (a quote inside a value must be doubled: "")'
            value += char
        index += 1
    if quoted:
        return records, record.line
    if value or record.fields or closed:
        end_record()
    return records, None


def csv_items(text: str) -> list[dict[str, Any]]:
    """The rows of a CSV file with a header row as items (see the module's docstring)."""
    records, unclosed = parse_csv(text, sniff(text))
    if not records:
        raise MalformedFile([Problem(1, "the file has no header line")])
    header, rows = records[0], records[1:]
    names = [name.strip() for name in header.fields]
    seen: set[str] = set()
    for number, name in enumerate(names, start=1):
        key = name.lower() if name.lower() in ITEM_FIELDS else name
        why = (
            f"column {number} of the header has no name"
            if not name
            else f"the header names {shown(name)} twice"
            if key in seen
            else None
        )
        if why:
            raise MalformedFile([Problem(header.line, why + ": nothing was read")])
        seen.add(key)
    items: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for row in rows:
        made = row_item(names, row)
        if isinstance(made, str):
            problems.append(Problem(row.line, made))
        else:
            items.append(made)
    if unclosed is not None:
        problems.append(
            Problem(unclosed, "a quoted value is never closed: this line and every one after it were left out")
        )
    if problems:
        raise MalformedFile(problems)
    return items


def row_item(names: list[str], row: Record) -> dict[str, Any] | str:
    """The item of a CSV row under the header `names`, or why the row is malformed."""
    if row.problem:
        return row.problem
    if len(row.fields) != len(names):
        return f"{len(row.fields)} value(s), the header has {len(names)} column(s)"
    item: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for name, value in zip(names, row.fields, strict=True):
        key = name.lower()
        if key not in ITEM_FIELDS:
            extra[name] = value
        elif not value.strip():
            continue
        elif key == "priority":
            item["priority"] = int(value) if WHOLE.fullmatch(value) else value
        elif key == "payload":
            try:
                item["payload"] = json.loads(value, parse_constant=_no_constant)
            except ValueError as exc:
                reason = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
                return f"payload is not JSON: {reason}"
        else:
            item[key] = value if key == "reference" else value.strip()
    payload = item.get("payload", {})
    if not isinstance(payload, dict):
        return "payload must be a JSON object"
    item["payload"] = {**payload, **extra}
    return check_item(item)


def check_item(item: dict[str, Any]) -> dict[str, Any] | str:
    """The item with its times in ISO form, checked as the panel checks it before sending (the payload's size is the
    server's to check); or why it cannot be added."""
    reference = item.get("reference")
    if reference is not None and not (isinstance(reference, str) and 1 <= len(reference) <= 256):
        return "reference must be text of 1 to 256 characters"
    priority = item.get("priority")
    if priority is not None and not (isinstance(priority, int) and 0 <= priority <= 1000):
        return f"priority must be a whole number from 0 to 1000, got {shown(priority)}"
    for key in ("deadline", "postpone_until"):
        if item.get(key) is None:
            continue
        text = item[key].strip() if isinstance(item[key], str) else ""
        if not TIME.fullmatch(text) or not _is_time(text.replace(" ", "T", 1)):
            example = "2026-12-31T17:00:00+01:00"
            return f"{key} must be an ISO time with its offset, e.g. {example}, got {shown(item[key])}"
        item[key] = text.replace(" ", "T", 1)
    return item


def shown(value: Any) -> str:
    """A value quoted for a message, cut at 60 characters."""
    text = value if isinstance(value, str) else json.dumps(value)
    return json.dumps(text[:60] + "…" if len(text) > 60 else text, ensure_ascii=False)


def _is_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
