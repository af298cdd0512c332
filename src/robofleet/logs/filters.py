"""What a reader asks of the log: the same filters answered by the store (`store_ops`, `blocks`) and, record by
record, by the live tail (`Filters.matches`), so that a search and a tail of the same filters agree."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from robofleet.logs.globs import glob_pattern
from robofleet.logs.ingest import Row
from robofleet.logs.words import contains_all, words_of


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
