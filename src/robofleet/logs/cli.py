"""`robofleet logs [--follow]`: read and follow the log store of a running orchestrator."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Annotated, Any

import httpx
import typer

from robofleet.client import ServerOption, TokenOption, call, connection, fail, settings_from
from robofleet.web.sse import HEARTBEAT_SECONDS

# A stream quiet for four heartbeats is dead (a host gone without closing): reopen it rather than wait forever.
STREAM_TIMEOUT = httpx.Timeout(10.0, read=4 * HEARTBEAT_SECONDS)
RECONNECT_BACKOFF = 0.5
MAX_RECONNECT_BACKOFF = 5.0


class StreamLost(Exception):
    pass


# What a robot printed must not steer the terminal (escape sequences, a carriage return overwriting the line) nor
# pass for records of its own: control characters are shown escaped, and a message's further lines indented.
_SHOWN = {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F] if chr(code) not in "\t\n"} | {ord("\n"): "\n    "}


def line(record: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return json.dumps(record, separators=(",", ":"))
    run = f" [{record['run_id']}]" if record.get("run_id") else ""
    when = record["time"].replace("T", " ").rstrip("Z")[:23]
    text = f"{record['source']}{run} {record['message']}".translate(_SHOWN)
    return f"{when} {record['level']:<8} {text}"


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
        follow_stream(client, filters, records[-1]["id"] if records else None, as_json)


def follow_stream(client: httpx.Client, filters: dict[str, str], last_id: int | None, as_json: bool) -> None:
    """Print each matching record as it is stored until Ctrl-C. A lost stream is reopened (with backoff) after the
    last record printed, so none is missed or printed twice; a refusal (4xx) exits at once with its message."""
    backoff = RECONNECT_BACKOFF
    announced = False
    signal.signal(signal.SIGINT, _leave)
    try:
        while True:
            headers = {"Last-Event-ID": str(last_id)} if last_id is not None else {}
            try:
                with client.stream(
                    "GET", "/api/v1/logs/stream", params=filters, headers=headers, timeout=STREAM_TIMEOUT
                ) as stream:
                    if 400 <= stream.status_code < 500:
                        stream.read()
                        fail(refusal(stream))
                    if stream.status_code >= 300:
                        raise StreamLost(f"answered {stream.status_code}")
                    for event, data in sse_events(stream.iter_lines()):
                        if event == "ready":
                            # Where the server has us, the backlog sent: a later resume starts from here.
                            last_id = json.loads(data)["last_id"]
                            backoff, announced = RECONNECT_BACKOFF, False
                        elif event == "log":
                            record = json.loads(data)
                            typer.echo(line(record, as_json))
                            last_id = record["id"]
                raise StreamLost("the server ended it")
            except (httpx.TransportError, StreamLost) as exc:
                if not announced:
                    typer.echo(f"robofleet: stream lost ({exc or type(exc).__name__}), reconnecting", err=True)
                    announced = True
            time.sleep(backoff)
            backoff = min(backoff * 2, MAX_RECONNECT_BACKOFF)
    except KeyboardInterrupt:
        return


def _leave(signum: int, frame: object) -> None:
    """Ctrl-C ends a follow at once, whatever it is doing: a KeyboardInterrupt raised inside the HTTP client's
    connection pool could leave it holding a lock that closing the stream then waits for (seen as a follow that
    never ended after a reconnect). Nothing is left to finish: what was printed is flushed."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def sse_events(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(event, data) of each server-sent event; comments (the heartbeats) and ids are skipped."""
    event, data = "message", list[str]()
    for raw in lines:
        if not raw:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif raw.startswith("event:"):
            event = raw[6:].strip()
        elif raw.startswith("data:"):
            data.append(raw[5:].removeprefix(" "))


def refusal(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{response.status_code} {error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code}: {response.text[:500]}"
