"""`robofleet queue list|show|add|items|retry|export`: the queues of a running orchestrator, over its HTTP API (so
that an item added here wakes the workers waiting for one at once)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from robofleet.client import ServerOption, TokenOption, call, connection, fail, settings_from
from robofleet.queues.item_files import MalformedFile, read_items

app = typer.Typer(no_args_is_help=True, help="Work queues of a running orchestrator: their items, retries, exports.")
ADD_BATCH = 1000  # items per request of `queue add --file`
WAITING = ("new", "retry")

StateOption = Annotated[list[str] | None, typer.Option("--state", help="Only items in this state; repeatable")]
PrefixOption = Annotated[str | None, typer.Option("--reference-prefix", help="Only references starting so")]
SinceOption = Annotated[str | None, typer.Option("--since", help="Added at or after (ISO time with offset)")]
UntilOption = Annotated[str | None, typer.Option("--until", help="Added before (ISO time with offset)")]


def _filters(state: list[str] | None, prefix: str | None, since: str | None, until: str | None) -> dict[str, Any]:
    given = {"state": state or None, "reference_prefix": prefix, "since": since, "until": until}
    return {key: value for key, value in given.items() if value is not None}


@app.command("list")
def list_queues(ctx: typer.Context, server: ServerOption = None, token: TokenOption = None) -> None:
    """The queues, one line each: items waiting, in progress, done, failed and abandoned."""
    with connection(settings_from(ctx), server, token) as client:
        queues: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = call(
                client, "GET", "/api/v1/queues", params={"limit": 500, **({"cursor": cursor} if cursor else {})}
            )
            queues += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                break
        typer.echo(f"{'NAME':28} {'WAITING':>8} {'RUNNING':>8} {'DONE':>8} {'FAILED':>8} {'ABANDONED':>9} OLDEST")
        for queue in queues:
            stats = call(client, "GET", f"/api/v1/queues/{queue['name']}/stats")
            counts = stats["counts"]
            oldest = stats["oldest_waiting_seconds"]
            typer.echo(
                f"{queue['name']:28} {sum(counts[s] for s in WAITING):8} {counts['in_progress']:8} "
                f"{counts['done']:8} {counts['failed']:8} {counts['abandoned']:9} "
                f"{'-' if oldest is None else f'{oldest:.0f} s'}"
            )


@app.command("show")
def show(ctx: typer.Context, name: str, server: ServerOption = None, token: TokenOption = None) -> None:
    """A queue's definition and figures as JSON."""
    with connection(settings_from(ctx), server, token) as client:
        queue = call(client, "GET", f"/api/v1/queues/{name}")
        queue["stats"] = call(client, "GET", f"/api/v1/queues/{name}/stats")
    typer.echo(json.dumps(queue, indent=2))


SHOWN_PROBLEMS = 50


