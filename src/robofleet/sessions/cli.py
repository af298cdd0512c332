"""`robofleet session list|show|screenshot|restart|connect|disconnect|logoff|reconnect`: the graphical sessions of a
running orchestrator, over its HTTP API (a screenshot is taken by the session's agent, which only the orchestrator
reaches; an rdp session is connected and logged off by it too)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from robofleet.client import ServerOption, TokenOption, call, connection, fail, settings_from

app = typer.Typer(no_args_is_help=True, help="Graphical sessions of a running orchestrator: states, screens.")
FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}


@app.command("list")
def list_sessions(
    ctx: typer.Context,
    agent: Annotated[str | None, typer.Option(help="Sessions of this agent")] = None,
    state: Annotated[str | None, typer.Option(help="Sessions in this state")] = None,
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """The sessions, one line each: agent, kind, size, display, state (and why), restarts."""
    with connection(settings_from(ctx), server, token) as client:
        sessions: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = {"limit": 500, "agent": agent, "state": state, "cursor": cursor}
            page = call(client, "GET", "/api/v1/sessions", params={k: v for k, v in params.items() if v is not None})
            sessions += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                break
    typer.echo(f"{'NAME':24} {'AGENT':16} {'KIND':7} {'SIZE':11} {'DISPLAY':8} {'RESTARTS':>8} STATE")
    for session in sessions:
        size = f"{session['width']}x{session['height']}"
        reason = f" ({session['state_reason']})" if session["state_reason"] and session["state"] != "healthy" else ""
        typer.echo(
            f"{session['name']:24} {session['agent']:16} {session['kind']:7} {size:11} "
            f"{session['actual_display'] or '-':8} {session['restarts']:8} {session['state']}{reason}"
        )


@app.command("show")
def show(ctx: typer.Context, name: str, server: ServerOption = None, token: TokenOption = None) -> None:
    """A session's definition, state and latest history as JSON."""
    with connection(settings_from(ctx), server, token) as client:
        session = call(client, "GET", f"/api/v1/sessions/{name}")
        session["events"] = call(client, "GET", f"/api/v1/sessions/{name}/events", params={"limit": 20})["items"]
    typer.echo(json.dumps(session, indent=2))


@app.command("screenshot")
def screenshot(
    ctx: typer.Context,
    name: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="The image file; its suffix picks the format")],
    scale: Annotated[float | None, typer.Option(help="A fraction of the screen's size, e.g. 0.5")] = None,
    max_width: Annotated[int | None, typer.Option(help="Scaled down to at most this width")] = None,
    quality: Annotated[int, typer.Option(help="jpeg and webp: 1..95")] = 80,
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """Save the session's screen now as PNG, JPEG or WebP (by the file's suffix)."""
    fmt = FORMATS.get(output.suffix.lower())
    if fmt is None:
        fail(f"{output}: name a .png, .jpg or .webp file", 2)
    given: dict[str, str | int | float | None] = {
        "format": fmt,
        "quality": quality,
        "scale": scale,
        "max_width": max_width,
    }
    params = {key: value for key, value in given.items() if value is not None}
    with connection(settings_from(ctx), server, token) as client:
        try:
            response = client.get(f"/api/v1/sessions/{name}/screenshot", params=params)
        except httpx.HTTPError as exc:
            fail(f"cannot reach {client.base_url}: {exc}")
        if response.status_code >= 400:
            call(client, "GET", f"/api/v1/sessions/{name}/screenshot", params=params)  # says why, and exits
            fail(f"{response.status_code}: {response.text[:500]}")
    try:
        output.write_bytes(response.content)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")
    size = f"{response.headers.get('X-Screen-Width', '?')}x{response.headers.get('X-Screen-Height', '?')}"
    typer.echo(f"{output}: {len(response.content):,} bytes of {fmt} (screen {size})")


@app.command("restart")
def restart(ctx: typer.Context, name: str, server: ServerOption = None, token: TokenOption = None) -> None:
    """Stop and start the session now."""
    with connection(settings_from(ctx), server, token) as client:
        session = call(client, "POST", f"/api/v1/sessions/{name}/restart")
    typer.echo(f"{session['name']}: {session['state']}, {session['restarts']} restart(s)")


def _rdp_line(session: dict[str, Any]) -> str:
    """An rdp session after an operation: its state (and why), whether it is to be connected, its client's counts."""
    reason = f" ({session['state_reason']})" if session.get("state_reason") and session["state"] != "healthy" else ""
    connection = session.get("connection") or {}
    counts = f", {connection.get('connects', 0)} connect(s), {connection.get('drops', 0)} drop(s)" if connection else ""
    intent = "connect" if session.get("connect") else "stay disconnected"
    return f"{session['name']}: {session['state']}{reason}; asked to {intent}{counts}"


def _rdp_operation(ctx: typer.Context, name: str, operation: str, server: str | None, token: str | None) -> None:
    with connection(settings_from(ctx), server, token) as client:
        session = call(client, "POST", f"/api/v1/sessions/{name}/{operation}")
    typer.echo(_rdp_line(session))


@app.command("connect")
def connect(ctx: typer.Context, name: str, server: ServerOption = None, token: TokenOption = None) -> None:
    """Connect an rdp session now and keep it connected (an offline agent connects it when it is back)."""
    _rdp_operation(ctx, name, "connect", server, token)


@app.command("disconnect")
def disconnect(ctx: typer.Context, name: str, server: ServerOption = None, token: TokenOption = None) -> None:
    """Disconnect an rdp session (the server session stays) and keep it disconnected."""
    _rdp_operation(ctx, name, "disconnect", server, token)


@app.command("reconnect")
def reconnect(ctx: typer.Context, name: str, server: ServerOption = None, token: TokenOption = None) -> None:
    """End an rdp session's client and start a new one now (to the same server session)."""
    _rdp_operation(ctx, name, "reconnect", server, token)


@app.command("logoff")
def logoff(
    ctx: typer.Context,
    name: str,
    wait: Annotated[float, typer.Option(help="Seconds the client is given to end after the logoff steps")] = 20,
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """Log an rdp session's user off: the server session ends (the next connect starts a new one)."""
    with connection(settings_from(ctx), server, token) as client:
        session = call(
            client, "POST", f"/api/v1/sessions/{name}/logoff", json={"wait_seconds": wait}, timeout=wait + 240
        )
    typer.echo(_rdp_line(session))
