"""The one rule of what robofleet keeps out of sight: env names that look secret, and the mask shown instead.

Core, so that everything that renders settings or robots (the settings tree, the robots domain) masks alike."""

from __future__ import annotations

import re
from collections.abc import Mapping

# Names: PASSWORD, API_TOKEN, SSH_KEY, MYSQL_PWD, SMTP_AUTH, ORACLE_DSN... (XAUTHORITY is a path a graphical robot
# needs, not a secret).
SECRET_NAME = re.compile(r"pass|secret|token|key|credential|pwd|dsn|(?<!x)auth", re.IGNORECASE)
# Values: a URL with a password in it (postgresql://user:password@host/db), whatever the variable's name.
URL_PASSWORD = re.compile(r"://[^/\s:@]*:[^/\s@]+@")
MASK = "********"


def looks_secret(name: str, value: str = "") -> bool:
    """Whether the value of a variable named `name` is shown as the mask: by its name (see SECRET_NAME), or by the
    value itself when it is a URL holding a password."""
    return SECRET_NAME.search(name) is not None or URL_PASSWORD.search(value) is not None


def masked_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` as robofleet shows it: the values of secret-looking names replaced by the mask."""
    return {name: MASK if looks_secret(name, value) else value for name, value in env.items()}