def _read_items(path: str) -> list[dict[str, Any]]:
    """Items of a file as the panel's upload reads it (item_files): a JSON array or NDJSON of item objects, or CSV
    with a header row; `-` is standard input. Each malformed line is named `path:LINE`, and then nothing is added."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", 2)
    except UnicodeDecodeError as exc:
        fail(f"{path} is not UTF-8 text (byte {exc.start}); nothing was added", 2)
    try:
        return read_items(path, text)
    except MalformedFile as exc:
        problems = exc.problems
    if len(problems) == 1:
        where = path if problems[0].line is None else f"{path}:{problems[0].line}"
        fail(f"{where}: {problems[0].message}; nothing was added", 2)
    for problem in problems[:SHOWN_PROBLEMS]:
        typer.echo(f"{path}:{problem.line}: {problem.message}", err=True)
    more = f" ({len(problems) - SHOWN_PROBLEMS} more not shown)" if len(problems) > SHOWN_PROBLEMS else ""
    fail(f"{path}: {len(problems)} malformed line(s){more}; nothing was added", 2)


@app.command("add")
def add(
    ctx: typer.Context,
    name: str,
    payload: Annotated[str | None, typer.Option("--payload", help="One item's payload as a JSON object")] = None,
    reference: Annotated[str | None, typer.Option("--reference")] = None,
    priority: Annotated[int, typer.Option("--priority", help="Higher is leased first (0-1000)")] = 0,
    deadline: Annotated[str | None, typer.Option("--deadline", help="ISO time with offset")] = None,
    postpone_until: Annotated[str | None, typer.Option("--postpone-until", help="ISO time with offset")] = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            help="Many items: a JSON array or NDJSON of item objects, or CSV with a header row as the panel's upload "
            "takes it (columns reference, priority, deadline, postpone_until, payload; others go into the payload); "
            "'-': stdin",
        ),
    ] = None,
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """Add one item (--payload and the other options) or many (--file); prints the ids and what was refused."""
    if file is not None:
        if payload is not None or reference is not None:
            fail("give --file or the one item's options, not both", 2)
        items = _read_items(file)
    else:
        try:
            body = json.loads(payload or "{}")
        except json.JSONDecodeError as exc:
            fail(f"--payload is not valid JSON: {exc}", 2)
        item = {"payload": body, "reference": reference, "priority": priority}
        item.update(
            {key: value for key, value in (("deadline", deadline), ("postpone_until", postpone_until)) if value}
        )
        items = [item]
    added: list[int] = []
    refused: list[dict[str, Any]] = []
    with connection(settings_from(ctx), server, token) as client:
        for start in range(0, len(items), ADD_BATCH):
            answer = call(
                client, "POST", f"/api/v1/queues/{name}/items", json={"items": items[start : start + ADD_BATCH]}
            )
            added += answer["ids"]
            refused += [{**refusal, "index": refusal["index"] + start} for refusal in answer["refused"]]
    typer.echo(json.dumps({"ids": added, "refused": refused}) if len(items) == 1 else f"added {len(added)} item(s)")
    for refusal in refused if len(items) > 1 else []:
        typer.echo(f"refused item {refusal['index']}: {refusal['message']}", err=True)


@app.command("items")
def items(
    ctx: typer.Context,
    name: str,
    state: StateOption = None,
    reference_prefix: PrefixOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: int = 100,
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """The queue's items, newest first, one line each."""
    params = {**_filters(state, reference_prefix, since, until), "limit": limit}
    with connection(settings_from(ctx), server, token) as client:
        page = call(client, "GET", f"/api/v1/queues/{name}/items", params=params)
    typer.echo(f"{'ID':>10} {'STATE':12} {'TRIES':>5} {'PRIO':>4} {'REFERENCE':24} {'ADDED':26} ERROR")
    for item in page["items"]:
        error = (item["error"] or "").replace("\n", " ")[:60]
        typer.echo(
            f"{item['id']:10} {item['state']:12} {item['attempts']:5} {item['priority']:4} "
            f"{(item['reference'] or '-')[:24]:24} {item['created_at'][:26]:26} {error}"
        )


@app.command("retry")
def retry(
    ctx: typer.Context,
    name: str,
    item_id: Annotated[list[int] | None, typer.Option("--id", help="An item to retry; repeatable")] = None,
    state: StateOption = None,
    reference_prefix: PrefixOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """Retry the queue's failed and abandoned items (all of them, or those the options name); each --id left as it
    was is said on stderr with its state (or why)."""
    body = _filters(state, reference_prefix, since, until)
    if item_id:
        body["ids"] = item_id
    with connection(settings_from(ctx), server, token) as client:
        answer = call(client, "POST", f"/api/v1/queues/{name}/items/retry", json=body)
    typer.echo(f"{answer['count']} item(s) to retry")
    for skipped in answer["skipped"]:
        why = f"it is {skipped['state']}" if skipped["reason"] == "wrong_state" else skipped["reason"].replace("_", " ")
        typer.echo(f"item {skipped['id']} not retried: {why}", err=True)


@app.command("export")
def export(
    ctx: typer.Context,
    name: str,
    fmt: Annotated[str, typer.Option("--format", help="csv or ndjson")] = "ndjson",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout)")] = None,
    state: StateOption = None,
    reference_prefix: PrefixOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """The queue's items, oldest first, as CSV or NDJSON, streamed to a file or stdout."""
    params = {**_filters(state, reference_prefix, since, until), "format": fmt}
    with connection(settings_from(ctx), server, token) as client:
        try:
            with client.stream("GET", f"/api/v1/queues/{name}/items/export", params=params, timeout=None) as answer:
                if answer.status_code >= 400:
                    answer.read()
                    call_error(answer)
                sink = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
                try:
                    for chunk in answer.iter_text():
                        sink.write(chunk)
                finally:
                    if output:
                        sink.close()
        except httpx.HTTPError as exc:
            fail(f"cannot reach {client.base_url}: {exc}")


def call_error(answer: httpx.Response) -> None:
    try:
        error = answer.json()["error"]
    except (ValueError, KeyError, TypeError):
        fail(f"{answer.status_code}: {answer.text[:500]}")
    fail(f"{answer.status_code} {error['code']}: {error['message']}")
