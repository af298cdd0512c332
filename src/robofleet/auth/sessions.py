"""Panel logins: password check with lockout, server-side sessions, CSRF tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from robofleet.auth.audit import record, record_alone
from robofleet.auth.cache import bump
from robofleet.auth.models import PanelSession, User
from robofleet.auth.passwords import verify_password
from robofleet.auth.principal import Principal, grants_of
from robofleet.auth.throttle import failed_logins
from robofleet.errors import Locked, Unauthenticated
from robofleet.settings.model import AuthSettings
from robofleet.store import Store
from robofleet.store.base import utcnow

COOKIE_NAME = "robofleet_session"


@dataclass(frozen=True)
class NewSession:
    cookie: str
    csrf_token: str
    expires_at: datetime
    principal: Principal


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def login(
    store: Store, auth: AuthSettings, username: str, password: str, source_ip: str, *, now: datetime | None = None
) -> NewSession:
    """A new session for good credentials; Locked while the account or the address is locked, Unauthenticated
    otherwise. An unknown username, a disabled account and a wrong password get the same answers."""
    now = now or utcnow()
    anonymous = Principal(username=username[:64] or "-", user_id=None, grants=(), via="session", source_ip=source_ip)
    window = auth.lockout_minutes * 60
    # Per database as well: one process may serve several stores (tests do).
    scope = id(store.engine)
    address, unknown = f"{scope} address {source_ip}", f"{scope} username {username.lower()}"
    locked: Locked | None = None
    retry = failed_logins.retry_after(address, auth.address_failure_limit, window)
    if retry is not None:
        record_alone(store, anonymous, "auth.login", username, "denied", {"reason": "address throttled"})
        raise Locked(f"too many failed logins from this address; try again in {retry} s", retry_after=retry)
    with store.transaction() as db:
        user = db.scalar(select(User).where(User.username == username))
        retry = (
            failed_logins.retry_after(unknown, auth.lockout_threshold, window)
            if user is None
            else int((user.locked_until - now).total_seconds()) + 1
            if user.locked_until is not None and user.locked_until > now
            else None
        )
        if retry is not None:
            record(db, anonymous, "auth.login", username, "denied", {"reason": "locked"})
            locked = _locked(retry)
    if locked:
        raise locked
    # Hashing is slow on purpose; keep it outside any transaction.
    good = verify_password(user.password_hash if user else None, password)
    if not good or user is None or user.disabled:
        reason = "disabled" if good and user is not None else "bad credentials"
        failed_logins.fail(address)
        if user is None:
            failed_logins.fail(unknown)
        elif not good:
            _count_failure(store, auth, user.id, now)
        record_alone(store, anonymous, "auth.login", username, "failed", {"reason": reason})
        raise Unauthenticated("wrong username or password", code="login_failed")
    cookie = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires_at = now + timedelta(minutes=auth.session_lifetime_minutes)
    with store.transaction() as db:
        user = db.get_one(User, user.id)
        user.failed_logins = 0
        user.locked_until = None
        db.execute(delete(PanelSession).where(PanelSession.expires_at <= now))
        db.add(
            PanelSession(
                id_hash=_digest(cookie),
                user_id=user.id,
                csrf_token=csrf,
                created_at=now,
                expires_at=expires_at,
                source_ip=source_ip,
            )
        )
        principal = Principal(
            username=user.username,
            user_id=user.id,
            grants=grants_of(user.roles),
            roles=tuple(r.name for r in user.roles),
            via="session",
            csrf_token=csrf,
            source_ip=source_ip,
        )
        record(db, principal, "auth.login", username, "ok")
    return NewSession(cookie, csrf, expires_at, principal)


def _locked(retry: int) -> Locked:
    return Locked(f"the account is locked after repeated failed logins; try again in {retry} s", retry_after=retry)


def _count_failure(store: Store, auth: AuthSettings, user_id: int, now: datetime) -> None:
    with store.transaction() as db:
        user = db.get_one(User, user_id, with_for_update=True)
        user.failed_logins += 1
        if user.failed_logins >= auth.lockout_threshold:
            user.locked_until = now + timedelta(minutes=auth.lockout_minutes)
            user.failed_logins = 0


def authenticate_session(store: Store, cookie: str, source_ip: str, *, now: datetime | None = None) -> Principal:
    now = now or utcnow()
    with store.transaction() as db:
        session = db.get(PanelSession, _digest(cookie))
        if session is None or session.expires_at <= now:
            raise Unauthenticated("your session has ended; log in again", code="session_expired")
        if session.user.disabled:
            raise Unauthenticated("this account is disabled", code="user_disabled")
        return Principal(
            username=session.user.username,
            user_id=session.user_id,
            grants=grants_of(session.user.roles),
            roles=tuple(r.name for r in session.user.roles),
            via="session",
            csrf_token=session.csrf_token,
            source_ip=source_ip,
        )


def logout(store: Store, principal: Principal, cookie: str | None) -> None:
    with store.transaction() as db:
        if cookie:
            db.execute(delete(PanelSession).where(PanelSession.id_hash == _digest(cookie)))
            bump(db)  # the session's open live streams check again and end
        record(db, principal, "auth.logout", principal.username, "ok")
