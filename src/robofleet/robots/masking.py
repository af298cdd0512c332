"""Secret-looking robot env values: masked in everything robofleet shows, and the mask read back as "unchanged".

A client that edits a robot sends back what it was shown; where that is the mask, the stored value stays. A mask
that stands for nothing stored is refused rather than stored as the value. Which names look secret, and the mask,
are the one rule of `settings.masking`: the settings and the robots show the same.
"""

from __future__ import annotations

from collections.abc import Mapping

from robofleet.errors import Invalid
from robofleet.settings.masking import MASK, looks_secret
from robofleet.settings.masking import masked_env as masked

__all__ = ["MASK", "looks_secret", "masked", "unmasked"]


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
