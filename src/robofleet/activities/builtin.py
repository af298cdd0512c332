"""The registry every orchestrator starts with: each domain's operations, then the deployment's modules."""

from __future__ import annotations

from robofleet.activities import system
from robofleet.activities.registry import Registry, load_modules
from robofleet.auth import actions as auth_actions
from robofleet.settings import actions as settings_actions
from robofleet.settings.model import Settings

DOMAIN_REGISTRARS = (system.register, auth_actions.register, settings_actions.register)


def build_registry(settings: Settings) -> Registry:
    """Raises ConfigError when a module of `activities.modules` cannot be imported or registered."""
    registry = Registry()
    for register in DOMAIN_REGISTRARS:
        register(registry)
    load_modules(registry, settings.activities.modules)
    return registry
