"""What a domain package tells the rest of robofleet about itself: one record, named in `robofleet/domains.py`.

The record holds references ("module:attribute"), not objects: the store's metadata loads only the tables, the
action registry only the registrars, the web app the routers. A core module never imports a domain to learn this.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Protocol


class Service(Protocol):
    """A domain's long-lived service as the orchestrator runs it: started once the store is ready, stopped in
    reverse order of the starts. `stop()` cancels every task it started and leaves its stored state as it is."""

    async def startup(self) -> None: ...

    async def stop(self) -> None: ...


class BuiltIn:
    """The Service of a domain whose own service is built into the orchestrator and started by it (the activity
    processor, the agent hub): nothing to start or stop, and the orchestrator for the domain's other hooks (a
    metrics collector). Its factory is `robofleet.domain:BuiltIn`."""

    def __init__(self, orchestrator: Any) -> None:
        self.orchestrator = orchestrator

    async def startup(self) -> None:
        return None

    async def stop(self) -> None:
        return None


@dataclass(frozen=True)
class NavEntry:
    """A link of the panel's navigation: its place among the others (`order`), its `g <shortcut>` key, and the
    `permission` the page at `href` requires (the one its route declares; None: every signed-in user may open
    it). The panel shows a user only the entries whose permission they hold."""

    key: str
    title: str
    href: str
    shortcut: str
    order: int
    ready: bool = True
    permission: str | None = None


@dataclass(frozen=True)
class Domain:
    name: str
    package: str
    tables: tuple[str, ...] = ()  # modules that declare its tables
    actions: str | None = None  # "module:function" that registers its operations as activities
    api: tuple[str, ...] = ()  # "module:attribute" of each API router, busiest first: matched before any panel route
    panel: tuple[str, ...] = ()  # "module:attribute" of each panel router
    templates: bool = False  # the package has a templates/ folder for the panel
    navigation: tuple[NavEntry, ...] = ()
    # "module:factory": factory(orchestrator) -> Service. Built and started after the built-in services (store,
    # logs, agents, robots) and before the activity processor, so that pending activities find it running.
    service: str | None = None
    # "module:factory": factory(service) -> a Prometheus collector, served by /metrics while the service runs.
    metrics: str | None = None


def load(reference: str) -> Any:
    """The object a "module:attribute" reference names; ImportError or AttributeError when there is none."""
    module, _, attribute = reference.partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, attribute) if attribute else loaded
