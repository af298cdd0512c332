"""Settings: the typed tree, how it is loaded, how it is shown."""

from robofleet.settings.loader import load_settings
from robofleet.settings.model import Settings

__all__ = ["Settings", "load_settings"]
