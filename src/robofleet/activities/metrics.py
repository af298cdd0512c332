"""Activities by state as a Prometheus metric, counted in the store when scraped (each state a count on the
`ix_activities_state_id` index), so that every replica reports the same numbers.

The domain's hook: `ActivityCollector` is its Domain.metrics, on `robofleet.domain.BuiltIn` (the activity
processor is built into the orchestrator)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from robofleet.activities import store_ops
from robofleet.activities.models import ActivityState
from robofleet.domain import BuiltIn
from robofleet.errors import RobofleetError

if TYPE_CHECKING:
    from robofleet.orchestrator import Orchestrator


class ActivityCollector(Collector):
    def __init__(self, running: BuiltIn) -> None:
        self.orchestrator: Orchestrator = running.orchestrator

    def collect(self) -> Iterator[Metric]:
        activities = GaugeMetricFamily(
            "robofleet_activities", "Activities by state (finished ones: ever)", labels=["state"]
        )
        counts: dict[str, int] | None
        try:
            with self.orchestrator.store.transaction() as session:
                counts = store_ops.count_by_state(session, [state.value for state in ActivityState])
        except RobofleetError:  # the store is away: no activity metrics this scrape, the others still answer
            counts = None
        for state, count in (counts or {}).items():
            activities.add_metric([state], count)
        yield activities
