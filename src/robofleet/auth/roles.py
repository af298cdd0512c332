"""Role operations: built-in roles are fixed; others hold any known permission patterns."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from robofleet.auth.audit import audited
from robofleet.auth.cache import bump
from robofleet.auth.models import Role, UserRole
from robofleet.auth.permissions import unknown_patterns
from robofleet.auth.principal import Principal
from robofleet.auth.schemas import RoleCreate, RoleOut, RoleUpdate
from robofleet.errors import Conflict, Invalid, NotFound
from robofleet.store import Store
from robofleet.store.pagination import Page, paginate


def role_out(role: Role) -> RoleOut:
    return RoleOut(
        name=role.name,
        description=role.description,
        permissions=role.permissions,
        robot_globs=role.robot_globs,
        robot_tags=role.robot_tags,
        builtin=role.builtin,
        from_config=role.from_config,
    )


def find_role(db: Session, name: str) -> Role:
    role = db.scalar(select(Role).where(Role.name == name))
    if role is None:
        raise NotFound(f"no role named {name!r}", details={"role": name})
    return role


def check_patterns(patterns: list[str]) -> None:
    bad = unknown_patterns(patterns)
    if bad:
        raise Invalid(f"unknown permission(s): {', '.join(bad)}", details={"field": "permissions", "unknown": bad})


def list_roles(store: Store, principal: Principal, *, limit: int = 100, cursor: str | None = None) -> Page[RoleOut]:
    principal.require("roles:read")
    with store.transaction() as db:
        page = paginate(db, select(Role), Role.id, limit=limit, cursor=cursor)
        return Page([role_out(role) for role in page.items], page.next_cursor)


def get_role(store: Store, principal: Principal, name: str) -> RoleOut:
    principal.require("roles:read")
    with store.transaction() as db:
        return role_out(find_role(db, name))


def create_role(store: Store, principal: Principal, data: RoleCreate, *, from_config: bool = False) -> RoleOut:
    with audited(store, principal, "role.create", data.name, data.model_dump()) as db:
        principal.require("roles:write")
        check_patterns(data.permissions)
        if db.scalar(select(Role.id).where(Role.name == data.name)) is not None:
            raise Conflict(f"a role named {data.name!r} exists already", details={"role": data.name})
        role = Role(**data.model_dump(), from_config=from_config)
        db.add(role)
        db.flush()
        return role_out(role)


def update_role(store: Store, principal: Principal, name: str, data: RoleUpdate) -> RoleOut:
    changes = data.model_dump(exclude_unset=True)
    with audited(store, principal, "role.update", name, changes) as db:
        principal.require("roles:write")
        role = find_role(db, name)
        if role.builtin:
            raise Conflict(f"the built-in role {name!r} cannot be changed; make a new role", details={"role": name})
        if data.permissions is not None:
            check_patterns(data.permissions)
        for key, value in changes.items():
            setattr(role, key, value)
        bump(db)
        db.flush()
        return role_out(role)


def delete_role(store: Store, principal: Principal, name: str) -> None:
    with audited(store, principal, "role.delete", name) as db:
        principal.require("roles:write")
        role = find_role(db, name)
        if role.builtin:
            raise Conflict(f"the built-in role {name!r} cannot be deleted", details={"role": name})
        holders = db.scalar(select(func.count()).select_from(UserRole).where(UserRole.role_id == role.id))
        if holders:
            raise Conflict(f"{holders} user(s) still hold the role {name!r}", details={"role": name, "users": holders})
        db.delete(role)
        bump(db)
