"""`robofleet schedule list|show|create|preview|fire|pause|resume`: schedules of a running orchestrator, over its
HTTP API (so that a fire, a pause or a resume reaches the running engine at once)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from robofleet.client import ServerOption, TokenOption, call, connection, fail, settings_from

app = typer.Typer(no_args_is_help=True, help="Plan robots and actions on a running orchestrator.")


def _json_object(text: str, option: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{option} is not valid JSON: {exc}", 2)
    if not isinstance(parsed, dict):
        fail(f"{option} must be a JSON object", 2)
    return parsed


@app.command("list")
def list_schedules(
    ctx: typer.Context, limit: int = 100, server: ServerOption = None, token: TokenOption = None
) -> None:
    """The schedules, one line each: next fire and last outcome."""
    with connection(settings_from(ctx), server, token) as client:
        page = call(client, "GET", "/api/v1/schedules", params={"limit": limit})
    typer.echo(f"{'NAME':24} {'TRIGGER':10} {'TARGET':28} {'NEXT FIRE':27} {'LAST':16} STATE")
    for item in page["items"]:
        last = (item.get("last_fire") or {}).get("outcome") or "-"
        state = "broken" if item["broken"] else "paused" if item["paused"] else "on" if item["enabled"] else "off"
        target = f"{item['target']['action']} {item['target']['args'].get('name', '')}".strip()
        typer.echo(
            f"{item['name']:24} {item['trigger']['kind']:10} {target[:28]:28} {item['next_fire_at'] or '-':27} "
            f"{last:16} {state}"
        )


@app.command("show")
def show(ctx: typer.Context, name: str, server: ServerOption = None, token: TokenOption = None) -> None:
    """One schedule as JSON."""
    with connection(settings_from(ctx), server, token) as client:
        typer.echo(json.dumps(call(client, "GET", f"/api/v1/schedules/{name}"), indent=2))


@app.command("create")
def create(
    ctx: typer.Context,
    name: str,
    action: Annotated[str, typer.Option("--action", help="The action a fire submits")] = "robots.start",
    args: Annotated[str, typer.Option("--args", help="Its arguments as a JSON object")] = "{}",
    robot: Annotated[str | None, typer.Option("--robot", help="Shorthand for --args '{\"name\": ROBOT}'")] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="Cron expression (6 fields: with seconds)")] = None,
    every: Annotated[float | None, typer.Option("--every", help="Interval in seconds")] = None,
    at: Annotated[str | None, typer.Option("--at", help="Once, at this ISO time with offset")] = None,
    trigger: Annotated[str | None, typer.Option("--trigger", help="Any trigger as a JSON object")] = None,
    timezone: Annotated[str, typer.Option("--timezone", help="IANA zone")] = "UTC",
    calendar: Annotated[list[str] | None, typer.Option("--calendar", help="A calendar of excluded days")] = None,
    misfire: Annotated[str, typer.Option("--misfire", help="skip or run_once")] = "skip",
    grace: Annotated[float, typer.Option("--grace", help="Misfire grace in seconds")] = 60,
    overlap: Annotated[str, typer.Option("--overlap", help="skip, queue or parallel")] = "skip",
    description: Annotated[str, typer.Option("--description")] = "",
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """Create a schedule; give exactly one of --cron, --every, --at or --trigger."""
    given = [
        spec
        for spec in (
            {"kind": "cron", "expression": cron} if cron else None,
            {"kind": "interval", "seconds": every} if every else None,
            {"kind": "once", "at": at} if at else None,
            _json_object(trigger, "--trigger") if trigger else None,
        )
        if spec is not None
    ]
    if len(given) != 1:
        fail("give exactly one of --cron, --every, --at or --trigger", 2)
    target_args = _json_object(args, "--args")
    if robot:
        target_args["name"] = robot
    body = {
        "name": name,
        "target": {"action": action, "args": target_args},
        "trigger": given[0],
        "timezone": timezone,
        "calendars": calendar or [],
        "misfire": {"policy": misfire, "grace_seconds": grace},
        "overlap": overlap,
        "description": description,
    }
    with connection(settings_from(ctx), server, token) as client:
        typer.echo(json.dumps(call(client, "POST", "/api/v1/schedules", json=body), indent=2))


@app.command("preview")
def preview(
    ctx: typer.Context, name: str, count: int = 10, server: ServerOption = None, token: TokenOption = None
) -> None:
    """The next fires, one per line (calendars and windows applied)."""
    with connection(settings_from(ctx), server, token) as client:
        answer = call(client, "GET", f"/api/v1/schedules/{name}/preview", params={"count": count})
    for fire in answer["fires"]:
        typer.echo(fire)


def _post(ctx: typer.Context, name: str, verb: str, server: str | None, token: str | None) -> None:
    with connection(settings_from(ctx), server, token) as client:
        typer.echo(json.dumps(call(client, "POST", f"/api/v1/schedules/{name}/{verb}"), indent=2))


@app.command("fire")
def fire(ctx: typer.Context, name: str, server: ServerOption = None, token: TokenOption = None) -> None:
    """Fire the schedule's target now; prints the recorded fire."""
    _post(ctx, name, "fire", server, token)


@app.command("pause")
def pause(ctx: typer.Context, name: str, server: ServerOption = None, token: TokenOption = None) -> None:
    """Pause the schedule: it fires nothing until resumed."""
    _post(ctx, name, "pause", server, token)


@app.command("resume")
def resume(ctx: typer.Context, name: str, server: ServerOption = None, token: TokenOption = None) -> None:
    """Resume the schedule, planned again from now."""
    _post(ctx, name, "resume", server, token)
