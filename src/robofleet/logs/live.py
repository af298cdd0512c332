"""A stored batch as live viewers see it: each record rendered to its SSE event once, and what the batch holds
(sources, run ids, top level, time span), so that a viewer whose filter cannot match any of it skips the batch
whole. A viewer then costs the event loop a few set lookups per batch, and one filter check per record only for
batches that may hold its records: a hundred viewers no longer cost ingest a hundred filter checks per record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson

from robofleet.logs.filters import Filters
from robofleet.logs.globs import glob_pattern, is_glob
from robofleet.logs.ingest import Row
from robofleet.logs.records import RecordOut, records_out

UNFILTERED = Filters()
# The stream's text is made here, in the logs domain: a record's event is rendered once, on a writer lane, and
# the tail sends it as is to every viewer.
HEARTBEAT = ": heartbeat\n\n"


def log_event(item: RecordOut) -> str:
    """The SSE `log` event of a record as the API shows it (orjson writes no newline: the data is one line)."""
    return f"event: log\nid: {item['id']}\ndata: {orjson.dumps(item).decode()}\n\n"


def ready_event(last_id: int) -> str:
    """The SSE `ready` event: the backlog is sent, live records follow; `last_id` is where they start."""
    return f'event: ready\ndata: {{"last_id":{last_id}}}\n\n'


def _events(ids: list[int], rows: list[Row]) -> list[str]:
    return [log_event(item) for item in records_out(ids, rows)]


@dataclass(frozen=True, slots=True)
class Published:
    ids: list[int]  # ascending
    rows: list[Row]
    events: list[str]
    everything: str  # all the events, for viewers without filters
    sources: frozenset[str]
    run_ids: frozenset[str | None]
    top_level: int
    earliest: datetime
    latest: datetime

    @classmethod
    def of(cls, ids: list[int], rows: list[Row]) -> Published:
        events = _events(ids, rows)
        times = [row.time for row in rows]
        return cls(
            ids,
            rows,
            events,
            "".join(events),
            frozenset(row.source for row in rows),
            frozenset(row.run_id for row in rows),
            max(row.level for row in rows),
            min(times),
            max(times),
        )

    @property
    def last_id(self) -> int:
        return self.ids[-1]

    def events_for(self, filters: Filters, after: int) -> str:
        """The events of the records past `after` that match `filters` ("" when none does)."""
        if self.last_id <= after or not self._may_hold(filters):
            return ""
        if filters == UNFILTERED and self.ids[0] > after:
            return self.everything
        return "".join(
            event
            for new_id, row, event in zip(self.ids, self.rows, self.events, strict=True)
            if new_id > after and filters.matches(row)
        )

    def _may_hold(self, filters: Filters) -> bool:
        if filters.min_level is not None and self.top_level < filters.min_level:
            return False
        if filters.run_id is not None and filters.run_id not in self.run_ids:
            return False
        if filters.source is not None:
            if is_glob(filters.source):
                pattern = glob_pattern(filters.source)
                if not any(pattern.match(source) for source in self.sources):
                    return False
            elif filters.source not in self.sources:
                return False
        if filters.visible is not None and not any(
            glob_pattern(glob).match(source) for glob in filters.visible for source in self.sources
        ):
            return False
        if filters.since is not None and self.latest < filters.since:
            return False
        return filters.until is None or self.earliest < filters.until
