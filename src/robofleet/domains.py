"""The one list of robofleet's domains. The store's schema, the action registry, the web app's routes, the panel's
templates and navigation are all read from it: a new domain is its own package and one line here."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter
from sqlalchemy import MetaData

from robofleet import activities, agents, alerts, auth, logs, queues, robots, schedules, sessions, settings
from robofleet.domain import Domain, NavEntry, load

# In the order routes are matched (the busiest first) and actions are listed.
DOMAINS: tuple[Domain, ...] = (
    activities.DOMAIN,
    logs.DOMAIN,
    robots.DOMAIN,
    schedules.DOMAIN,
    queues.DOMAIN,
    alerts.DOMAIN,
    sessions.DOMAIN,
    agents.DOMAIN,
    auth.DOMAIN,
    settings.DOMAIN,
)


def metadata(domains: Sequence[Domain] = DOMAINS) -> MetaData:
    """Every domain's tables, as Alembic and the schema tests see them."""
    from robofleet.store.base import Base

    for domain in domains:
        for module in domain.tables:
            load(module)
    return Base.metadata


def action_registrars(domains: Sequence[Domain] = DOMAINS) -> list[str]:
    return [domain.actions for domain in domains if domain.actions]


def routers(domains: Sequence[Domain] = DOMAINS) -> list[APIRouter]:
    """API routers of every domain first, then the panel's: no panel path shadows an API path."""
    api = [load(reference) for domain in domains for reference in domain.api]
    panel = [load(reference) for domain in domains for reference in domain.panel]
    return [*api, *panel]


def template_packages() -> list[str]:
    return [domain.package for domain in DOMAINS if domain.templates]


def navigation(planned: tuple[NavEntry, ...] = ()) -> list[NavEntry]:
    """The panel's links in their order; a `planned` entry stands until a domain brings the page of that key."""
    built = {entry.key: entry for domain in DOMAINS for entry in domain.navigation}
    waiting = [entry for entry in planned if entry.key not in built]
    return sorted([*built.values(), *waiting], key=lambda entry: entry.order)
