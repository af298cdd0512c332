"""Roles and users declared in the settings file are applied at start, idempotently, marked from config."""

from __future__ import annotations

import pytest

from robofleet.auth.passwords import hash_password
from robofleet.auth.principal import cli_principal
from robofleet.auth.roles import get_role
from robofleet.auth.sessions import login
from robofleet.auth.users import get_user
from robofleet.errors import ConfigError
from robofleet.orchestrator import prepare_store
from robofleet.settings.model import Settings
from robofleet.store import Store


def declared(settings: Settings, **extra: object) -> Settings:
    data = settings.model_dump()
    data.update(extra)
    return Settings(**data)


def test_declared_roles_and_users_are_applied_twice_the_same(settings: Settings, store: Store) -> None:
    configured = declared(
        settings,
        roles=[{"name": "night-shift", "permissions": ["robots:read", "robots:start"], "robot_tags": ["night"]}],
        users=[{"username": "nightbot", "roles": ["night-shift"], "password_hash": hash_password("night-password")}],
    )
    prepare_store(store, configured)
    prepare_store(store, configured)
    role = get_role(store, cli_principal(), "night-shift")
    assert role.from_config and role.robot_tags == ["night"]
    user = get_user(store, cli_principal(), "nightbot")
    assert user.from_config and user.roles == ["night-shift"]
    assert login(store, configured.auth, "nightbot", "night-password", "127.0.0.1").principal.username == "nightbot"


def test_bad_declarations_stop_the_start(settings: Settings, store: Store) -> None:
    with pytest.raises(ConfigError, match="robots:fly"):
        prepare_store(store, declared(settings, roles=[{"name": "x", "permissions": ["robots:fly"]}]))
    with pytest.raises(ConfigError, match="built-in"):
        prepare_store(store, declared(settings, roles=[{"name": "admin"}]))
    with pytest.raises(ConfigError, match="unknown role"):
        prepare_store(store, declared(settings, users=[{"username": "u", "roles": ["nope"]}]))
    with pytest.raises(ConfigError, match="argon2"):
        prepare_store(store, declared(settings, users=[{"username": "u", "password_hash": "plaintext"}]))
