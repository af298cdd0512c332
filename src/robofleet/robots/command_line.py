"""What a robot runs, and who may define it. Pure functions of a stored definition and a change.

A robot's command line (its argv, working directory, agent, env and graphical session) decides which code runs,
where, and as which OS user: defining it is code execution on that agent, the power `agents:admin` already names
(remote shell and files on agents). So setting or changing it takes `agents:admin` besides `robots:write`; the rest of
a definition (description, tags, limits, timeouts, restart policy, leftovers) is `robots:write` alone, and a role
narrowed to some robots never reaches code execution through them.

The secrets stored with a command line are not handed to another one: a change of where or what runs that would
keep a stored secret env value (sent back as the mask, or not sent at all) is refused until the secret is typed
again, so a new command line cannot print the secrets of the old one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from robofleet.auth.principal import Principal
from robofleet.errors import Forbidden, Invalid
from robofleet.robots.masking import MASK, looks_secret

DEFINE_PERMISSION = "agents:admin"
# The fields that decide what code runs, where and as whom.
COMMAND_FIELDS = ("agent", "argv", "cwd", "env", "session")
# The ones that move a definition to other code or another place: the stored secrets do not follow them.
RELOCATING_FIELDS = ("agent", "argv", "cwd", "session")


def command_changes(stored: Mapping[str, Any], changes: Mapping[str, Any]) -> list[str]:
    """The command-line fields that `changes` (env already unmasked) sets to a value other than `stored`'s, in the
    order of COMMAND_FIELDS. A client that sends back what it was shown changes nothing."""
    return [key for key in COMMAND_FIELDS if key in changes and changes[key] != stored.get(key)]


def require_define(principal: Principal, robot: str, changed: list[str], *, creating: bool = False) -> None:
    """Forbidden (403, naming agents:admin) unless `principal` may define command lines, when `changed` (the
    command-line fields a create sets or an update changes) is not empty."""
    if not changed or principal.can(DEFINE_PERMISSION):
        return
    what = f"creating robot {robot!r}" if creating else f"changing the {', '.join(changed)} of robot {robot!r}"
    raise Forbidden(
        f"{principal.username} lacks the permission {DEFINE_PERMISSION!r}: {what} defines the code it runs and "
        f"where, which takes {DEFINE_PERMISSION!r} besides 'robots:write' (robots:write alone changes the rest: "
        "description, tags, limits, timeouts, restart policy, leftovers)",
        details={"permission": DEFINE_PERMISSION, "fields": changed},
    )


def refuse_carried_secrets(
    stored_env: Mapping[str, str], submitted_env: Mapping[str, str] | None, moved: list[str]
) -> None:
    """Invalid (422, code `secret_not_kept`) when a change of `moved` (relocating fields) would keep a stored secret
    env value: one sent back as the mask, or every stored one when the env is not sent at all."""
    secrets = [key for key, value in stored_env.items() if looks_secret(key, value) and value]
    carried = secrets if submitted_env is None else [key for key in secrets if submitted_env.get(key) == MASK]
    if not carried:
        return
    names = ", ".join(carried)
    raise Invalid(
        f"env {names}: a change of the robot's {', '.join(moved)} does not keep its stored secrets; send "
        f"{names} again with {'its' if len(carried) == 1 else 'their'} value (not {MASK}), or leave "
        f"{'it' if len(carried) == 1 else 'them'} out of the env to remove {'it' if len(carried) == 1 else 'them'}",
        details={"field": "env", "keys": carried, "moved": moved},
        code="secret_not_kept",
    )
