"""Activities: registered actions called by name, run one at a time (sync) or concurrently (async)."""

from robofleet.domain import Domain, NavEntry

DOMAIN = Domain(
    name="activities",
    package=__name__,
    tables=("robofleet.activities.models",),
    actions="robofleet.activities.system:register",
    api=("robofleet.activities.api:router",),
    panel=("robofleet.activities.panel:router",),
    templates=True,
    service="robofleet.domain:BuiltIn",
    metrics="robofleet.activities.metrics:ActivityCollector",
    navigation=(NavEntry("console", "Console", "/panel/console", "c", order=70, permission="activities:read"),),
)
