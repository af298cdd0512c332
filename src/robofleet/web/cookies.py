"""The panel session cookie: HttpOnly, SameSite=Lax, Secure over https and on loopback."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request, Response

from robofleet.auth.sessions import COOKIE_NAME, NewSession
from robofleet.settings.model import Settings

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def cookie_secure(settings: Settings, request: Request) -> bool:
    """auto: Secure over https, and on loopback too, where browsers treat http as a secure context."""
    mode = settings.auth.cookie_secure
    if mode != "auto":
        return mode == "always"
    public = settings.server.public_url or ""
    host = (request.url.hostname or "").lower()
    return request.url.scheme == "https" or public.startswith("https://") or host in LOOPBACK_HOSTS


def set_session_cookie(response: Response, session: NewSession, settings: Settings, request: Request) -> None:
    max_age = int((session.expires_at - datetime.now(session.expires_at.tzinfo)).total_seconds())
    response.set_cookie(
        COOKIE_NAME,
        session.cookie,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=cookie_secure(settings, request),
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE_NAME, path="/")
