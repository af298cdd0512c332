"""Schedules: what fires when (triggers, timezones, calendars), the engine that fires it through the activity
processor, and every fire recorded."""

from robofleet.domain import Domain, NavEntry

DOMAIN = Domain(
    name="schedules",
    package=__name__,
    tables=("robofleet.schedules.models",),
    actions="robofleet.schedules.actions:register",
    api=("robofleet.schedules.api:router",),
    panel=("robofleet.schedules.panel:router",),
    templates=True,
    navigation=(NavEntry("schedules", "Schedules", "/panel/schedules", "s", order=30, permission="schedules:read"),),
    service="robofleet.schedules.service:SchedulesService",
)
