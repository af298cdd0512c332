"""Schedules: what fires when (triggers, timezones, calendars), the engine that fires it through the activity
processor, and every fire recorded."""

from robofleet.domain import Domain

DOMAIN = Domain(
    name="schedules",
    package=__name__,
    tables=("robofleet.schedules.models",),
    actions="robofleet.schedules.actions:register",
    api=("robofleet.schedules.api:router",),
    service="robofleet.schedules.service:SchedulesService",
)
