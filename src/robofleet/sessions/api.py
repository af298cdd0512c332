"""HTTP routes of graphical sessions (/api/v1/sessions): definitions, history, the live stream, screenshots (with
ETag / If-None-Match), input, restart; an rdp session's connect, disconnect, logoff, reconnect and secure attention
keys; and the evidence of failed runs (/api/v1/runs/{id}/evidence)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from robofleet.auth.principal import Principal
from robofleet.errors import Invalid
from robofleet.sessions.schemas import (
    Click,
    Done,
    EvidenceOut,
    ImageFormat,
    Keys,
    LogoffRequest,
    Scroll,
    SessionCreate,
    SessionEventOut,
    SessionOut,
    SessionUpdate,
    ShotRequest,
    State,
    TypeText,
)
from robofleet.sessions.service import TOPIC, SessionsService
from robofleet.web.deps import Context
from robofleet.web.paging import Paging, page_in_thread
from robofleet.web.schemas import PageOut
from robofleet.web.security import Require
from robofleet.web.sse import sse_message, sse_response, sse_stream

router = APIRouter(prefix="/api/v1", tags=["sessions"])
RunId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]
# The formats by the media type a client may name in Accept, in the order they are preferred when it names several.
ACCEPTED = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp"}


async def sessions_service(ctx: Context) -> SessionsService:
    found = ctx.service("sessions")
    assert isinstance(found, SessionsService)
    return found


Sessions = Annotated[SessionsService, Depends(sessions_service)]
Read = Depends(Require("sessions:read"))
Control = Depends(Require("sessions:control"))
Admin = Depends(Require("sessions:admin"))


@router.get("/sessions")
async def list_sessions(
    sessions: Sessions,
    paging: Paging,
    principal: Principal = Read,
    agent: Annotated[str | None, Query(max_length=64, description="Sessions of this agent")] = None,
    state: Annotated[State | None, Query(description="Sessions in this state")] = None,
    tag: Annotated[str | None, Query(max_length=64, description="Sessions with this tag")] = None,
) -> PageOut[SessionOut]:
    """In the order of their creation, each with its state as its agent last reported it."""
    return await page_in_thread(sessions.list_sessions, principal, agent=agent, state=state, tag=tag, **paging)


@router.post("/sessions", status_code=201)
def create_session(data: SessionCreate, sessions: Sessions, principal: Principal = Admin) -> SessionOut:
    """Its agent starts (xvfb) or checks (attach) it at the next sync, within sessions.check_seconds."""
    return sessions.create_session(principal, data)


@router.get("/sessions-stream")
async def sessions_stream(
    request: Request, ctx: Context, sessions: Sessions, principal: Principal = Read
) -> StreamingResponse:
    """Server-sent events: `session` with a session's shape at each change of its state, `session_deleted`
    with its name when it is deleted; only of the sessions the caller may see."""
    may_see = sessions.may_see(principal)

    def render(payload: dict[str, Any]) -> str | None:
        if not may_see(str(payload.get("name")), payload.get("tags") or ()):
            return None
        event = str(payload.get("event", "session"))
        body = {key: value for key, value in payload.items() if key != "event"}
        if event == "session_deleted":
            body.pop("tags", None)
        return sse_message(event, body)

    return sse_response(sse_stream(ctx.events, TOPIC, render, request.is_disconnected), request, "sessions:read")


@router.get("/sessions/{name}")
def get_session(name: str, sessions: Sessions, principal: Principal = Read) -> SessionOut:
    return sessions.get_session(principal, name)


@router.patch("/sessions/{name}")
def update_session(name: str, data: SessionUpdate, sessions: Sessions, principal: Principal = Admin) -> SessionOut:
    """A changed definition restarts the session on its agent at the next sync."""
    return sessions.update_session(principal, name, data)


@router.delete("/sessions/{name}", status_code=204)
def delete_session(name: str, sessions: Sessions, principal: Principal = Admin) -> Response:
    """Its agent stops the display it started (an attached display is only forgotten); 409 while robots name it."""
    sessions.delete_session(principal, name)
    return Response(status_code=204)


@router.get("/sessions/{name}/events")
def list_events(name: str, sessions: Sessions, paging: Paging, principal: Principal = Read) -> PageOut[SessionEventOut]:
    """The session's history, newest first: its states, the watchdog's restarts and their reasons."""
    return PageOut.of(sessions.list_events(principal, name, **paging))


@router.post("/sessions/{name}/restart")
async def restart_session(name: str, sessions: Sessions, principal: Principal = Admin) -> SessionOut:
    """Stop and start it now (its robots' windows go with the display)."""
    return await sessions.restart(principal, name)


# ---- rdp sessions -------------------------------------------------------------------------------------------------


@router.post("/sessions/{name}/connect", responses={409: {"description": "not_rdp"}})
async def connect_session(name: str, sessions: Sessions, principal: Principal = Control) -> SessionOut:
    """Connect the rdp session now and keep it connected (a failed one is tried again). Stored first: an offline
    agent connects it when it comes back."""
    return await sessions.rdp.connect(principal, name)


@router.post("/sessions/{name}/disconnect", responses={409: {"description": "not_rdp"}})
async def disconnect_session(name: str, sessions: Sessions, principal: Principal = Control) -> SessionOut:
    """End the rdp session's client and keep it ended (state stopped); the server session stays."""
    return await sessions.rdp.disconnect(principal, name)


@router.post(
    "/sessions/{name}/logoff",
    responses={409: {"description": "not_rdp, agent_offline, session_unhealthy, or logoff_failed"}},
)
async def logoff_session(
    name: str, sessions: Sessions, data: LogoffRequest | None = None, principal: Principal = Control
) -> SessionOut:
    """Log the user off (the session's logoff steps played into it): the server session ends; disconnected after."""
    return await sessions.rdp.logoff(principal, name, data or LogoffRequest())


@router.post("/sessions/{name}/reconnect", responses={409: {"description": "not_rdp, or agent_offline"}})
async def reconnect_session(name: str, sessions: Sessions, principal: Principal = Control) -> SessionOut:
    """End the rdp session's client and start a new one now (to the same server session)."""
    return await sessions.rdp.reconnect(principal, name)


@router.post(
    "/sessions/{name}/secure-attention",
    responses={409: {"description": "not_rdp, agent_offline, or session_unhealthy"}},
)
async def secure_attention(name: str, sessions: Sessions, principal: Principal = Control) -> Done:
    """Send the remote desktop Ctrl+Alt+Del (which the client passes on to the server)."""
    return await sessions.rdp.secure_attention(principal, name)


@router.get(
    "/sessions/{name}/screenshot",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}, "description": "The screen now"},
        304: {"description": "The screen is the one of the ETag given in If-None-Match"},
        409: {"description": "session_unhealthy, or agent_offline"},
    },
)
async def screenshot(
    name: str,
    sessions: Sessions,
    principal: Principal = Read,
    format: Annotated[ImageFormat | None, Query(description="Else from Accept; png by default")] = None,
    quality: Annotated[int, Query(ge=1, le=95, description="jpeg and webp")] = 80,
    scale: Annotated[float | None, Query(gt=0, le=1, description="A fraction of the screen's size")] = None,
    max_width: Annotated[int | None, Query(ge=16, le=7680, description="Scaled down to at most this width")] = None,
    accept: Annotated[str | None, Header()] = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The session's screen, grabbed by its agent now. With If-None-Match naming the last ETag, 304 when the screen
    has not changed (nothing is encoded or sent)."""
    shot = ShotRequest(format=format or _from_accept(accept), quality=quality, scale=scale, max_width=max_width)
    got = await sessions.screenshot(principal, name, shot, _etag_of(if_none_match))
    headers = {
        "ETag": f'"{got.etag}"',
        "Cache-Control": "no-cache, private",
        "Vary": "Accept",
        "X-Screen-Width": str(got.screen_width),
        "X-Screen-Height": str(got.screen_height),
    }
    if got.unchanged or got.data is None:
        return Response(status_code=304, headers=headers)
    return Response(got.data, media_type=got.content_type, headers=headers)


def _from_accept(accept: str | None) -> ImageFormat:
    """The first of the image types the client names that robofleet makes; png when it names none."""
    for part in (accept or "").split(","):
        media = part.split(";")[0].strip().lower()
        if media in ACCEPTED:
            found: ImageFormat = ACCEPTED[media]  # type: ignore[assignment]
            return found
    return "png"


def _etag_of(header: str | None) -> str | None:
    """The first entity tag of If-None-Match, without its quotes and weak marker."""
    if not header:
        return None
    first = header.split(",")[0].strip()
    first = first.removeprefix("W/").strip('"')
    if len(first) > 256:
        raise Invalid("If-None-Match: not an ETag this server handed out", details={"field": "header.if-none-match"})
    return first or None


@router.post("/sessions/{name}/click")
async def click(name: str, data: Click, sessions: Sessions, principal: Principal = Control) -> Done:
    """Click at (x, y) of the screen (left, right or middle; double)."""
    return await sessions.send_input(principal, name, data)


@router.post("/sessions/{name}/type")
async def type_text(name: str, data: TypeText, sessions: Sessions, principal: Principal = Control) -> Done:
    """Type the text where the keyboard focus is."""
    return await sessions.send_input(principal, name, data)


@router.post("/sessions/{name}/key")
async def press_keys(name: str, data: Keys, sessions: Sessions, principal: Principal = Control) -> Done:
    """Press a key combination: "ctrl+alt+t", "Return", "Escape"."""
    return await sessions.send_input(principal, name, data)


@router.post("/sessions/{name}/scroll")
async def scroll(name: str, data: Scroll, sessions: Sessions, principal: Principal = Control) -> Done:
    """Scroll at (x, y): amount wheel clicks, positive down, negative up."""
    return await sessions.send_input(principal, name, data)


# ---- runs' evidence -------------------------------------------------------------------------------------------


@router.get("/runs/{run_id}/evidence")
def run_evidence(
    run_id: RunId, sessions: Sessions, principal: Principal = Depends(Require("robots:read"))
) -> EvidenceOut:
    """What was kept of a run that failed, was killed or stopped: its process tree, last output lines, and the
    URLs of its screenshot and recording (when its robot has a session). 404 when it has none."""
    return sessions.evidence.get(principal, run_id)


def _image_route(which: str) -> None:
    # Screens are sessions:read's (the run's robots:read is checked too, in the service).
    async def image(run_id: RunId, sessions: Sessions, principal: Principal = Read) -> Response:
        content_type, data = await run_in_threadpool(sessions.evidence.image, principal, run_id, which)
        return Response(data, media_type=content_type, headers={"Cache-Control": "private, max-age=3600"})

    image.__doc__ = f"The {which} of the run's evidence (404 when it has none)."
    router.add_api_route(
        f"/runs/{{run_id}}/evidence/{which}",
        image,
        methods=["GET"],
        name=f"run_evidence_{which}",
        response_class=Response,
        responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}}},
    )


for _which in ("screenshot", "recording"):
    _image_route(_which)
