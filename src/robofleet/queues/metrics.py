"""The queues' figures as Prometheus metrics, read from the store when scraped: the backlog by state, the oldest
waiting item's age and the items past their SLA, per queue. A collector, not counters kept in this process, so
that every replica of a shared PostgreSQL reports the same numbers.

`QueueCollector(service)` is registered on the registry `/metrics` serves (prometheus_client's `Collector`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from robofleet.auth.principal import system_principal
from robofleet.errors import RobofleetError
from robofleet.queues.states import UNFINISHED

if TYPE_CHECKING:
    from robofleet.queues.service import QueuesService


class QueueCollector(Collector):
    def __init__(self, service: QueuesService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        backlog = GaugeMetricFamily("robofleet_queue_items", "Unfinished items by state", labels=["queue", "state"])
        oldest = GaugeMetricFamily(
            "robofleet_queue_oldest_waiting_seconds", "Age of the oldest new or retry item", labels=["queue"]
        )
        late = GaugeMetricFamily("robofleet_queue_items_past_sla", "Unfinished items past the SLA", labels=["queue"])
        try:
            figures = self.service.figures(system_principal("metrics"))
        except RobofleetError:  # the store is away: no queue metrics this scrape, the others still answer
            figures = []
        for stats in figures:
            for state in UNFINISHED:
                backlog.add_metric([stats.queue, state.value], stats.counts[state])
            oldest.add_metric([stats.queue], stats.oldest_waiting_seconds or 0.0)
            late.add_metric([stats.queue], stats.past_sla)
        yield backlog
        yield oldest
        yield late
