"""A robot's output lines as log records: each line's level read by its robot's `log_format` (line_formats.py), and
the lines of one block — a traceback, a record of the robot's logging with its traceback, the indented lines under
a line, or whatever does not match a format the robot declared — as one record.

Lines come one row each from the agents (agents/output.py), in the order of each stream; `records` groups the
consecutive rows of one run and stream. The run's spool files keep no write boundaries, so a block is told by its
shape:
- a line that carries a level (its format's head) begins a record;
- an indented line continues the record before it (traceback frames, carets, pretty-printed data);
- `Traceback (most recent call last):` continues a record at ERROR or above (logging.exception's), and otherwise
  begins a record at ERROR (an uncaught exception); its frames and the exception line that ends it follow, and so
  do a chained exception's sentence and traceback;
- with a format the robot declared, any line that does not match it continues the record before it;
- with `plain`, every line is a record of its own.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from enum import IntEnum

from robofleet.logs.ingest import Row
from robofleet.logs.line_formats import AUTO_FORMAT, DEFAULT_LEVEL, LineFormat, line_format
from robofleet.logs.models import LEVELS

ERROR = LEVELS["ERROR"]
TRACEBACK = "Traceback (most recent call last):"
GROUP_TRACEBACK = "+ Exception Group Traceback (most recent call last):"
CHAINED = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)
MAX_BLOCK_LINES = 2000
MAX_BLOCK_CHARS = 256 * 1024
REMEMBERED_RUNS = 10_000


class Traceback(IntEnum):
    NONE = 0
    FRAMES = 1  # after its header, before its exception line
    ENDED = 2  # its exception line was read
    CHAINING = 3  # a chained exception's sentence was read: its traceback follows


@dataclass
class Block:
    start: int
    end: int  # exclusive
    level: int
    traceback: Traceback = Traceback.NONE
    chars: int = 0


def blocks(lines: list[str], fmt: LineFormat) -> list[Block]:
    """The records `lines` (consecutive lines of one stream) make: each a range of them and its level."""
    found: list[Block] = []
    current: Block | None = None
    for index, line in enumerate(lines):
        level = fmt.level_of(line)
        if current is not None and not fmt.plain and _continues(current, line, level, lines, index, fmt):
            current.end = index + 1
            current.chars += len(line) + 1
            continue
        header = _is_traceback_header(line) and not fmt.plain
        current = Block(
            index,
            index + 1,
            max(level or DEFAULT_LEVEL, ERROR) if header else level if level is not None else DEFAULT_LEVEL,
            Traceback.FRAMES if header else Traceback.NONE,
            len(line),
        )
        found.append(current)
    return found


def _continues(block: Block, line: str, level: int | None, lines: list[str], index: int, fmt: LineFormat) -> bool:
    """Whether `line` belongs to `block` (and moves the block on: its traceback state, its level)."""
    if block.end - block.start >= MAX_BLOCK_LINES or block.chars + len(line) > MAX_BLOCK_CHARS:
        return False
    if _is_traceback_header(line):
        if block.traceback is Traceback.CHAINING or (block.traceback is Traceback.NONE and block.level >= ERROR):
            block.traceback = Traceback.FRAMES
            block.level = max(block.level, ERROR)
            return True
        return False
    if level is not None and block.traceback is not Traceback.FRAMES:
        return False  # a line with a level begins a record
    if line[:1].isspace() and line.strip():
        return True
    if block.traceback is Traceback.FRAMES and line.strip():
        block.traceback = Traceback.ENDED  # the exception line
        return True
    if block.traceback in (Traceback.ENDED, Traceback.CHAINING):
        if line in CHAINED:
            block.traceback = Traceback.CHAINING
            return True
        if not line.strip():
            following = lines[index + 1] if index + 1 < len(lines) else None
            return block.traceback is Traceback.CHAINING or following in CHAINED
    return fmt.declared and level is None


def _is_traceback_header(line: str) -> bool:
    return line == TRACEBACK or line.strip() == GROUP_TRACEBACK


def records(rows: list[Row], formats: Mapping[str, LineFormat]) -> list[Row]:
    """`rows` (a line each, from agents/output.py) as records: the consecutive rows of one run's stream grouped by
    `blocks`, with the format of `formats[run id]` (auto for a run it does not name). A record keeps the time, the
    fields and the offset of its first line; `fields.lines` counts its lines when they are more than one."""
    shaped: list[Row] = []
    start = 0
    while start < len(rows):
        first = rows[start]
        stream = first.fields.get("stream")
        end = start + 1
        while (
            end < len(rows)
            and rows[end].run_id == first.run_id
            and rows[end].source == first.source
            and rows[end].fields.get("stream") == stream
        ):
            end += 1
        run = rows[start:end]
        fmt = formats.get(first.run_id or "", AUTO_FORMAT)
        for block in blocks([row.message for row in run], fmt):
            head = run[block.start]
            if block.end - block.start == 1:
                head.level = block.level
                shaped.append(head)
                continue
            message = "\n".join(row.message for row in run[block.start : block.end])
            fields = {**head.fields, "lines": block.end - block.start}
            shaped.append(Row(head.time, block.level, head.source, head.run_id, message, fields, head.truncated))
        start = end
    return shaped


FormatOf = Callable[[str], str | None]  # (run id) the log_format of the run's robot; None: no such run


class RobotOutput:
    """Robot output into the log store: the runs' formats looked up (once per run: a run reads its output with the
    format its robot had when its first output came), then the records made on a writer lane, off the event loop."""

    def __init__(self, write: Callable[[Callable[[], list[Row]]], Future[list[int]]], format_of: FormatOf) -> None:
        self.write = write
        self.format_of = format_of
        self._formats: OrderedDict[str, LineFormat] = OrderedDict()

    async def store(self, rows: list[Row]) -> None:
        """Durable when this returns; raises what the store raised."""
        unknown = {row.run_id for row in rows if row.run_id and row.run_id not in self._formats}
        if unknown:
            specs = await asyncio.to_thread(lambda: {run_id: self.format_of(run_id) for run_id in unknown})
            for run_id, spec in specs.items():
                self._formats[run_id] = line_format(spec)
            while len(self._formats) > REMEMBERED_RUNS:
                self._formats.popitem(last=False)
        formats = {row.run_id: self._formats.get(row.run_id, AUTO_FORMAT) for row in rows if row.run_id}
        await asyncio.wrap_future(self.write(lambda: records(rows, formats)))
