"""Refuses a NUL character in a request's path or query string, for every route, before any route reads it.

No name, filter or id of robofleet holds a NUL, PostgreSQL text cannot store one, and a file path with one fails
deep in the OS: a 422 at the door says so once, the same on both stores."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from robofleet.web.errors import error_response

NUL_MESSAGE = "the path or query string contains a NUL character (%00)"
POLICY_VIOLATION = 1008  # WebSocket close code


def has_nul(scope: Scope) -> bool:
    """Whether the request's path (already percent-decoded) or its query string (decoded here) holds a NUL."""
    return "\x00" in scope["path"] or b"\x00" in unquote_to_bytes(scope.get("query_string", b""))


class RefuseNul:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not has_nul(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": POLICY_VIOLATION, "reason": NUL_MESSAGE})
            return
        response = error_response(Request(scope), 422, "nul_character", NUL_MESSAGE, {"field": "path or query"})
        await response(scope, receive, send)
