"""Logs: one store for the orchestrator's, the agents' and the robots' lines; search, live tail, retention."""

from robofleet.domain import Domain, NavEntry

DOMAIN = Domain(
    name="logs",
    package=__name__,
    actions="robofleet.logs.actions:register",
    tables=("robofleet.logs.models",),
    api=("robofleet.logs.api:router",),
    panel=("robofleet.logs.panel:router",),
    templates=True,
    service="robofleet.logs.metrics:running",
    metrics="robofleet.logs.metrics:IngestCollector",
    navigation=(NavEntry("logs", "Logs", "/panel/logs", "l", order=60, permission="logs:read"),),
)
