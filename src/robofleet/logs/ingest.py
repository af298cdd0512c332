"""Turns submitted log records into rows, one by one: a bad record is refused with its index and reason,
the good ones of the same batch are kept."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeGuard

import orjson

from robofleet.logs.models import LEVELS

FIELDS = frozenset({"time", "level", "source", "run_id", "message", "fields"})
MAX_FIELDS_BYTES = 65_536
TRUNCATION_MARK = " …[truncated]"


@dataclass(slots=True)
class Row:
    time: datetime
    level: int
    source: str
    run_id: str | None
    message: str
    fields: dict[str, Any]
    truncated: bool


class Refused(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Sender:
    """Who sends a batch, as far as its records' sources go. A robot run's own token writes as that robot and run
    only, an agent's token (bound to its name) as agent:<its name> only (`source`, and `run_id`, are then the
    defaults and the only values allowed). `orchestrator` is the orchestrator's own source, which only a caller
    holding logs:admin may send as; so are records of any run (`for_runs`) and of any agent (`as_agents`).
    A robot run by robofleet is a number; `own_run_ids` lets a sender label records with run ids of its own that
    are not numbers (a robot that runs outside robofleet, through the SDK)."""

    source: str | None = None
    run_id: str | None = None
    as_orchestrator: bool = False
    for_runs: bool = False
    as_agents: bool = False
    own_run_ids: bool = False


ANYONE = Sender(as_orchestrator=True, for_runs=True, as_agents=True)
SOURCE_RULE = (
    "source must be orchestrator, agent:<name> or robot:<name> (a name of letters, digits, _ . -; at most 128 "
    "characters in all)"
)


def parse_level(value: Any) -> int:
    if value is None:
        return LEVELS["INFO"]
    if isinstance(value, bool):
        raise Refused("level must be a name (DEBUG, INFO, WARNING, ERROR, CRITICAL) or a number 0-50")
    if isinstance(value, int):
        if 0 <= value <= 50:
            return value
        raise Refused("level must be between 0 and 50")
    if isinstance(value, str):
        number = LEVELS.get(value.upper()) or (LEVELS["WARNING"] if value.upper() == "WARN" else None)
        if number is not None:
            return number
    raise Refused("level must be a name (DEBUG, INFO, WARNING, ERROR, CRITICAL) or a number 0-50")


def parse_time(value: Any, now: datetime) -> datetime:
    if value is None:
        return now
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise Refused("time is out of range") from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise Refused("time must be ISO 8601 (2026-01-31T12:00:00.123456Z) or Unix seconds") from None
        try:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+14:00 is before the first moment a datetime can hold in UTC
            raise Refused("time is out of range") from None
    raise Refused("time must be ISO 8601 (2026-01-31T12:00:00.123456Z) or Unix seconds")


def truncate(message: str, max_bytes: int) -> tuple[str, bool]:
    encoded = message.encode("utf-8", "replace")
    if len(encoded) <= max_bytes:
        return message, False
    keep = max_bytes - len(TRUNCATION_MARK.encode())
    return encoded[:keep].decode("utf-8", "ignore") + TRUNCATION_MARK, True


# A robot's or an agent's name as robots.schemas.RobotName allows: no space, newline or glob character, which
# would let one record pass for several lines in a terminal, or a source filter match what it should not.
_SOURCE = re.compile(r"orchestrator|(?:robot|agent):[A-Za-z0-9_.-]{1,122}")


def _valid_source(source: Any) -> TypeGuard[str]:
    return type(source) is str and _SOURCE.fullmatch(source) is not None


def parse_record(raw: Any, *, now: datetime, max_message_bytes: int, sender: Sender = ANYONE) -> Row:
    """One validated row; Refused says what is wrong. (Hot path: tens of thousands of calls a second.)"""
    if type(raw) is not dict:
        raise Refused("a record must be a JSON object")
    if not FIELDS.issuperset(raw):
        raise Refused(f"unknown field(s): {', '.join(sorted(raw.keys() - FIELDS))}")
    message = raw.get("message")
    if type(message) is not str:
        raise Refused("message is required and must be a string")
    source = raw.get("source", sender.source)
    if not _valid_source(source):
        raise Refused(SOURCE_RULE if source is not None else f"source is required: {SOURCE_RULE}")
    if sender.source is not None and source != sender.source:
        raise Refused(f"this token sends as {sender.source} only")
    if source == "orchestrator" and not sender.as_orchestrator:
        raise Refused("source orchestrator is the orchestrator's own: sending as it needs the permission logs:admin")
    if not sender.as_agents and sender.source is None and source.startswith("agent:"):
        raise Refused("only an agent's own token (bound to its name) sends as agent:<name>, or logs:admin")
    run_id = raw.get("run_id", sender.run_id)
    if run_id is not None:
        if type(run_id) is int:
            run_id = str(run_id)
        if type(run_id) is not str or not 0 < len(run_id) <= 64:
            raise Refused("run_id must be a string of 1 to 64 characters, or a number")
        if sender.run_id is not None and run_id != sender.run_id:
            raise Refused(f"this token sends for run {sender.run_id} only")
        if sender.run_id is None and not sender.for_runs and (not sender.own_run_ids or run_id.isdigit()):
            raise Refused(
                f"run {run_id} is robofleet's: only its own token sends its records, or logs:admin"
                if sender.own_run_ids
                else "this token sends records of no run"
            )
    fields = raw.get("fields")
    if fields:
        if type(fields) is not dict:
            raise Refused("fields must be a JSON object")
        try:  # orjson, as the writers will: what it cannot write must be refused here, for this record alone
            size = len(orjson.dumps(fields))
        except TypeError:
            raise Refused("fields are nested too deeply (at most 254 levels)") from None
        if size > MAX_FIELDS_BYTES:
            raise Refused(f"fields are larger than {MAX_FIELDS_BYTES} bytes")
    elif fields is not None and fields != {}:
        raise Refused("fields must be a JSON object")
    # A character takes at most 4 bytes in UTF-8: short messages need no encoding to check.
    if len(message) * 4 > max_message_bytes:
        message, truncated = truncate(message, max_message_bytes)
    else:
        truncated = False
    level = raw.get("level")
    level_number = LEVELS.get(level) if type(level) is str else None
    time = raw.get("time")
    return Row(
        now if time is None else parse_time(time, now),
        level_number if level_number is not None else parse_level(level),
        source,
        run_id,
        message,
        fields or {},
        truncated,
    )


def parse_batch(
    records: list[Any], *, now: datetime, max_message_bytes: int, sender: Sender = ANYONE
) -> tuple[list[Row], list[dict[str, Any]]]:
    rows: list[Row] = []
    rejected: list[dict[str, Any]] = []
    for index, raw in enumerate(records):
        try:
            rows.append(parse_record(raw, now=now, max_message_bytes=max_message_bytes, sender=sender))
        except Refused as exc:
            rejected.append({"index": index, "error": str(exc)})
    return rows, rejected
