"""Who is calling and may they: every route declares `Depends(Require(...))` or `Depends(PUBLIC)`."""

from __future__ import annotations

import secrets

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from robofleet.auth.audit import record_alone
from robofleet.auth.principal import Principal
from robofleet.auth.sessions import COOKIE_NAME, authenticate_session
from robofleet.auth.tokens import authenticate_token, cached_principal
from robofleet.errors import Forbidden, StoreUnavailable, Unauthenticated
from robofleet.orchestrator import Orchestrator
from robofleet.web.context import context_of

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


class LoginRequired(Exception):
    """A panel page asked for by someone not logged in: answered with a redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class Public:
    """Marks a route that anyone may call (health, login). Declared, so the route audit test sees it."""

    permission = None

    def __call__(self) -> None:
        return None


PUBLIC = Public()


class Require:
    """Authenticates the caller and checks `permission` (None: any authenticated caller)."""

    def __init__(self, permission: str | None, *, panel: bool = False) -> None:
        self.permission = permission
        self.panel = panel

    async def __call__(self, request: Request) -> Principal:
        context = context_of(request)
        if not context.ready:
            raise StoreUnavailable(f"the store is not ready: {context.not_ready_reason}")
        try:
            # A token seen a moment ago is answered here, on the loop: no thread, no store round trip.
            cached = cached_bearer(context, request)
            principal = cached if cached is not None else await run_in_threadpool(authenticate, context, request)
        except Unauthenticated:
            if self.panel:
                query = f"?{request.url.query}" if request.url.query else ""
                raise LoginRequired(request.url.path + query) from None
            raise
        request.state.principal = principal  # for an error page of the panel: its navigation is this caller's
        if principal.via == "session" and request.method not in SAFE_METHODS:
            await check_csrf(request, principal)
        if self.permission and not principal.can(self.permission):
            if request.method not in SAFE_METHODS:
                await run_in_threadpool(
                    record_alone,
                    context.store,
                    principal,
                    f"http.{request.method.lower()}",
                    request.url.path,
                    "denied",
                    {"permission": self.permission},
                )
            principal.require(self.permission)
        return principal


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def cached_bearer(context: Orchestrator, request: Request) -> Principal | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return cached_principal(context.store, credentials.strip(), client_ip(request))


def authenticate(context: Orchestrator, request: Request) -> Principal:
    """A bearer token wins over a panel cookie; neither is Unauthenticated."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'", code="invalid_token")
        return authenticate_token(context.store, credentials.strip(), client_ip(request))
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie:
        return authenticate_session(context.store, cookie, client_ip(request))
    raise Unauthenticated("log in, or send 'Authorization: Bearer <token>'")


async def check_csrf(request: Request, principal: Principal) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not principal.csrf_token or not same_secret(sent, principal.csrf_token):
        raise Forbidden(
            f"missing or wrong CSRF token: send the {CSRF_HEADER} header or the {CSRF_FIELD} form field",
            code="csrf_failed",
        )


def same_secret(sent: str, expected: str) -> bool:
    """Whether `sent` is `expected`, compared in constant time. As bytes: `secrets.compare_digest` raises on a str
    with non-ASCII characters, which a header or form field may carry."""
    return secrets.compare_digest(sent.encode(), expected.encode())
