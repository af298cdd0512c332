"""What a reader asks of the log: the same filters answered by the store (`store_ops`, `blocks`) and, record by
record, by the live tail (`Filters.matches`), so that a search and a tail of the same filters agree."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING

from robofleet.errors import Invalid
from robofleet.logs.globs import glob_pattern
from robofleet.logs.ingest import Refused, Row, parse_level
from robofleet.logs.words import contains_all, words_of

if TYPE_CHECKING:
    from robofleet.robots.store_ops import RobotScope


@dataclass(frozen=True)
class Filters:
    since: datetime | None = None
    until: datetime | None = None
    min_level: int | None = None
    source: str | None = None  # glob: robot:* , agent:pc-?? , orchestrator
    run_id: str | None = None
    text: str | None = None
    # Source globs a reader narrowed to some robots may see (None: every source); a record must match one of them.
    visible: tuple[str, ...] | None = None

    @cached_property
    def words(self) -> list[str]:
        return words_of(self.text) if self.text else []

    def matches(self, row: Row) -> bool:
        """The same filters applied to a record in memory (for the live tail)."""
        if self.min_level is not None and row.level < self.min_level:
            return False
        if self.run_id is not None and row.run_id != self.run_id:
            return False
        if self.source and not glob_pattern(self.source).match(row.source):
            return False
        if self.visible is not None and not any(glob_pattern(glob).match(row.source) for glob in self.visible):
            return False
        if self.since and row.time < self.since:
            return False
        if self.until and row.time >= self.until:
            return False
        return contains_all(row.message, self.words)


def filters_from(
    since: datetime | None,
    until: datetime | None,
    level: str | None,
    source: str | None,
    run_id: str | None,
    q: str | None,
) -> Filters:
    """Filters from a reader's words (the API's query, the panel's form, the logs.search action); Invalid names
    the field that does not fit."""
    try:
        number = int(level) if level and level.isascii() and level.isdigit() else level
        min_level = parse_level(number) if level else None
    except Refused as exc:
        raise Invalid(str(exc), details={"field": "level"}) from None
    for name, value in (("since", since), ("until", until)):
        if value is None:
            continue
        if value.tzinfo is None:
            raise Invalid(f"{name} needs a time zone, e.g. 2026-01-31T12:00:00Z", details={"field": name})
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise Invalid(f"{name} is out of range", details={"field": name}) from None
    return Filters(
        since=since, until=until, min_level=min_level, source=source or None, run_id=run_id or None, text=q or None
    )


def narrowed(filters: Filters, scope: RobotScope | None) -> Filters:
    """`filters` narrowed to the robots a reader whose logs:read is scoped (robot globs, tags) may see: their
    records only, not the orchestrator's or the agents' (which tell of every robot). `scope` is the robots
    service's one answer (`robot_scope`, None: every robot); its globs stand too, for robots since deleted."""
    if scope is None:
        return filters
    return replace(filters, visible=tuple(f"robot:{name}" for name in (*scope.globs, *sorted(scope.names))))
