"""Alert deliveries as Prometheus metrics, read from the delivery log when scraped (so every replica of a shared
PostgreSQL reports the same numbers): attempts by channel, kind and outcome. Retention deletes old alerts with
their log, so the totals may go down after `alerting.retention_days`; `rate()` treats that as a reset."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from robofleet.auth.principal import system_principal
from robofleet.errors import RobofleetError

if TYPE_CHECKING:
    from robofleet.alerts.service import AlertsService


class AlertCollector(Collector):
    def __init__(self, service: AlertsService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        deliveries = CounterMetricFamily(
            "robofleet_alert_deliveries",
            "Alert delivery attempts by channel, channel kind and outcome (delivered, error)",
            labels=["channel", "kind", "outcome"],
        )
        unacknowledged = GaugeMetricFamily("robofleet_alerts_unacknowledged", "Alerts not acknowledged yet")
        try:
            counts = self.service.delivery_counts()
            unseen = self.service.open_count(system_principal("metrics"))
        except RobofleetError:  # the store is away: no alert metrics this scrape, the others still answer
            return
        for channel, kind, outcome, count in counts:
            deliveries.add_metric([channel, kind, outcome], count)
        unacknowledged.add_metric([], unseen)
        yield deliveries
        yield unacknowledged
