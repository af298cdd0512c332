"""The agents as Prometheus metrics: how many are connected to this replica, and each known agent's state (1
online, 0 offline: agents/roster.py lists those that connected once and left). Read when scraped.

The domain's hook: `AgentCollector` is its Domain.metrics, on `robofleet.domain.BuiltIn` (the agent hub is built
into the orchestrator)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from robofleet.agents import roster
from robofleet.domain import BuiltIn
from robofleet.errors import RobofleetError

if TYPE_CHECKING:
    from robofleet.orchestrator import Orchestrator


class AgentCollector(Collector):
    def __init__(self, running: BuiltIn) -> None:
        self.orchestrator: Orchestrator = running.orchestrator

    def collect(self) -> Iterator[Metric]:
        connected = GaugeMetricFamily("robofleet_agents_connected", "Agents connected to this replica")
        online = GaugeMetricFamily(
            "robofleet_agent_online", "1 while the agent is connected, 0 offline", labels=["agent"]
        )
        hub = self.orchestrator.hub
        live = len(list(hub.agents)) if hub is not None else 0  # one C call: the event loop changes them meanwhile
        connected.add_metric([], live)
        try:
            agents = roster.overview(self.orchestrator.store, hub) if hub is not None else []
        except RobofleetError:  # the store is away: the connected count still answers
            agents = []
        for agent in agents:
            online.add_metric([agent["name"]], 1 if agent["online"] else 0)
        yield connected
        yield online
