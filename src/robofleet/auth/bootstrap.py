"""What `serve` does to access control at start: built-in roles, the first admin, roles and users from config."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from robofleet.auth.audit import record
from robofleet.auth.cache import bump
from robofleet.auth.models import Role, User
from robofleet.auth.passwords import hash_password, is_argon2_hash, random_password, verify_password
from robofleet.auth.permissions import BUILTIN_ROLES
from robofleet.auth.principal import system_principal
from robofleet.auth.roles import check_patterns
from robofleet.auth.users import roles_named
from robofleet.errors import ConfigError, Invalid
from robofleet.settings.model import Settings
from robofleet.store import Store
from robofleet.store.files import private_dir

PASSWORD_FILE = "initial-admin-password"


@dataclass(frozen=True)
class InitialAdmin:
    username: str
    password: str
    password_file: Path


def ensure_builtin_roles(store: Store) -> None:
    """Create the built-in roles, and bring their permissions up to this version's definition."""
    with store.transaction() as db:
        existing = {role.name: role for role in db.scalars(select(Role).where(Role.name.in_(BUILTIN_ROLES)))}
        for name, (description, permissions) in BUILTIN_ROLES.items():
            role = existing.get(name)
            if role is None:
                db.add(Role(name=name, description=description, permissions=permissions, builtin=True))
            else:
                role.description, role.permissions, role.builtin = description, permissions, True
        bump(db)


def ensure_initial_admin(store: Store, settings: Settings) -> InitialAdmin | None:
    """On a store without users, create the admin with a random password and write it to a 0600 file. Once that
    password has been changed, the file is removed at the next start: it no longer opens anything, and a stale
    secret on disk only invites a guess that the current one is near it."""
    path = settings.store.data_dir / PASSWORD_FILE
    with store.transaction() as db:
        if db.scalar(select(func.count(User.id))):
            admin = db.scalar(select(User).where(User.username == settings.auth.initial_admin))
            stale = path.exists() and (
                admin is None or not verify_password(admin.password_hash, path.read_text().strip())
            )
            if stale:
                path.unlink(missing_ok=True)
            return None
        password = random_password()
        username = settings.auth.initial_admin
        db.add(User(username=username, password_hash=hash_password(password), roles=roles_named(db, ["admin"])))
        record(db, system_principal(), "user.create", username, "ok", {"roles": ["admin"], "initial": True})
        private_dir(path.parent)
        # Written inside the transaction: if the file cannot be written, the admin is not created either.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(password + "\n")
        os.chmod(path, 0o600)
        return InitialAdmin(username, password, path)


def apply_config(store: Store, settings: Settings) -> None:
    """Roles and users declared in the settings file, applied idempotently and marked from_config."""
    system = system_principal("config")
    with store.transaction() as db:
        for declared in settings.roles:
            if declared.name in BUILTIN_ROLES:
                raise ConfigError(f"roles: {declared.name!r} is a built-in role and cannot be redeclared")
            try:
                check_patterns(declared.permissions)
            except Invalid as exc:
                raise ConfigError(f"roles.{declared.name}: {exc.message}") from None
            role = db.scalar(select(Role).where(Role.name == declared.name)) or Role(name=declared.name)
            fields = declared.model_dump()
            changed = any(getattr(role, key, None) != value for key, value in fields.items())
            for key, value in fields.items():
                setattr(role, key, value)
            role.from_config = True
            if role.id is None or changed:
                db.add(role)
                record(db, system, "role.apply", declared.name, "ok")
        db.flush()
        for declared_user in settings.users:
            user = db.scalar(select(User).where(User.username == declared_user.username))
            if user is None:
                user = User(username=declared_user.username)
                db.add(user)
            try:
                user.roles = roles_named(db, declared_user.roles)
            except Invalid as exc:
                raise ConfigError(f"users.{declared_user.username}: {exc.message}") from None
            user.disabled = declared_user.disabled
            user.from_config = True
            if declared_user.password_hash is not None:
                value = declared_user.password_hash.get_secret_value()
                if not is_argon2_hash(value):
                    raise ConfigError(f"users.{declared_user.username}.password_hash: not an argon2 hash")
                user.password_hash = value
            record(db, system, "user.apply", declared_user.username, "ok")
        bump(db)
