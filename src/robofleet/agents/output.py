"""Robot output lines as log records: one rule for the embedded agent and for remote ones."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from robofleet.logs.ingest import Row

STDOUT_LEVEL, STDERR_LEVEL = 20, 30  # INFO and WARNING


def output_rows(lines: list[dict[str, Any]], agent: str) -> list[Row]:
    """A record per line: source robot:<label>, the run id, and in `fields` the stream, the agent and the line's
    byte offset in its stream (which names the line: output is delivered at least once)."""
    now = datetime.now(UTC)
    return [
        Row(
            now,
            STDERR_LEVEL if line["stream"] == "stderr" else STDOUT_LEVEL,
            f"robot:{line['label'] or 'unknown'}",
            str(line["run_id"]),
            str(line["line"]),
            {"stream": line["stream"], "agent": agent}
            | ({"offset": line["offset"]} if isinstance(line.get("offset"), int) else {}),
            False,
        )
        for line in lines
    ]
