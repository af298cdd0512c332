"""API tokens: shown once, stored as a SHA-256 digest, optionally scoped and expiring."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from robofleet.auth.audit import audited
from robofleet.auth.cache import bump, current_epoch, epochs_of, principals
from robofleet.auth.models import ApiToken
from robofleet.auth.permissions import unknown_patterns
from robofleet.auth.principal import Principal, RunBinding, grants_of
from robofleet.auth.schemas import TokenCreate, TokenCreated, TokenOut
from robofleet.auth.users import find_user
from robofleet.errors import Invalid, NotFound, Unauthenticated
from robofleet.store import Store
from robofleet.store.base import utcnow
from robofleet.store.pagination import Page, paginate

TOKEN_PREFIX = "rf_"
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
    )


def create_token(
    store: Store,
    principal: Principal,
    data: TokenCreate,
    *,
    now: datetime | None = None,
    run: RunBinding | None = None,
) -> TokenCreated:
    """A new token for `data.user` (default: the caller). Another user's token needs tokens:write. With `run`, the
    token acts for that robot run only (the robots service makes one per run; no route can ask for it)."""
    now = now or utcnow()
    owner = data.user or principal.username
    with audited(store, principal, "token.create", owner, {"name": data.name, "scopes": data.scopes}) as db:
        if owner != principal.username or principal.user_id is None:
            principal.require("tokens:write")
        bad = unknown_patterns(data.scopes)
        if bad:
            raise Invalid(f"unknown scope(s): {', '.join(bad)}", details={"field": "scopes", "unknown": bad})
        if data.expires_at and data.expires_in_days:
            raise Invalid("give expires_at or expires_in_days, not both", details={"field": "expires_at"})
        expires_at = data.expires_at
        if data.expires_in_days:
            expires_at = now + timedelta(days=data.expires_in_days)
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise Invalid(
                    "expires_at needs a time zone, e.g. 2030-01-01T00:00:00Z", details={"field": "expires_at"}
                )
            if expires_at <= now:
                raise Invalid("expires_at is in the past", details={"field": "expires_at"})
        user = find_user(db, owner)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = ApiToken(
            id=secrets.token_hex(6),
            user=user,
            name=data.name,
            token_hash=digest(secret),
            scopes=data.scopes,
            expires_at=expires_at,
            created_by=principal.actor,
            created_at=now,
            run_id=run.run_id if run else None,
            robot=run.robot if run else None,
        )
        db.add(token)
        db.flush()
        return TokenCreated(**token_out(token).model_dump(), token=secret)


def list_tokens(
    store: Store, principal: Principal, *, user: str | None = None, limit: int = 100, cursor: str | None = None
) -> Page[TokenOut]:
    """Every token for holders of tokens:read; otherwise the caller's own."""
    stmt = select(ApiToken)
    if not principal.can("tokens:read"):
        if principal.user_id is None:
            principal.require("tokens:read")
        stmt = stmt.where(ApiToken.user_id == principal.user_id)
    with store.transaction() as db:
        if user:
            stmt = stmt.where(ApiToken.user_id == find_user(db, user).id)
        page = paginate(db, stmt, ApiToken.created_at, limit=limit, cursor=cursor, key_type=datetime.fromisoformat)
        return Page([token_out(token) for token in page.items], page.next_cursor)


def revoke_token(store: Store, principal: Principal, token_id: str) -> TokenOut:
    with audited(store, principal, "token.revoke", token_id) as db:
        token = db.get(ApiToken, token_id)
        if token is None or (token.user_id != principal.user_id and not principal.can("tokens:read")):
            raise NotFound(f"no token with id {token_id!r}", details={"id": token_id})
        if token.user_id != principal.user_id:
            principal.require("tokens:write")
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
        )
        principals.put(key, epoch, principal, token.expires_at)
        return principal
