"""Activities by state as a Prometheus metric, counted in the store when scraped (each state a count on the
`ix_activities_state_id` index), so that every replica reports the same numbers.

The domain's hooks: `running(orchestrator)` is its Domain.service (the activity processor is built in, started by the
orchestrator before the domains' services), `ActivityCollector(running)` its Domain.metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from robofleet.activities import store_ops
from robofleet.activities.models import ActivityState
from robofleet.errors import RobofleetError

if TYPE_CHECKING:
    from robofleet.orchestrator import Orchestrator


class ActivitiesRunning:
    """The orchestrator as the domain's hooks see it (the activity processor is its own)."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator

    async def startup(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def running(orchestrator: Orchestrator) -> ActivitiesRunning:
    return ActivitiesRunning(orchestrator)


class ActivityCollector(Collector):
    def __init__(self, running: ActivitiesRunning) -> None:
        self.orchestrator = running.orchestrator

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
