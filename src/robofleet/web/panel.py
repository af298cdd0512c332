"""The panel shell: login, logout and the way to its home (the dashboard)."""

from __future__ import annotations

import contextlib
import secrets
from urllib.parse import urlparse

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from robofleet.auth import sessions
from robofleet.auth.principal import Principal
from robofleet.auth.sessions import COOKIE_NAME
from robofleet.errors import Invalid, Locked, RobofleetError, StoreUnavailable, Unauthenticated
from robofleet.orchestrator import Orchestrator
from robofleet.web.context import context_of, get_context
from robofleet.web.cookies import clear_session_cookie, cookie_secure, set_session_cookie
from robofleet.web.security import PUBLIC, Require, client_ip, same_secret
from robofleet.web.templating import page

router = APIRouter(prefix="/panel", include_in_schema=False)
LOGIN_CSRF_COOKIE = "robofleet_login_csrf"
HOME = "/panel/dashboard"  # the panel's home: how the fleet is doing (robots/panel_dashboard.py)


def safe_next(target: str | None) -> str:
    """Only a path inside the panel: never an open redirect to another site."""
    if not target:
        return HOME
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not parsed.path.startswith("/panel") or target.startswith("//"):
        return HOME
    return target


@router.get("", dependencies=[Depends(PUBLIC)])
@router.get("/", dependencies=[Depends(PUBLIC)])
def panel_home() -> Response:
    return RedirectResponse(HOME, status_code=303)


@router.get("/login", dependencies=[Depends(PUBLIC)])
def login_page(request: Request, next: str | None = None) -> Response:
    return _login_form(request, safe_next(next))


def _login_form(
    request: Request, next_url: str, *, error: str | None = None, username: str = "", status: int = 200
) -> Response:
    token = secrets.token_urlsafe(24)
    response = page(
        request, "login.html", None, status=status, login_csrf=token, next_url=next_url, error=error, username=username
    )
    ctx = context_of(request)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="strict",
        path="/panel",
        secure=cookie_secure(ctx.settings, request),
    )
    return response


@router.post("/login", dependencies=[Depends(PUBLIC)])
async def login_submit(request: Request, ctx: Orchestrator = Depends(get_context)) -> Response:
    form = await request.form()
    username = str(form.get("username", ""))[:64]
    password = str(form.get("password", ""))[:1024]
    next_url = safe_next(str(form.get("next", "")))
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not expected or not same_secret(str(form.get("csrf_token", "")), expected):
        return _login_form(
            request, next_url, error="The form expired; please log in again.", username=username, status=403
        )
    if not ctx.ready:
        return _login_form(
            request, next_url, error=f"The store is not ready: {ctx.not_ready_reason}", username=username, status=503
        )
    try:
        session = await run_in_threadpool(
            sessions.login, ctx.store, ctx.settings.auth, username, password, client_ip(request)
        )
    except Locked as exc:
        return _login_form(request, next_url, error=exc.message, username=username, status=429)
    except (Unauthenticated, Invalid, StoreUnavailable) as exc:  # Invalid: a name the store cannot hold (a NUL)
        return _login_form(request, next_url, error=exc.message, username=username, status=exc.status)
    response = RedirectResponse(next_url, status_code=303)
    set_session_cookie(response, session, ctx.settings, request)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/panel")
    return response


@router.post("/logout")
def logout(
    request: Request,
    principal: Principal = Depends(Require(None, panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    # The cookie goes anyway: a store outage must not keep anyone logged in on this browser.
    with contextlib.suppress(RobofleetError):
        sessions.logout(ctx.store, principal, request.cookies.get(COOKIE_NAME))
    response = RedirectResponse("/panel/login", status_code=303)
    clear_session_cookie(response)
    return response
