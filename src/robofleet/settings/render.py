"""The effective settings as TOML or JSON, with every secret masked."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import tomli_w
from sqlalchemy.engine import make_url

from robofleet.settings.masking import MASK, masked_env
from robofleet.settings.model import Settings
from robofleet.settings.provenance import annotated


def masked_tree(settings: Settings) -> dict[str, Any]:
    """The settings as plain data for every renderer (API, panel, action, CLI): the passwords of the store URL and
    of the server's and client's URLs, the client token, users' password hashes, rdp sessions' passwords and robots'
    secret-looking env values replaced by the mask."""
    tree = settings.model_dump(mode="json", exclude_none=True)
    url = settings.store.url
    if url:
        tree["store"]["url"] = make_url(url).render_as_string(hide_password=True)
    for section, key in (("server", "public_url"), ("client", "url")):
        if tree.get(section, {}).get(key):
            tree[section][key] = without_password(tree[section][key])
    if tree.get("client", {}).get("token"):
        tree["client"]["token"] = MASK
    for user in tree.get("users", []):
        if user.get("password_hash"):
            user["password_hash"] = MASK
    for robot in tree.get("robots", []):
        robot["env"] = masked_env(robot.get("env", {}))
    smtp = tree.get("alerting", {}).get("smtp", {})
    if smtp.get("password"):
        smtp["password"] = MASK
    for channel in tree.get("alert_channels", []):
        if channel.get("secret"):
            channel["secret"] = MASK
    for session in tree.get("sessions", {}).get("declared", []):
        if session.get("password"):
            session["password"] = MASK
    return tree


def without_password(url: str) -> str:
    """`url` with the password of its user info shown as *** (as SQLAlchemy shows the store URL's)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user_info, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user_info.partition(':')[0]}:***@{host}"))


def as_toml(settings: Settings, *, sources: bool = True) -> str:
    """The masked tree as TOML, as `robofleet settings show` and the Settings page print it: with `sources`, the
    file read (or none) on top and each value's source (variable, file and line, default) in a comment after it."""
    tree = masked_tree(settings)
    text = tomli_w.dumps(tree)
    if not sources:
        return text
    lists = {name for name, value in tree.items() if isinstance(value, list)}
    return annotated(text, lists, settings._origin)
