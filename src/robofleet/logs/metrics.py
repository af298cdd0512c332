"""The log store's ingest for /metrics: records stored by this process since it started, by source kind
(orchestrator, agent, robot) and level, as a counter (a scraper's `rate()` of it is the ingest rate). Counted in
memory as the writer stores them: each replica counts what it wrote, and a sum over replicas is the whole.

The domain's hooks: `running(orchestrator)` is its Domain.service (the log service itself is built in, before the
domains' services), `IngestCollector(running)` its Domain.metrics."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from robofleet.errors import StoreUnavailable
from robofleet.logs.ingest import Row
from robofleet.logs.models import LEVEL_NAMES

if TYPE_CHECKING:
    from robofleet.orchestrator import Orchestrator


class IngestCounts:
    """Records stored, by (source kind, level name). Thread-safe: the writer's lanes add, a scrape reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def add(self, rows: Sequence[Row]) -> None:
        batch = Counter((row.source.partition(":")[0], row.level) for row in rows)
        with self._lock:
            for (kind, level), count in batch.items():
                self._counts[(kind, LEVEL_NAMES.get(level) or str(level))] += count

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)


class LogsRunning:
    """The log service as the domain hooks see it (its counts): started and stopped by the orchestrator itself."""

    def __init__(self, ingested: IngestCounts) -> None:
        self.ingested = ingested

    async def startup(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def running(orchestrator: Orchestrator) -> LogsRunning:
    if orchestrator.logs is None:
        raise StoreUnavailable("the log store is not started")
    return LogsRunning(orchestrator.logs.ingested)


class IngestCollector(Collector):
    def __init__(self, running: LogsRunning) -> None:
        self.counts = running.ingested

    def collect(self) -> Iterator[Metric]:
        ingested = CounterMetricFamily(
            "robofleet_log_records_ingested",
            "Log records stored by this process, by source kind and level",
            labels=["source_kind", "level"],
        )
        for (kind, level), count in sorted(self.counts.snapshot().items()):
            ingested.add_metric([kind, level], count)
        yield ingested
