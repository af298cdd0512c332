"""The runs as Prometheus metrics: every robot's runs by state, counted in the store when scraped (the same numbers
on every replica, also after a restart), and how long runs ran as a histogram per robot, observed as this process
records their ends (Prometheus' way for a histogram: each replica counts the ends it recorded, a sum over replicas
is the whole, and it starts again empty when the process does), so that a scrape never reads every run.

The domain's hooks: `running(orchestrator)` is its Domain.service (the robots service is built in, started by the
orchestrator before the domains' services; this follows its run changes on the event hub), `RunCollector(running)`
its Domain.metrics."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from robofleet.errors import RobofleetError
from robofleet.events import CLOSING
from robofleet.robots.service import TOPIC
from robofleet.robots.states import ENDED
from robofleet.runtime import Tasks

if TYPE_CHECKING:
    from robofleet.orchestrator import Orchestrator

# Buckets of the duration histogram (seconds): a robot's run takes seconds to hours.
DURATION_BUCKETS: tuple[float, ...] = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
REMEMBERED_ENDS = 10_000  # a run whose end was counted is not counted again (a lost run that ends for real later)


class RunDurations:
    """Ended runs' durations by robot, bucketed as DURATION_BUCKETS. Thread-safe: the event loop adds, a scrape
    reads (in a worker thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._robots: dict[str, tuple[list[int], list[float]]] = {}  # robot: (count per bucket, [runs, seconds])
        self._counted: OrderedDict[int, None] = OrderedDict()

    def ended(self, run: dict[str, Any]) -> None:
        """A run's change as the robots service publishes it: counted once, when it first ends having started."""
        if run.get("state") not in ENDED or not run.get("started_at") or not run.get("ended_at"):
            return
        seconds = (datetime.fromisoformat(run["ended_at"]) - datetime.fromisoformat(run["started_at"])).total_seconds()
        with self._lock:
            if run["id"] in self._counted:
                return
            self._counted[run["id"]] = None
            while len(self._counted) > REMEMBERED_ENDS:
                self._counted.popitem(last=False)
            counts, totals = self._robots.setdefault(str(run["robot"]), ([0] * len(DURATION_BUCKETS), [0.0, 0.0]))
            for index, bound in enumerate(DURATION_BUCKETS):
                if seconds <= bound:
                    counts[index] += 1
            totals[0] += 1
            totals[1] += max(seconds, 0.0)

    def snapshot(self) -> dict[str, tuple[list[int], int, float]]:
        """robot: (runs at or under each bound, runs, seconds in all)."""
        with self._lock:
            robots = list(self._robots.items())
            return {robot: (list(counts), int(totals[0]), totals[1]) for robot, (counts, totals) in robots}


class RobotsRunning:
    """The orchestrator as the domain's hooks see it (the robots service is its own), following the run changes."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator
        self.durations = RunDurations()
        self.tasks = Tasks()

    async def startup(self) -> None:
        self.tasks.spawn(self._follow(), name="run durations")

    async def stop(self) -> None:
        await self.tasks.stop()

    async def _follow(self) -> None:
        with self.orchestrator.events.subscribe(TOPIC) as subscriber:
            while True:
                got = await subscriber.get()
                if got is CLOSING:
                    return
                topic, run = got
                if topic == TOPIC:
                    self.durations.ended(run)


def running(orchestrator: Orchestrator) -> RobotsRunning:
    return RobotsRunning(orchestrator)


class RunCollector(Collector):
    def __init__(self, running: RobotsRunning) -> None:
        self.orchestrator = running.orchestrator
        self.durations = running.durations

    def collect(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily(
            "robofleet_runs", "Runs by robot and state (ended ones: ever)", labels=["robot", "state"]
        )
        durations = HistogramMetricFamily(
            "robofleet_run_duration_seconds",
            "How long runs ran, start to end, as this process recorded their ends",
            labels=["robot"],
        )
        robots = self.orchestrator.robots
        by_state: list[tuple[str, str, int]] = []
        try:
            if robots is not None:
                by_state = robots.run_counts()
        except RobofleetError:  # the store is away: no run counts this scrape, the others still answer
            pass
        for robot, state, count in by_state:
            runs.add_metric([robot, state], count)
        for robot, (cumulative, ended, seconds) in sorted(self.durations.snapshot().items()):
            buckets = [(f"{bound:g}", float(count)) for bound, count in zip(DURATION_BUCKETS, cumulative, strict=True)]
            durations.add_metric([robot], [*buckets, ("+Inf", float(ended))], seconds)
        yield runs
        yield durations
