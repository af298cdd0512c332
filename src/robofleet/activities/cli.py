"""`robofleet activity run|get|list`: call actions on a running orchestrator over its HTTP API."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from robofleet.client import ServerOption, TokenOption, call, connection, fail, settings_from

app = typer.Typer(no_args_is_help=True, help="Run and inspect activities on a running orchestrator.")


@app.command("run")
def run(
    ctx: typer.Context,
    action: str,
    args: Annotated[str, typer.Option("--args", help="Arguments as a JSON object")] = "{}",
    run_async: Annotated[bool, typer.Option("--async", help="Run concurrently instead of in the sync queue")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the outcome")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait")] = 60,
    key: Annotated[str | None, typer.Option("--idempotency-key", help="Run at most once per key")] = None,
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """Submit ACTION and print the activity as JSON; exit 1 when it failed or was cancelled."""
    try:
        parsed = json.loads(args)
    except json.JSONDecodeError as exc:
        fail(f"--args is not valid JSON: {exc}", 2)
    if not isinstance(parsed, dict):
        fail('--args must be a JSON object, e.g. \'{"message": "hi"}\'', 2)
    body: dict[str, Any] = {"action": action, "args": parsed, "mode": "async" if run_async else "sync"}
    if key:
        body["idempotency_key"] = key
    with connection(settings_from(ctx), server, token) as client:
        answer = call(
            client,
            "POST",
            "/api/v1/activities",
            json=body,
            params={"wait": min(timeout, 300)} if wait else None,
            timeout=timeout + 30,
        )
    activity = answer["activities"][0]
    typer.echo(json.dumps(activity, indent=2))
    if activity["state"] in ("failed", "cancelled"):
        raise typer.Exit(1)
    if wait and activity["state"] not in ("succeeded",):
        fail(f"activity {activity['id']} is still {activity['state']} after {timeout:g} s", 3)


@app.command("get")
def get(ctx: typer.Context, activity_id: int, server: ServerOption = None, token: TokenOption = None) -> None:
    """Print one activity as JSON."""
    with connection(settings_from(ctx), server, token) as client:
        typer.echo(json.dumps(call(client, "GET", f"/api/v1/activities/{activity_id}"), indent=2))


@app.command("list")
def list_activities(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help="queued, running, succeeded, failed or cancelled")] = None,
    action: Annotated[str | None, typer.Option(help="Name or prefix")] = None,
    limit: int = 20,
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """The newest activities, one line each."""
    params = {key: value for key, value in {"state": state, "action": action, "limit": limit}.items() if value}
    with connection(settings_from(ctx), server, token) as client:
        page = call(client, "GET", "/api/v1/activities", params=params)
    typer.echo(f"{'ID':>8}  {'STATE':10} {'MODE':5} {'ACTION':28} {'REQUESTED BY':28} CREATED")
    for item in page["items"]:
        typer.echo(
            f"{item['id']:>8}  {item['state']:10} {item['mode']:5} {item['action']:28} "
            f"{item['requested_by'][:28]:28} {item['created_at']}"
        )


@app.command("actions")
def actions(
    ctx: typer.Context,
    fragment: Annotated[str, typer.Argument(help="Filter")] = "",
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """The registered actions with their permission and summary."""
    with connection(settings_from(ctx), server, token) as client:
        listed = call(client, "GET", "/api/v1/actions", params={"q": fragment})
    for item in listed:
        typer.echo(f"{item['name']:28} {item['permission']:18} {item['summary']}")
