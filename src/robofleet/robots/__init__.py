"""Robots and runs: definitions, and the lifecycle of each execution on an agent."""

from robofleet.domain import Domain, NavEntry

DOMAIN = Domain(
    name="robots",
    package=__name__,
    tables=("robofleet.robots.models",),
    actions="robofleet.robots.actions:register",
    api=("robofleet.robots.api:router",),
    panel=(
        "robofleet.robots.panel:router",
        "robofleet.robots.panel_dashboard:router",
        "robofleet.robots.panel_runs:router",
    ),
    templates=True,
    service="robofleet.robots.metrics:running",
    metrics="robofleet.robots.metrics:RunCollector",
    navigation=(
        NavEntry("dashboard", "Dashboard", "/panel/dashboard", "h", order=5, permission="robots:read"),
        NavEntry("fleet", "Fleet", "/panel/fleet", "f", order=10, permission="robots:read"),
        NavEntry("robots", "Robots", "/panel/robots", "r", order=20, permission="robots:read"),
        NavEntry("runs", "Runs", "/panel/runs", "u", order=25, permission="robots:read"),
    ),
)
