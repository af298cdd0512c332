"""`robofleet runs [RUN_ID]`: the runs of a running orchestrator across its robots, filtered as GET /api/v1/runs
filters them, each with its duration and why it failed; with a run's id, that run with its timeline."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from robofleet.client import ServerOption, TokenOption, call, connection, fail, settings_from
from robofleet.robots.reasons import duration_text


def when(value: str | None) -> str:
    return value.replace("T", " ")[:19] if value else "-"


def runs(
    ctx: typer.Context,
    run_id: Annotated[int | None, typer.Argument(help="Show this run with its timeline")] = None,
    robot: Annotated[str | None, typer.Option(help="Runs of this robot")] = None,
    state: Annotated[
        list[str] | None, typer.Option(help="In this state (repeat it: --state failed --state lost)")
    ] = None,
    agent: Annotated[str | None, typer.Option(help="Run on this agent")] = None,
    since: Annotated[str | None, typer.Option(help="Created at or after this ISO time with its zone")] = None,
    until: Annotated[str | None, typer.Option(help="Created before this ISO time with its zone")] = None,
    origin: Annotated[
        list[str] | None, typer.Option(help="Started by: user, token, schedule, restart, cli or system (repeatable)")
    ] = None,
    by: Annotated[str | None, typer.Option("--by", help="Started by this user (or schedule:<name>)")] = None,
    limit: Annotated[int, typer.Option(help="How many runs, newest first (at most 1000)")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """The newest runs across robots, one line each: state, duration, who started it and why it failed."""
    if not 1 <= limit <= 1000:
        fail("--limit must be between 1 and 1000", 2)
    with connection(settings_from(ctx), server, token) as client:
        if run_id is not None:
            show(call(client, "GET", f"/api/v1/runs/{run_id}"), as_json)
            return
        params: dict[str, Any] = {
            key: value
            for key, value in {
                "robot": robot,
                "state": state or None,
                "agent": agent,
                "since": since,
                "until": until,
                "origin": origin or None,
                "requested_by": by,
                "limit": limit,
            }.items()
            if value
        }
        page = call(client, "GET", "/api/v1/runs", params=params)
    if as_json:
        for item in page["items"]:
            typer.echo(json.dumps(item, separators=(",", ":")))
        return
    typer.echo(
        f"{'ID':>8} {'ROBOT':20} {'STATE':9} {'AGENT':12} {'CREATED (UTC)':19} {'DURATION':>13} {'BY':24} REASON"
    )
    for item in page["items"]:
        typer.echo(
            f"{item['id']:>8} {item['robot'][:20]:20} {item['state']:9} {item['agent'][:12]:12} "
            f"{when(item['created_at']):19} {duration_text(item['duration_seconds']):>13} "
            f"{item['requested_by'][:24]:24} {item['error'] or ''}"
        )
    if page.get("next_cursor"):
        typer.echo("(more runs match: narrow the filters or raise --limit, at most 1000)", err=True)


def show(run: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(run, indent=2))
        return
    exit_code = "-" if run["exit_code"] is None else f"{run['exit_code']} ({run['exit_meaning']})"
    for label, value in (
        ("run", f"{run['id']} of {run['robot']} on agent {run['agent']}"),
        ("state", run["state"]),
        ("started by", f"{run['requested_by']} ({run['origin']})"),
        ("created", when(run["created_at"])),
        ("started", when(run["started_at"])),
        ("ended", when(run["ended_at"])),
        ("duration", duration_text(run["duration_seconds"])),
        ("exit code", exit_code),
        ("reason", run["error"] or "-"),
    ):
        typer.echo(f"{label + ':':12} {value}")
    typer.echo("timeline:")
    for change in run["transitions"]:
        note = f"  {change['reason']}" if change.get("reason") else ""
        how = f" ({change['pause']})" if change.get("pause") else ""
        typer.echo(f"  {when(change['at'])}  {change['state'] + how:20} by {change['by']}{note}")
