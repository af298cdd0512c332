"""Sessions pages: a grid of every session the reader may see (a card each: its state and why, its agent, kind,
size, restarts and a thumbnail of its screen), filtered by agent, state and words, and a page per session (its
screen refreshed several times a second, its facts and its history; for a holder of sessions:control, the screen
takes clicks, the wheel and keys and a panel types text and presses keys; a Restart for sessions:admin).

The pages are drawn here from SessionsService; everything live happens in sessions.js through the API: the
screenshots (with their ETag, so an unchanged screen costs a 304), the input and the restart (which the API checks
and audits), and the states from /api/v1/sessions-stream. The server draws no control a reader may not use; the API
refuses it anyway."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from robofleet.auth.principal import Principal
from robofleet.orchestrator import Orchestrator
from robofleet.sessions.schemas import SessionEventOut, SessionOut, State
from robofleet.sessions.service import SessionsService
from robofleet.web.context import get_context
from robofleet.web.list_query import one
from robofleet.web.security import Require
from robofleet.web.templating import page

router = APIRouter(prefix="/panel/sessions", include_in_schema=False)
READ = Depends(Require("sessions:read", panel=True))
THUMB_SECONDS = 2  # a card's thumbnail is asked for again this often while it is on screen
# The full view asks for its next frame once the last arrived, but not sooner than this after the last request:
# about 8 frames/s at most, 5+ on a 2-core agent, and an unchanged screen (a 304) never spins the loop.
FRAME_MS = 120
EVENTS_SHOWN = 50
LISTED = 500  # sessions a grid shows (the API pages through more)
# The key buttons of the control panel: xdotool combinations and what they say.
KEY_BUTTONS = (
    ("Return", "Enter"),
    ("Escape", "Esc"),
    ("Tab", "Tab"),
    ("BackSpace", "Backspace"),
    ("ctrl+alt+Delete", "Ctrl+Alt+Del"),
    ("alt+Tab", "Alt+Tab"),
    ("alt+F4", "Alt+F4"),
    ("ctrl+c", "Ctrl+C"),
    ("ctrl+v", "Ctrl+V"),
    ("super", "Super"),
)


def sessions_service(ctx: Orchestrator) -> SessionsService:
    found = ctx.service("sessions")
    assert isinstance(found, SessionsService)
    return found


@dataclass(frozen=True)
class GridQuery:
    """The grid's filter as the address gives it; sessions.js applies it in the page and keeps it there."""

    agent: str = ""
    state: str = ""
    q: str = ""

    @classmethod
    def of(cls, request: Request) -> GridQuery:
        params = request.query_params
        return cls(agent=one(params, "agent", 64), state=one(params, "state", 20), q=one(params, "q", 200))


def every_session(service: SessionsService, principal: Principal) -> list[SessionOut]:
    """The sessions the reader may see (the first LISTED), by name."""
    found = service.list_sessions(principal, limit=LISTED, cursor=None)
    return sorted(found.items, key=lambda session: session.name)


def _page(request: Request, template: str, principal: Principal, **context: Any) -> Response:
    return page(
        request,
        template,
        principal,
        section="sessions",
        control=principal.can("sessions:control"),
        admin=principal.can("sessions:admin"),
        thumb_seconds=THUMB_SECONDS,
        **context,
    )


@router.get("")
def sessions_page(
    request: Request,
    principal: Principal = READ,
    ctx: Orchestrator = Depends(get_context),
    part: str | None = Query(None, max_length=20, description="cards: the grid's cards alone, for a new session"),
) -> Response:
    sessions = every_session(sessions_service(ctx), principal)
    if part == "cards":
        return _page(request, "session_cards.html", principal, sessions=sessions)
    return _page(
        request,
        "sessions.html",
        principal,
        sessions=sessions,
        query=GridQuery.of(request),
        agents=sorted({session.agent for session in sessions}),
        states=[state.value for state in State],
    )


@router.get("/{name}")
def session_page(
    name: str,
    request: Request,
    principal: Principal = READ,
    ctx: Orchestrator = Depends(get_context),
    part: str | None = Query(None, max_length=20, description="events: the history alone, for the refresh"),
) -> Response:
    service = sessions_service(ctx)
    session = service.get_session(principal, name)
    events = recent_events(service, principal, name)
    if part == "events":
        return _page(request, "session_events.html", principal, s=session, events=events)
    return _page(
        request,
        "session.html",
        principal,
        s=session,
        events=events,
        frame_ms=FRAME_MS,
        key_buttons=KEY_BUTTONS,
    )


def recent_events(service: SessionsService, principal: Principal, name: str) -> list[SessionEventOut]:
    """The session's last EVENTS_SHOWN events, newest first."""
    return list(service.list_events(principal, name, limit=EVENTS_SHOWN, cursor=None).items)
