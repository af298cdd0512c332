"""`robofleet logs [--follow]`: read and follow the log store of a running orchestrator."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import typer

from robofleet.client import ServerOption, TokenOption, call, connection, fail, settings_from


def line(record: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return json.dumps(record, separators=(",", ":"))
    run = f" [{record['run_id']}]" if record.get("run_id") else ""
    time = record["time"].replace("T", " ").rstrip("Z")[:23]
    return f"{time} {record['level']:<8} {record['source']}{run} {record['message']}"


def logs(
    ctx: typer.Context,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new records as they arrive")] = False,
    level: Annotated[str | None, typer.Option(help="Minimum level: DEBUG, INFO, WARNING, ERROR, CRITICAL")] = None,
    source: Annotated[str | None, typer.Option(help="Source or glob, e.g. robot:* or agent:pc-01")] = None,
    run: Annotated[str | None, typer.Option("--run", help="Only this run id")] = None,
    since: Annotated[str | None, typer.Option(help="ISO time, e.g. 2026-01-31T08:00:00Z")] = None,
    until: Annotated[str | None, typer.Option(help="ISO time")] = None,
    text: Annotated[str | None, typer.Option("--grep", "-q", help="Words that must all appear")] = None,
    limit: Annotated[int, typer.Option(help="How many of the newest records to print first")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """Print the newest matching log records, oldest first; with --follow, keep printing new ones."""
    filters = {
        key: value
        for key, value in {
            "level": level,
            "source": source,
            "run_id": run,
            "since": since,
            "until": until,
            "q": text,
        }.items()
        if value
    }
    if not 1 <= limit <= 1000:
        fail("--limit must be between 1 and 1000", 2)
    with connection(settings_from(ctx), server, token) as client:
        page = call(client, "GET", "/api/v1/logs", params={**filters, "limit": limit, "order": "desc"})
        records = list(reversed(page["items"]))
        for record in records:
            typer.echo(line(record, as_json))
        if not follow:
            return
        after = records[-1]["id"] if records else None
        params = {**filters, **({"after": after} if after is not None else {})}
        try:
            with client.stream("GET", "/api/v1/logs/stream", params=params, timeout=None) as stream:
                if stream.status_code >= 400:
                    fail(f"{stream.status_code}: {stream.read().decode()[:500]}")
                event = ""
                for raw in stream.iter_lines():
                    if raw.startswith("event:"):
                        event = raw[6:].strip()
                    elif raw.startswith("data:") and event == "log":
                        typer.echo(line(json.loads(raw[5:]), as_json))
        except httpx.HTTPError as exc:
            fail(f"the stream from {client.base_url} ended: {exc}")
        except KeyboardInterrupt:
            return
