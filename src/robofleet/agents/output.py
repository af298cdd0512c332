"""Robot output lines as log rows, a row per line: one rule for the embedded agent and for remote ones. Their levels
and which lines make one record (a traceback, say) are the log store's to read (logs/robot_output.py), by the
format of each run's robot."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from robofleet.logs.ingest import Row

LINE_LEVEL = 20  # INFO, on either stream, until the line's own level is read from it


def output_rows(lines: list[dict[str, Any]], agent: str) -> list[Row]:
    """A record per line: source robot:<label>, the run id, and in `fields` the stream, the agent and the line's
    byte offset in its stream (which names the line: output is delivered at least once)."""
    now = datetime.now(UTC)
    return [
        Row(
            now,
            LINE_LEVEL,
            f"robot:{line['label'] or 'unknown'}",
            str(line["run_id"]),
            str(line["line"]),
            {"stream": line["stream"], "agent": agent}
            | ({"offset": line["offset"]} if isinstance(line.get("offset"), int) else {}),
            False,
        )
        for line in lines
    ]
