"""Settings: the typed tree, how it is loaded, how it is shown."""

from robofleet.domain import Domain, NavEntry
from robofleet.settings.loader import load_settings
from robofleet.settings.model import Settings

__all__ = ["Settings", "load_settings"]

DOMAIN = Domain(
    name="settings",
    package=__name__,
    actions="robofleet.settings.actions:register",
    api=("robofleet.settings.api:router",),
    navigation=(NavEntry("settings", "Settings", "/panel/settings", "g", order=90, permission="settings:read"),),
)
