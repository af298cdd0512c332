"""Graphical sessions as actions: the same service functions as their routes, with the same permissions
(sessions:read to look and take screenshots, sessions:control to click, type and press keys and to connect,
disconnect, log off and reconnect rdp sessions, sessions:admin to define and restart sessions).

An rdp session's password is a SecretStr in sessions.create and sessions.update: the activity's args show it masked."""

from __future__ import annotations

import base64
from typing import Any

from pydantic import Field, SecretStr

from robofleet.activities.registry import ActionContext, Params, Registry
from robofleet.sessions.schemas import (
    KEYS_PATTERN,
    MAX_TEXT,
    Button,
    Click,
    ImageFormat,
    Keys,
    LogoffRequest,
    SessionCreate,
    SessionName,
    SessionUpdate,
    ShotRequest,
    State,
    TypeText,
)
from robofleet.sessions.service import SessionsService


class NameParams(Params):
    name: SessionName


class ListParams(Params):
    limit: int = Field(100, ge=1, le=500)
    cursor: str | None = Field(None, max_length=200)
    agent: str | None = Field(None, max_length=64)
    state: State | None = None
    tag: str | None = Field(None, max_length=64)


class CreateParams(SessionCreate):
    pass


class UpdateParams(SessionUpdate):
    name: SessionName


class ShotParams(NameParams):
    format: ImageFormat = "png"
    quality: int = Field(80, ge=1, le=95)
    scale: float | None = Field(None, gt=0, le=1)
    max_width: int | None = Field(None, ge=16, le=7680)


class ClickParams(NameParams):
    x: int = Field(ge=0)
    y: int = Field(ge=0)
    button: Button = "left"
    double: bool = False


class TypeParams(NameParams):
    # What is typed may be a password: a secret, so the activity's stored args mask it.
    text: SecretStr = Field(min_length=1, max_length=MAX_TEXT)


class KeyParams(NameParams):
    keys: str = Field(pattern=KEYS_PATTERN)


class LogoffParams(NameParams, LogoffRequest):
    pass


def service(ctx: ActionContext) -> SessionsService:
    found = ctx.app.service("sessions")
    assert isinstance(found, SessionsService)
    return found


