"""The panel session cookie: HttpOnly, SameSite=Lax, Secure whenever the panel is reached over https."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request, Response

from robofleet.auth.sessions import COOKIE_NAME, NewSession
from robofleet.settings.model import Settings


def cookie_secure(settings: Settings, request: Request) -> bool:
    mode = settings.auth.cookie_secure
    if mode != "auto":
        return mode == "always"
    public = settings.server.public_url or ""
    return request.url.scheme == "https" or public.startswith("https://")


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
