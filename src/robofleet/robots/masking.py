"""Secret-looking robot env values: masked in everything robofleet shows, and the mask read back as "unchanged".

A client that edits a robot sends back what it was shown; where that is the mask, the stored value stays. A mask
that stands for nothing stored is refused rather than stored as the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from robofleet.errors import Invalid

SECRET_KEY = re.compile(r"pass|secret|token|key|credential", re.IGNORECASE)
MASK = "********"


def masked(env: Mapping[str, str]) -> dict[str, str]:
    """`env` as robofleet shows it: the values of secret-looking names replaced by the mask."""
    return {key: MASK if SECRET_KEY.search(key) else value for key, value in env.items()}


def unmasked(submitted: Mapping[str, str], stored: Mapping[str, str]) -> dict[str, str]:
    """The env to store for `submitted`: a value still showing the mask keeps the stored one. Invalid names every
    key whose mask stands for no stored value (a new name, or one whose value is shown in the clear)."""
    env = dict(submitted)
    unknown = []
    for key, value in submitted.items():
        if value != MASK:
            continue
        if key in stored and masked({key: stored[key]})[key] == MASK:
            env[key] = stored[key]
        else:
            unknown.append(key)
    if unknown:
        names = ", ".join(unknown)
        raise Invalid(
            f"env {names}: {MASK} is the mask robofleet shows for a stored secret, and {names} "
            f"{'has' if len(unknown) == 1 else 'have'} none to keep; send the value itself",
            details={"field": "env", "keys": unknown},
            code="masked_value",
        )
    return env
