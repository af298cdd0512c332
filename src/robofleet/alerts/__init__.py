"""Alerts: rules that watch the fleet (runs failed or too long, restart policies that gave up, agents offline,
schedule fires missed, queues past their SLA), the alerts they raise (de-duplicated with a cool-down, acknowledged
in an inbox) and their delivery by e-mail and signed webhook, retried with backoff from the database."""

from robofleet.domain import Domain, NavEntry

DOMAIN = Domain(
    name="alerts",
    package=__name__,
    tables=("robofleet.alerts.models",),
    actions="robofleet.alerts.actions:register",
    api=("robofleet.alerts.api:router",),
    panel=("robofleet.alerts.panel:router",),
    templates=True,
    navigation=(NavEntry("alerts", "Alerts", "/panel/alerts", "e", order=45, permission="alerts:read"),),
    service="robofleet.alerts.service:AlertsService",
    metrics="robofleet.alerts.metrics:AlertCollector",
)
