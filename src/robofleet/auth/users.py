"""User operations: the only code that changes users."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from robofleet.auth.audit import audited
from robofleet.auth.cache import bump
from robofleet.auth.models import PanelSession, Role, User
from robofleet.auth.passwords import hash_password
from robofleet.auth.principal import RUN_USER, Principal
from robofleet.auth.schemas import UserCreate, UserOut, UserUpdate
from robofleet.errors import Conflict, Invalid, NotFound
from robofleet.store import Store
from robofleet.store.pagination import Page, paginate


def user_out(user: User) -> UserOut:
    return UserOut(
        username=user.username,
        roles=[role.name for role in user.roles],
        disabled=user.disabled,
        locked_until=user.locked_until,
        from_config=user.from_config,
        created_at=user.created_at,
    )


def find_user(db: Session, username: str) -> User:
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user named {username!r}", details={"username": username})
    return user


def roles_named(db: Session, names: list[str]) -> list[Role]:
    wanted = sorted(set(names))
    roles = list(db.scalars(select(Role).where(Role.name.in_(wanted))))
    missing = sorted(set(wanted) - {role.name for role in roles})
    if missing:
        raise Invalid(f"unknown role(s): {', '.join(missing)}", details={"field": "roles", "unknown": missing})
    return roles


def list_users(
    store: Store, principal: Principal, *, limit: int = 100, cursor: str | None = None, internal: bool = True
) -> Page[UserOut]:
    """Users by id; without `internal`, the built-in users robofleet made for itself (INTERNAL_USERS) left out."""
    principal.require("users:read")
    stmt = select(User) if internal else select(User).where(User.username.not_in(INTERNAL_USERS))
    with store.transaction() as db:
        page = paginate(db, stmt, User.id, limit=limit, cursor=cursor)
        return Page([user_out(user) for user in page.items], page.next_cursor)


# Users robofleet makes for itself (the owner of run tokens): no password, no person behind them. The panel's lists
# of people leave them out unless asked.
INTERNAL_USERS = (RUN_USER,)


def get_user(store: Store, principal: Principal, username: str) -> UserOut:
    if principal.username != username:
        principal.require("users:read")
    with store.transaction() as db:
        return user_out(find_user(db, username))


def create_user(store: Store, principal: Principal, data: UserCreate, *, from_config: bool = False) -> UserOut:
    with audited(store, principal, "user.create", data.username, {"roles": data.roles}) as db:
        principal.require("users:write")
        if db.scalar(select(User.id).where(User.username == data.username)) is not None:
            raise Conflict(f"a user named {data.username!r} exists already", details={"username": data.username})
        user = User(
            username=data.username,
            password_hash=hash_password(data.password),
            disabled=data.disabled,
            roles=roles_named(db, data.roles),
            from_config=from_config,
        )
        db.add(user)
        db.flush()
        return user_out(user)


def ensure_service_user(store: Store, principal: Principal, username: str, roles: list[str]) -> None:
    """A built-in user that owns tokens the orchestrator makes for itself (a run's own token): no password, so it
    can never log in. Created once, audited; the roles of an existing one are left as they are."""
    with store.transaction() as db:
        if db.scalar(select(User.id).where(User.username == username)) is not None:
            return
    with audited(store, principal, "user.create", username, {"roles": roles, "service": True}) as db:
        principal.require("users:write")
        if db.scalar(select(User.id).where(User.username == username)) is None:
            db.add(User(username=username, password_hash=None, roles=roles_named(db, roles)))


def update_user(store: Store, principal: Principal, username: str, data: UserUpdate) -> UserOut:
    changes = data.model_dump(exclude_unset=True, exclude={"password"})
    if data.password is not None:
        changes["password"] = "changed"
    with audited(store, principal, "user.update", username, changes) as db:
        principal.require("users:write")
        user = find_user(db, username)
        was_admin = _is_active_admin(user)
        if data.roles is not None:
            user.roles = roles_named(db, data.roles)
        if data.disabled is not None:
            user.disabled = data.disabled
        if data.password is not None:
            set_password(db, user, data.password)
        if data.disabled:
            db.execute(delete(PanelSession).where(PanelSession.user_id == user.id))
        if was_admin and not _is_active_admin(user):
            _keep_one_admin(db, user)
        bump(db)
        db.flush()
        return user_out(user)


def set_password(db: Session, user: User, password: str) -> None:
    """New hash, lockout cleared, every panel session of the user ended."""
    user.password_hash = hash_password(password)
    bump(db)
    user.failed_logins = 0
    user.locked_until = None
    db.execute(delete(PanelSession).where(PanelSession.user_id == user.id))


def delete_user(store: Store, principal: Principal, username: str) -> None:
    with audited(store, principal, "user.delete", username) as db:
        principal.require("users:write")
        user = find_user(db, username)
        if _is_active_admin(user):
            _keep_one_admin(db, user)
        db.delete(user)
        bump(db)


def _is_active_admin(user: User) -> bool:
    return not user.disabled and any(role.name == "admin" for role in user.roles)


def _keep_one_admin(db: Session, leaving: User) -> None:
    others = db.scalar(
        select(func.count(User.id))
        .join(User.roles)
        .where(Role.name == "admin", User.disabled.is_(False), User.id != leaving.id)
    )
    if not others:
        raise Conflict(
            "this is the last enabled admin; make another admin first", details={"username": leaving.username}
        )
