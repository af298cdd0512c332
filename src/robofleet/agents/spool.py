"""A run's output as its shim spools it (stdout.log and stderr.log in the run's directory), read on in lines.

Reading moves a position in memory; `commit` moves the one on disk (positions.json), once whoever took the lines
holds them durably. An agent that dies between the two reads those lines again when it starts: output is delivered
at least once, each line with its byte offset in its stream, by which a receiver knows a line it already has.

A run is drained once a read that began after the run ended got to the end of both files. Only a drained run's end
is reported, so an exit never overtakes the last of a run's output, however much of it was still unread.

A traceback still being written when a read comes (Python writes an uncaught exception's a line or a frame at a time)
is left for the next read, HOLD_READS reads at most: the log store makes one record of a traceback it gets whole.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robofleet.agents.processes import ManagedRun

OUTPUT_CHUNK = 1024 * 1024  # per stream and run in one read: a chatty run cannot hold up the others
STREAMS = ("stdout", "stderr")
POSITIONS = "positions.json"
TRACEBACK_HEADER = b"Traceback (most recent call last):"
HOLD_READS = 3

Positions = dict[str, dict[str, int]]  # run id -> stream -> byte offset


@dataclass
class Output:
    lines: list[dict[str, Any]]  # {"run_id", "label", "stream", "line", "offset"}, in the order of each stream
    positions: Positions  # where reading goes on after these lines, for each run read

    def split(self, size: int) -> list[Output]:
        """Parts of at most `size` lines, in order, each with the positions right after its own last line: a part
        can be committed once it is delivered, whatever becomes of the parts after it."""
        parts: list[Output] = []
        after = {run_id: dict(streams) for run_id, streams in self.positions.items()}
        for start in reversed(range(0, len(self.lines), size)):
            lines = self.lines[start : start + size]
            parts.append(Output(lines, {run_id: dict(streams) for run_id, streams in after.items()}))
            for line in reversed(lines):
                after[line["run_id"]][line["stream"]] = line["offset"]
        parts.reverse()
        return parts


class SpoolReader:
    """The read and committed positions of every run an agent manages. Thread-safe: the commits come from whoever
    received the lines, the reads from the agent's watch loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._dirs: dict[str, Path] = {}
        self._read: Positions = {}
        self._committed: Positions = {}
        self._drained: set[str] = set()
        self._held: dict[tuple[str, str], tuple[int, int]] = {}  # (run, stream) -> (offset held from, reads so far)

    def read(self, runs: list[tuple[ManagedRun, bool]]) -> Output:
        """The whole lines written since the last read, for each (run, whether it had ended before this call)."""
        lines: list[dict[str, Any]] = []
        positions: Positions = {}
        for run, ended in runs:
            start = self._position(run)
            moved = dict(start)
            at_end = True
            for stream in STREAMS:
                offset = start.get(stream, 0)
                chunk = _read_chunk(run.run_dir / f"{stream}.log", offset)
                at_eof = len(chunk) < OUTPUT_CHUNK
                taken = _whole_lines(chunk, final=ended and at_eof)
                if not (ended and at_eof):
                    taken = self._hold_traceback(run.run_id, stream, offset, chunk, taken)
                for piece in chunk[:taken].splitlines(keepends=True):
                    line = piece.rstrip(b"\r\n").decode(errors="replace")
                    lines.append(
                        {"run_id": run.run_id, "label": run.label, "stream": stream, "line": line, "offset": offset}
                    )
                    offset += len(piece)
                moved[stream] = offset
                at_end = at_end and at_eof and taken == len(chunk)
            with self._lock:
                if run.run_id not in self._dirs:
                    continue  # forgotten while it was being read
                self._read[run.run_id] = moved
                if ended and at_end:
                    self._drained.add(run.run_id)
            if moved != start:
                positions[run.run_id] = moved
        return Output(lines, positions)

    def _hold_traceback(self, run_id: str, stream: str, offset: int, chunk: bytes, taken: int) -> int:
        """How much of the whole lines of `chunk` to take now: up to an unfinished traceback at their end, unless it
        has been held back HOLD_READS times already."""
        cut = _unfinished_traceback(chunk, taken)
        key = (run_id, stream)
        if cut is None:
            self._held.pop(key, None)
            return taken
        held_from, reads = self._held.get(key, (-1, 0))
        reads = reads + 1 if held_from == offset + cut else 1
        if reads > HOLD_READS:
            self._held.pop(key, None)
            return taken
        self._held[key] = (offset + cut, reads)
        return cut

    def commit(self, positions: Positions) -> None:
        """Remember on disk that the lines up to `positions` are delivered; an agent starting again reads on from
        there. Positions behind those committed already change nothing."""
        with self._commit_lock:
            for run_id, streams in positions.items():
                with self._lock:
                    run_dir, committed = self._dirs.get(run_id), self._committed.get(run_id, {})
                    if run_dir is None:
                        continue
                    merged = {
                        stream: max(committed.get(stream, 0), streams.get(stream, 0))
                        for stream in STREAMS
                        if stream in committed or stream in streams
                    }
                    if merged == committed:
                        continue
                    self._committed[run_id] = merged
                temporary = run_dir / f"{POSITIONS}.tmp"
                temporary.write_text(json.dumps(merged))
                os.replace(temporary, run_dir / POSITIONS)

    def rewind(self) -> None:
        """Read again from the committed positions: the lines read since were not delivered."""
        with self._lock:
            self._read = {run_id: dict(streams) for run_id, streams in self._committed.items()}
            self._drained.clear()

    def drained(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._drained

    def read_again(self, run_id: str) -> None:
        """The run's files may have grown since it was drained (processes it left behind wrote on until they were
        ended): it is drained again only by a read that begins now and gets to the end."""
        with self._lock:
            self._drained.discard(run_id)

    def forget(self, run_id: str) -> None:
        with self._lock:
            for known in (self._dirs, self._read, self._committed):
                known.pop(run_id, None)
            self._drained.discard(run_id)
            for stream in STREAMS:
                self._held.pop((run_id, stream), None)

    def _position(self, run: ManagedRun) -> dict[str, int]:
        with self._lock:
            known = self._read.get(run.run_id)
            if known is not None:
                return dict(known)
        path = run.run_dir / POSITIONS
        committed = {str(k): int(v) for k, v in json.loads(path.read_text()).items()} if path.exists() else {}
        with self._lock:
            self._dirs[run.run_id] = run.run_dir
            self._committed.setdefault(run.run_id, committed)
            return dict(self._read.setdefault(run.run_id, dict(committed)))


def _read_chunk(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as file:
            file.seek(offset)
            return file.read(OUTPUT_CHUNK)
    except FileNotFoundError:
        return b""


def _unfinished_traceback(chunk: bytes, taken: int) -> int | None:
    """Where, in the whole lines `chunk[:taken]`, a traceback begins whose exception line is not written yet: the last
    `Traceback (most recent call last):` line, with only indented lines after it. None when there is none."""
    header = chunk.rfind(TRACEBACK_HEADER, 0, taken)
    if header < 0 or (header > 0 and chunk[header - 1 : header] != b"\n"):
        return None
    for line in chunk[header:taken].split(b"\n")[1:]:
        if line.strip() and not line[:1].isspace():
            return None
    return header


def _whole_lines(chunk: bytes, *, final: bool) -> int:
    """How much of `chunk` is whole lines: up to its last newline; all of it when it is the end of an ended run's
    file, or when a single line fills the whole chunk (split, rather than never read)."""
    end = chunk.rfind(b"\n") + 1
    if final or (end == 0 and len(chunk) >= OUTPUT_CHUNK):
        return len(chunk)
    return end
