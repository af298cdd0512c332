"""Every error leaves as {"error": {"code", "message", "details"}}; panel pages get HTML instead."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from robofleet.errors import Locked, RobofleetError
from robofleet.store.database import refused_value
from robofleet.web.limits import BodyTooLarge
from robofleet.web.security import LoginRequired

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    if request.url.path.startswith("/panel"):
        from robofleet.web.templating import render_error

        return render_error(request, status, code, message)
    return JSONResponse(error_body(code, message, details), status_code=status, headers=dict(headers or {}))


def describe_validation(errors: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    details = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part != "body"]
        field = ".".join(loc) or "body"
        message = error.get("msg", "invalid")
        if error.get("type") == "extra_forbidden":
            message = "unknown field"
        details.append({"field": field, "message": message, "type": error.get("type")})
    first = details[0] if details else {"field": "body", "message": "invalid"}
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return f"{first['field']}: {first['message']}{more}", details


def install(app: FastAPI) -> None:
    @app.exception_handler(RobofleetError)
    async def robofleet_error(request: Request, exc: RobofleetError) -> Response:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Locked) else None
        if exc.status == 503:
            headers = {"Retry-After": "5"}
        return error_response(request, exc.status, exc.code, exc.message, exc.details, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        if any(error.get("type") == "json_invalid" for error in errors):
            ctx = errors[0].get("ctx", {})
            return error_response(
                request, 400, "malformed_json", f"the body is not valid JSON: {ctx.get('error', 'parse error')}"
            )
        message, details = describe_validation(errors)
        return error_response(request, 422, "invalid", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(request, exc.status_code, code, message, headers=exc.headers)

    @app.exception_handler(BodyTooLarge)
    async def body_too_large(request: Request, exc: BodyTooLarge) -> Response:
        limit = request.app.state.context.settings.server.max_body_bytes
        return error_response(
            request, 413, "payload_too_large", f"the request body is larger than {limit} bytes", {"max_bytes": limit}
        )

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        from urllib.parse import quote

        return RedirectResponse(f"/panel/login?next={quote(exc.next_url, safe='')}", status_code=303)


class UnexpectedErrors:
    """Answers what no handler above knew: a value the store refused (raised past the store's own mapping, e.g. by
    a driver used directly) as a 422, anything else as a 500 logged once with its traceback.

    A middleware rather than `exception_handler(Exception)`: Starlette re-raises after that handler answers, and
    the server then logs the same traceback a second time, which a client could provoke at will."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            request = Request(scope)
            refused = refused_value(exc)
            if refused is None:
                log.exception("unexpected error on %s %s", request.method, request.url.path)
            if started:  # too late for an answer of our own: the server ends the cut response
                return
            if refused is not None:
                response = error_response(request, refused.status, refused.code, refused.message, refused.details)
            else:
                response = error_response(request, 500, "internal", "an unexpected error occurred; it has been logged")
            await response(scope, receive, send)
