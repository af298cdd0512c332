"""`robofleet activity run|get|list`: call actions on a running orchestrator over its HTTP API."""

from __future__ import annotations

import json
from typing import Annotated, Any, NoReturn

import httpx
import typer

from robofleet.settings.model import Settings

app = typer.Typer(no_args_is_help=True, help="Run and inspect activities on a running orchestrator.")
ServerOption = Annotated[str | None, typer.Option("--server", help="Orchestrator URL (default: settings)")]
TokenOption = Annotated[str | None, typer.Option("--token", help="API token (default: client.token setting)")]


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"robofleet: {message}", err=True)
    raise typer.Exit(code)


def connection(settings: Settings, server: str | None, token: str | None) -> httpx.Client:
    url = server or settings.client.url or settings.server.public_url
    if not url:
        scheme = "https" if settings.server.tls_cert else "http"
        host = "127.0.0.1" if settings.server.host in ("0.0.0.0", "::") else settings.server.host  # noqa: S104
        url = f"{scheme}://{host}:{settings.server.port}"
    secret = token or (settings.client.token.get_secret_value() if settings.client.token else None)
    if not secret:
        fail("no API token: pass --token, or set client.token (ROBOFLEET_CLIENT__TOKEN)", 2)
    return httpx.Client(base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {secret}"}, timeout=30)


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        fail(f"cannot reach {client.base_url}: {exc}")
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            fail(f"{response.status_code} {error['code']}: {error['message']}")
        except (ValueError, KeyError, TypeError):
            fail(f"{response.status_code}: {response.text[:500]}")
    return response.json()


def settings_from(ctx: typer.Context) -> Settings:
    loader = ctx.obj
    settings: Settings = loader()
    return settings


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
