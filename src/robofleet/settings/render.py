"""The effective settings as TOML or JSON, with every secret masked."""

from __future__ import annotations

from typing import Any

import tomli_w
from sqlalchemy.engine import make_url

from robofleet.settings.masking import MASK, masked_env
from robofleet.settings.model import Settings


def masked_tree(settings: Settings) -> dict[str, Any]:
    """The settings as plain data for every renderer (API, panel, action, CLI): the store URL's password, the
    client token, users' password hashes and robots' secret-looking env values replaced by the mask."""
    tree = settings.model_dump(mode="json", exclude_none=True)
    url = settings.store.url
    if url:
        tree["store"]["url"] = make_url(url).render_as_string(hide_password=True)
    if tree.get("client", {}).get("token"):
        tree["client"]["token"] = MASK
    for user in tree.get("users", []):
        if user.get("password_hash"):
            user["password_hash"] = MASK
    for robot in tree.get("robots", []):
        robot["env"] = masked_env(robot.get("env", {}))
    return tree


def as_toml(settings: Settings) -> str:
    return tomli_w.dumps(masked_tree(settings))
