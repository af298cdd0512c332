"""The one rule of what robofleet keeps out of sight: env names that look secret, and the mask shown instead.

Core, so that everything that renders settings or robots (the settings tree, the robots domain) masks alike."""

from __future__ import annotations

import re
from collections.abc import Mapping

SECRET_NAME = re.compile(r"pass|secret|token|key|credential", re.IGNORECASE)
MASK = "********"


def looks_secret(name: str) -> bool:
    """Whether the value of a variable named `name` is shown as the mask (PASSWORD, API_TOKEN, SSH_KEY…)."""
    return SECRET_NAME.search(name) is not None


def masked_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` as robofleet shows it: the values of secret-looking names replaced by the mask."""
    return {name: MASK if looks_secret(name) else value for name, value in env.items()}