def register(registry: Registry) -> None:
    @registry.register("sessions.list", permission="sessions:read", params=ListParams)
    def list_sessions(ctx: ActionContext, params: ListParams) -> dict[str, Any]:
        """List the graphical sessions with their state, a page at a time."""
        page = service(ctx).list_sessions(ctx.principal, **params.model_dump())
        return {"items": [item.model_dump(mode="json") for item in page.items], "next_cursor": page.next_cursor}

    @registry.register("sessions.get", permission="sessions:read", params=NameParams)
    def get_session(ctx: ActionContext, params: NameParams) -> dict[str, Any]:
        """One session's definition and state."""
        return service(ctx).get_session(ctx.principal, params.name).model_dump(mode="json")

    @registry.register("sessions.create", permission="sessions:admin", params=CreateParams)
    def create(ctx: ActionContext, params: CreateParams) -> dict[str, Any]:
        """Create a graphical session (its agent starts it at the next sync)."""
        data = SessionCreate(**params.model_dump())
        return service(ctx).create_session(ctx.principal, data).model_dump(mode="json")

    @registry.register("sessions.update", permission="sessions:admin", params=UpdateParams)
    def update(ctx: ActionContext, params: UpdateParams) -> dict[str, Any]:
        """Change a session (fields left out keep their value)."""
        data = SessionUpdate(**params.model_dump(exclude={"name"}, exclude_unset=True))
        return service(ctx).update_session(ctx.principal, params.name, data).model_dump(mode="json")

    @registry.register("sessions.delete", permission="sessions:admin", params=NameParams)
    def delete(ctx: ActionContext, params: NameParams) -> dict[str, Any]:
        """Delete a session (refused while robots name it)."""
        service(ctx).delete_session(ctx.principal, params.name)
        return {"deleted": params.name}

    @registry.register("sessions.restart", permission="sessions:admin", params=NameParams)
    async def restart(ctx: ActionContext, params: NameParams) -> dict[str, Any]:
        """Stop and start a session now."""
        return (await service(ctx).restart(ctx.principal, params.name)).model_dump(mode="json")

    @registry.register("sessions.screenshot", permission="sessions:read", params=ShotParams)
    async def screenshot(ctx: ActionContext, params: ShotParams) -> dict[str, Any]:
        """A session's screen now: {"content_type", "data" (base64), "width", "height", "etag"}."""
        shot = ShotRequest(**params.model_dump(exclude={"name"}))
        got = await service(ctx).screenshot(ctx.principal, params.name, shot)
        return {
            "etag": got.etag,
            "content_type": got.content_type,
            "data": base64.b64encode(got.data or b"").decode(),
            "width": got.width,
            "height": got.height,
            "screen_width": got.screen_width,
            "screen_height": got.screen_height,
        }

    @registry.register("sessions.click", permission="sessions:control", params=ClickParams)
    async def click(ctx: ActionContext, params: ClickParams) -> dict[str, Any]:
        """Click at (x, y) of a session's screen."""
        given = Click(**params.model_dump(exclude={"name"}))
        return (await service(ctx).send_input(ctx.principal, params.name, given)).model_dump()

    @registry.register("sessions.type", permission="sessions:control", params=TypeParams)
    async def type_text(ctx: ActionContext, params: TypeParams) -> dict[str, Any]:
        """Type text on a session's display."""
        given = TypeText(text=params.text.get_secret_value())
        return (await service(ctx).send_input(ctx.principal, params.name, given)).model_dump()

    @registry.register("sessions.key", permission="sessions:control", params=KeyParams)
    async def key(ctx: ActionContext, params: KeyParams) -> dict[str, Any]:
        """Press a key combination on a session's display ("ctrl+alt+t", "Return")."""
        return (await service(ctx).send_input(ctx.principal, params.name, Keys(keys=params.keys))).model_dump()

    @registry.register("sessions.connect", permission="sessions:control", params=NameParams)
    async def connect(ctx: ActionContext, params: NameParams) -> dict[str, Any]:
        """Connect an rdp session now and keep it connected (an offline agent connects it when it is back)."""
        return (await service(ctx).rdp.connect(ctx.principal, params.name)).model_dump(mode="json")

    @registry.register("sessions.disconnect", permission="sessions:control", params=NameParams)
    async def disconnect(ctx: ActionContext, params: NameParams) -> dict[str, Any]:
        """Disconnect an rdp session (the server session stays) and keep it disconnected."""
        return (await service(ctx).rdp.disconnect(ctx.principal, params.name)).model_dump(mode="json")

    @registry.register("sessions.logoff", permission="sessions:control", params=LogoffParams)
    async def logoff(ctx: ActionContext, params: LogoffParams) -> dict[str, Any]:
        """Log an rdp session's user off (the server session ends)."""
        request = LogoffRequest(wait_seconds=params.wait_seconds)
        return (await service(ctx).rdp.logoff(ctx.principal, params.name, request)).model_dump(mode="json")

    @registry.register("sessions.reconnect", permission="sessions:control", params=NameParams)
    async def reconnect(ctx: ActionContext, params: NameParams) -> dict[str, Any]:
        """End an rdp session's client and start a new one now (to the same server session)."""
        return (await service(ctx).rdp.reconnect(ctx.principal, params.name)).model_dump(mode="json")

    @registry.register("sessions.secure_attention", permission="sessions:control", params=NameParams)
    async def secure_attention(ctx: ActionContext, params: NameParams) -> dict[str, Any]:
        """Send an rdp session's remote desktop Ctrl+Alt+Del."""
        return (await service(ctx).rdp.secure_attention(ctx.principal, params.name)).model_dump()
