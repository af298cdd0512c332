"""Graphical sessions: named X displays on agents (an Xvfb the agent owns, or an existing display it attaches to),
kept by the agent's watchdog and synced from here; their screens and input through the agent connection, their
history, and the evidence kept of failed runs (process tree, output, screenshot, recording)."""

from robofleet.domain import Domain, NavEntry

DOMAIN = Domain(
    name="sessions",
    package=__name__,
    tables=("robofleet.sessions.models",),
    actions="robofleet.sessions.actions:register",
    api=("robofleet.sessions.api:router",),
    panel=("robofleet.sessions.panel:router",),
    templates=True,
    navigation=(NavEntry("sessions", "Sessions", "/panel/sessions", "d", order=50, permission="sessions:read"),),
    service="robofleet.sessions.service:SessionsService",
)
