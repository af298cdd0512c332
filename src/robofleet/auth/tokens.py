"""API tokens: shown once, stored as a SHA-256 digest, optionally scoped and expiring."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from robofleet.auth.audit import audited
from robofleet.auth.cache import bump, current_epoch, epochs_of, principals
from robofleet.auth.models import ApiToken, User
from robofleet.auth.permissions import PERMISSIONS, is_allowed, pattern_matches, unknown_patterns
from robofleet.auth.principal import RUN_USER, Principal, RunBinding, grants_of
from robofleet.auth.schemas import TokenCreate, TokenCreated, TokenOut
from robofleet.auth.users import find_user
from robofleet.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from robofleet.store import Store
from robofleet.store.base import utcnow
from robofleet.store.pagination import Page, paginate

TOKEN_PREFIX = "rf_"
LOCAL_AGENT = "local"  # the embedded agent's name: no token connects as it
# Writing last_used_at on every request would turn every read into a write; once a minute is enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def digest(secret: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is as safe as a slow one and keeps requests cheap.
    return hashlib.sha256(secret.encode()).hexdigest()


def token_out(token: ApiToken) -> TokenOut:
    return TokenOut(
        id=token.id,
        user=token.user.username,
        name=token.name,
        scopes=token.scopes,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        last_used_at=token.last_used_at,
        created_at=token.created_at,
        created_by=token.created_by,
        agent=token.agent,
    )


def create_token(
    store: Store,
    principal: Principal,
    data: TokenCreate,
    *,
    now: datetime | None = None,
    run: RunBinding | None = None,
) -> TokenCreated:
    """A new token for `data.user` (default: the caller). Another user's token needs tokens:write. A token made with
    a token holds no more than it: a subset of its scopes (all of them when none are asked) and no later expiry.
    With `run`, the token acts for that robot run only (the robots service makes one per run; no route can ask for
    it). With `data.agent`, the token connects as that agent name only, and the name belongs to its user."""
    now = now or utcnow()
    owner = data.user or principal.username
    details: dict[str, object] = {"name": data.name, "scopes": data.scopes}
    if data.agent:
        details["agent"] = data.agent
    with audited(store, principal, "token.create", owner, details) as db:
        _refuse_self_service(principal)
        if owner != principal.username or principal.user_id is None:
            principal.require("tokens:write")
        if owner == RUN_USER and run is None:
            raise Forbidden(
                f"tokens of {RUN_USER!r} are made by the robots service for one run each",
                details={"field": "user"},
            )
        bad = unknown_patterns(data.scopes)
        if bad:
            raise Invalid(f"unknown scope(s): {', '.join(bad)}", details={"field": "scopes", "unknown": bad})
        scopes = _narrowed_scopes(principal, data.scopes)
        expires_at = _expiry(principal, data, now)
        user = find_user(db, owner)
        if data.agent:
            _claim_agent_name(db, user, data.agent, now)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = ApiToken(
            id=secrets.token_hex(6),
            user=user,
            name=data.name,
            token_hash=digest(secret),
            scopes=scopes,
            expires_at=expires_at,
            created_by=principal.actor,
            created_at=now,
            run_id=run.run_id if run else None,
            robot=run.robot if run else None,
            agent=data.agent,
        )
        db.add(token)
        db.flush()
        return TokenCreated(**token_out(token).model_dump(), token=secret)


def _refuse_self_service(principal: Principal) -> None:
    """A robot run's token and an agent's token are handed out for one job; neither manages tokens."""
    if principal.username == RUN_USER and principal.via == "token":
        raise Forbidden("a robot run's token cannot create, list or revoke tokens", details={"permission": "tokens"})
    if principal.agent is not None:
        raise Forbidden("an agent's token cannot create, list or revoke tokens", details={"permission": "tokens"})


def _narrowed_scopes(principal: Principal, asked: list[str]) -> list[str]:
    """The scopes of a token made by `principal`: what was asked, which a scoped caller must itself hold."""
    if not principal.scopes:
        return asked
    if not asked:
        return list(principal.scopes)
    held = {permission for permission in PERMISSIONS if any(pattern_matches(s, permission) for s in principal.scopes)}
    beyond = [scope for scope in asked if any(pattern_matches(scope, p) and p not in held for p in PERMISSIONS)]
    if beyond:
        raise Forbidden(
            f"this token is scoped to {', '.join(principal.scopes)}; it cannot make a token for {', '.join(beyond)}",
            details={"field": "scopes", "beyond": beyond},
        )
    return asked


def _expiry(principal: Principal, data: TokenCreate, now: datetime) -> datetime | None:
    if data.expires_at and data.expires_in_days:
        raise Invalid("give expires_at or expires_in_days, not both", details={"field": "expires_at"})
    expires_at = data.expires_at
    if data.expires_in_days:
        expires_at = now + timedelta(days=data.expires_in_days)
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise Invalid("expires_at needs a time zone, e.g. 2030-01-01T00:00:00Z", details={"field": "expires_at"})
        if expires_at <= now:
            raise Invalid("expires_at is in the past", details={"field": "expires_at"})
    limit = principal.token_expires_at if principal.via == "token" else None
    if limit is None:
        return expires_at
    if expires_at is None:
        return limit
    if expires_at > limit:
        raise Invalid(
            f"a token made with this token cannot outlive it (it expires at {limit.isoformat(timespec='seconds')})",
            details={"field": "expires_at"},
        )
    return expires_at


def _claim_agent_name(db: Session, user: User, name: str, now: datetime) -> None:
    """An agent name belongs to one user: the one whose live tokens are bound to it."""
    if name == LOCAL_AGENT:
        raise Invalid(f"{LOCAL_AGENT!r} is the embedded agent's name", details={"field": "agent"})
    if not is_allowed(grants_of(user.roles), "agents:connect"):
        raise Invalid(
            f"the user {user.username!r} may not connect as an agent (agents:connect)", details={"field": "agent"}
        )
    holder = db.scalar(
        select(User.username)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(
            ApiToken.agent == name,
            ApiToken.user_id != user.id,
            ApiToken.revoked_at.is_(None),
            or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now),
        )
        .limit(1)
    )
    if holder is not None:
        raise Conflict(
            f"the agent name {name!r} belongs to the user {holder!r}: revoke their tokens for it first",
            details={"field": "agent"},
        )


def list_tokens(
    store: Store,
    principal: Principal,
    *,
    user: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
    internal: bool = True,
) -> Page[TokenOut]:
    """Every token for holders of tokens:read; otherwise the caller's own (and naming another user finds none).
    Without `internal`, the tokens the robots service made for runs (one per run) are left out."""
    _refuse_self_service(principal)
    stmt = select(ApiToken) if internal else select(ApiToken).where(ApiToken.run_id.is_(None))
    own_only = not principal.can("tokens:read")
    if own_only:
        if principal.user_id is None:
            principal.require("tokens:read")
        stmt = stmt.where(ApiToken.user_id == principal.user_id)
    with store.transaction() as db:
        if user and own_only and user != principal.username:
            principal.require("tokens:read")  # the same answer whether or not that user exists
        if user:
            stmt = stmt.where(ApiToken.user_id == find_user(db, user).id)
        page = paginate(db, stmt, ApiToken.created_at, limit=limit, cursor=cursor, key_type=datetime.fromisoformat)
        return Page([token_out(token) for token in page.items], page.next_cursor)


def revoke_token(store: Store, principal: Principal, token_id: str) -> TokenOut:
    """Revoke a token: one's own (a scoped token only those within its scopes), or anyone's with tokens:write."""
    with audited(store, principal, "token.revoke", token_id) as db:
        _refuse_self_service(principal)
        token = db.get(ApiToken, token_id)
        if token is None or (token.user_id != principal.user_id and not principal.can("tokens:read")):
            raise NotFound(f"no token with id {token_id!r}", details={"id": token_id})
        if token.user_id != principal.user_id:
            principal.require("tokens:write")
        elif principal.scopes and token.id != principal.token_id:
            _narrowed_scopes(principal, token.scopes or ["*"])
        if token.revoked_at is None:
            token.revoked_at = utcnow()
            bump(db)
        return token_out(token)


def cached_principal(store: Store, secret: str, source_ip: str) -> Principal | None:
    """The principal of a token seen recently, with no store access at all (None: ask authenticate_token)."""
    epoch = epochs_of(store.engine).get()
    if epoch is None:
        return None
    cached = principals.get(digest(secret), epoch, datetime.now(UTC))
    if cached is None:
        return None
    return replace(cached, source_ip=source_ip) if cached.source_ip != source_ip else cached


def authenticate_token(store: Store, secret: str, source_ip: str, *, now: datetime | None = None) -> Principal:
    """The principal a bearer token stands for; Unauthenticated when unknown, revoked, expired or disabled."""
    now = now or datetime.now(UTC)
    key = digest(secret)
    clock = epochs_of(store.engine)
    epoch = clock.get()
    if epoch is None:
        read_at = time.monotonic()
        with store.connection() as connection:
            epoch = current_epoch(connection)
        clock.set(epoch, read_at)
    cached = principals.get(key, epoch, now)
    if cached is not None:
        return replace(cached, source_ip=source_ip) if cached.source_ip != source_ip else cached
    with store.transaction() as db:
        token = db.scalar(select(ApiToken).where(ApiToken.token_hash == key))
        if token is None:
            raise Unauthenticated("the bearer token is not valid", code="invalid_token")
        if token.revoked_at is not None:
            raise Unauthenticated("the bearer token was revoked", code="token_revoked")
        if token.expires_at is not None and token.expires_at <= now:
            raise Unauthenticated("the bearer token has expired", code="token_expired")
        if token.user.disabled:
            raise Unauthenticated(f"the user {token.user.username!r} is disabled", code="user_disabled")
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            db.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now))
        principal = Principal(
            username=token.user.username,
            user_id=token.user_id,
            grants=grants_of(token.user.roles),
            roles=tuple(r.name for r in token.user.roles),
            via="token",
            scopes=tuple(token.scopes),
            token_id=token.id,
            source_ip=source_ip,
            run=RunBinding(token.run_id, token.robot) if token.run_id is not None and token.robot else None,
            agent=token.agent,
            token_expires_at=token.expires_at,
        )
        principals.put(key, epoch, principal, token.expires_at)
        return principal
