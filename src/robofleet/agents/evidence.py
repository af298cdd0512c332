"""Failure evidence: what a run looked like when it failed, was killed or was stopped, kept by the agent until the
orchestrator has stored it.

While a run lives its process tree is noted every SNAPSHOT_SECONDS (pid, parent, name, command line, CPU, memory,
status), and once more right before the agent terminates or kills it: by the time a run has ended its tree is
gone, so the last snapshot is the tree as it was. When the run ends with a non-zero exit, by a signal, or after
the agent was asked to terminate or kill it, a bundle is made: that snapshot, the last OUTPUT_LINES lines of its
output (from the run's spool files), and for a run with a session a screenshot (a JPEG at most 1920 wide: the one
taken right before a terminate or kill, when there was one, within a second: what the robot showed, not what its
end left) and the session's recorded last seconds as an animated WebP (libwebp merges a frame equal to the one
before it into that one, so a screen that stayed still is a still picture).

Everything lives under the agent's state directory (evidence/runs/RUN.json while a run is watched, then
evidence/bundles/RUN/), so an agent that restarts still makes or serves the bundle. Bundles go when the
orchestrator says it stored one (`drop`), and at the latest after MAX_AGE_SECONDS or beyond the MAX_BUNDLES newest.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

import psutil

from robofleet.agents import screens
from robofleet.agents.display_keeper import DisplayKeeper, SessionProblem

log = logging.getLogger(__name__)
SNAPSHOT_SECONDS = 3.0
OUTPUT_LINES = 100
TAIL_BYTES = 64 * 1024
MAX_BUNDLES = 50
MAX_AGE_SECONDS = 24 * 3600
STREAMS = ("stdout", "stderr")
STOPPING_GRAB_SECONDS = 1.0


class ProcessRow(TypedDict):
    pid: int
    ppid: int
    name: str
    cmdline: list[str]
    cpu_percent: float
    rss_bytes: int
    status: str


class OutputLine(TypedDict):
    stream: str
    text: str


class Picture(TypedDict):
    content_type: str
    data: str  # base64


class Recording(Picture):
    frames: int


class Bundle(TypedDict):
    run_id: str
    captured_at: str
    exit: dict[str, Any]
    processes: list[ProcessRow]
    output: list[OutputLine]
    screenshot: Picture | None
    recording: Recording | None


def deserves_bundle(outcome: dict[str, Any], asked: str | None) -> bool:
    """A run that failed (a non-zero exit, or an end the shim could not even record), died of a signal, or that
    the agent was asked to terminate or kill, whatever its exit."""
    return asked is not None or outcome.get("exit_code") != 0 or outcome.get("signal") is not None


class EvidenceKeeper:
    def __init__(self, state_dir: Path, displays: DisplayKeeper) -> None:
        self.folder = state_dir.resolve() / "evidence"
        self.watched_dir = self.folder / "runs"
        self.bundles_dir = self.folder / "bundles"
        for folder in (self.folder, self.watched_dir, self.bundles_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.displays = displays
        self._lock = threading.RLock()
        self._noted_at: dict[str, float] = {}
        # psutil measures a process's CPU between two calls on the same object: kept from one snapshot to the next.
        self._measured: dict[tuple[int, float], psutil.Process] = {}
        self._last_screens: dict[str, bytes] = {}  # run -> the JPEG taken right before it was stopped
        self._decided: set[str] = set()  # ended runs already looked at: every watch pass asks again until collected

    # ---- while a run lives -------------------------------------------------------------------------------

    def watch(self, run_id: str, session: str | None) -> None:
        """A run just started, drawing in `session` (or in none)."""
        with self._lock:
            self._write(run_id, {"session": session, "asked": None, "snapshot": [], "decided": False})

    def note(self, run_id: str, processes: Callable[[], list[psutil.Process]], *, now: bool = False) -> None:
        """Snapshot the run's tree, at most every SNAPSHOT_SECONDS unless `now`."""
        moment = time.monotonic()
        with self._lock:
            if not now and moment - self._noted_at.get(run_id, -SNAPSHOT_SECONDS) < SNAPSHOT_SECONDS:
                return
            self._noted_at[run_id] = moment
            record = self._read(run_id)
            if record.get("decided"):
                return
            rows = self._rows(processes())
            if rows or not record.get("snapshot"):
                record["snapshot"] = rows
                record["snapshot_at"] = datetime.now(UTC).isoformat()
                self._write(run_id, record)

    def stopping(self, run_id: str, how: str, processes: Callable[[], list[psutil.Process]]) -> None:
        """The agent is about to `how` (terminate, kill) the run: its tree and its screen as they are now."""
        with self._lock:
            record = self._read(run_id)
            if record.get("decided"):
                return
            record["asked"] = record.get("asked") or how
            self._write(run_id, record)
        self.note(run_id, processes, now=True)
        session = record.get("session")
        if session and run_id not in self._last_screens:
            # Bounded: the run is being killed, perhaps because its display hangs, and the kill must go on.
            picture = self._screenshot(session, STOPPING_GRAB_SECONDS)
            if picture is not None:
                self._last_screens[run_id] = picture

    # ---- once it ended -----------------------------------------------------------------------------------

    def ended(self, run_id: str, outcome: dict[str, Any], run_dir: Path) -> bool:
        """Decide, once, whether the ended run gets a bundle, and make it; True when one was made now."""
        with self._lock:
            if run_id in self._decided:
                return False
            self._decided.add(run_id)
            record = self._read(run_id)
            if record.get("decided"):
                return False
            record["decided"] = True
            self._write(run_id, record)
            self._noted_at.pop(run_id, None)
            self._forget_measures(record.get("snapshot") or [])
        if not deserves_bundle(outcome, record.get("asked")):
            self._last_screens.pop(run_id, None)
            return False
        try:
            self._make(run_id, outcome, record, run_dir)
        except Exception:
            log.exception("the evidence of run %s could not be kept", run_id)
            return False
        self.prune()
        return True

    def _make(self, run_id: str, outcome: dict[str, Any], record: dict[str, Any], run_dir: Path) -> None:
        session = record.get("session")
        picture = self._last_screens.pop(run_id, None)
        if picture is None and session:
            picture = self._screenshot(session)
        recording: bytes | None = None
        frames: list[bytes] = []
        if session:
            frames = self.displays.frames(session)
            if frames:
                recording = screens.animate(frames)
        folder = self.bundles_dir / run_id
        partial = self.bundles_dir / f".{run_id}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(mode=0o700)
        if picture is not None:
            (partial / "screenshot.jpg").write_bytes(picture)
        if recording is not None:
            (partial / "recording.webp").write_bytes(recording)
        summary = {
            "run_id": run_id,
            "captured_at": datetime.now(UTC).isoformat(),
            "exit": outcome,
            "processes": record.get("snapshot") or [],
            "output": output_tail(run_dir),
            "frames": len(frames),
            "session": session,
        }
        (partial / "bundle.json").write_text(json.dumps(summary))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(partial, folder)
        log.info("kept the evidence of run %s (session %s, %d frames)", run_id, session, len(frames))

    def forget(self, run_id: str) -> None:
        """The run is done with (its exit delivered): its watch record goes; a bundle stays until dropped."""
        with self._lock:
            self._noted_at.pop(run_id, None)
            self._last_screens.pop(run_id, None)
            self._decided.discard(run_id)
            with contextlib.suppress(FileNotFoundError):
                (self.watched_dir / f"{run_id}.json").unlink()

    # ---- what the orchestrator asks ----------------------------------------------------------------------

    def get(self, run_id: str) -> Bundle | None:
        folder = self.bundles_dir / run_id
        try:
            summary = json.loads((folder / "bundle.json").read_text())
        except (FileNotFoundError, NotADirectoryError):
            return None
        screenshot: Picture | None = None
        recording: Recording | None = None
        for file_name, content_type in (("screenshot.jpg", "image/jpeg"), ("screenshot.png", "image/png")):
            with contextlib.suppress(FileNotFoundError):  # a PNG: a bundle an earlier agent version made
                screenshot = {"content_type": content_type, "data": _b64((folder / file_name).read_bytes())}
                break
        with contextlib.suppress(FileNotFoundError):
            recording = {
                "content_type": "image/webp",
                "data": _b64((folder / "recording.webp").read_bytes()),
                "frames": int(summary.get("frames", 0)),
            }
        return {
            "run_id": summary["run_id"],
            "captured_at": summary["captured_at"],
            "exit": summary["exit"],
            "processes": summary["processes"],
            "output": summary["output"],
            "screenshot": screenshot,
            "recording": recording,
        }

    def drop(self, run_id: str) -> bool:
        folder = self.bundles_dir / run_id
        if not folder.is_dir():
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return True

    def prune(self, now: float | None = None) -> int:
        """Drop bundles older than MAX_AGE_SECONDS, and the oldest beyond MAX_BUNDLES; how many went."""
        now = time.time() if now is None else now
        kept = sorted(
            (folder for folder in self.bundles_dir.iterdir() if folder.is_dir() and not folder.name.startswith(".")),
            key=lambda folder: folder.stat().st_mtime,
            reverse=True,
        )
        gone = [
            folder
            for index, folder in enumerate(kept)
            if index >= MAX_BUNDLES or now - folder.stat().st_mtime > MAX_AGE_SECONDS
        ]
        for folder in gone:
            shutil.rmtree(folder, ignore_errors=True)
        return len(gone)

    # ---- pieces ------------------------------------------------------------------------------------------

    def _screenshot(self, session: str, timeout: float = screens.GRAB_SECONDS) -> bytes | None:
        try:
            return screens.evidence_picture(self.displays.screen(session).display, timeout)
        except (SessionProblem, screens.ScreenError) as exc:
            log.info("no screenshot of session %s for the evidence: %s", session, exc)
            return None

    def _rows(self, processes: Iterable[psutil.Process]) -> list[ProcessRow]:
        rows: list[ProcessRow] = []
        for process in processes:
            try:
                key = (process.pid, process.create_time())
                measured = self._measured.setdefault(key, process)
                with measured.oneshot():
                    rows.append(
                        {
                            "pid": measured.pid,
                            "ppid": measured.ppid(),
                            "name": measured.name(),
                            "cmdline": measured.cmdline(),
                            "cpu_percent": measured.cpu_percent(None),
                            "rss_bytes": measured.memory_info().rss,
                            "status": measured.status(),
                        }
                    )
            except psutil.Error:
                continue
        return rows

    def _forget_measures(self, rows: list[dict[str, Any]]) -> None:
        pids = {row["pid"] for row in rows}
        for key in [key for key in self._measured if key[0] in pids]:
            del self._measured[key]

    def _read(self, run_id: str) -> dict[str, Any]:
        try:
            return dict(json.loads((self.watched_dir / f"{run_id}.json").read_text()))
        except (FileNotFoundError, ValueError):
            return {"session": None, "asked": None, "snapshot": [], "decided": False}

    def _write(self, run_id: str, record: dict[str, Any]) -> None:
        path = self.watched_dir / f"{run_id}.json"
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(record))
        os.replace(temporary, path)


def output_tail(run_dir: Path, lines: int = OUTPUT_LINES) -> list[OutputLine]:
    """The last lines of the run's output: stdout's, then stderr's (the spool keeps no order between them), at
    most `lines` in all, half each unless one has fewer."""
    tails = {stream: _tail(run_dir / f"{stream}.log", lines) for stream in STREAMS}
    share = {"stdout": lines // 2, "stderr": lines - lines // 2}
    share["stdout"] += max(0, share["stderr"] - len(tails["stderr"]))
    share["stderr"] += max(0, lines // 2 - len(tails["stdout"]))
    return [
        {"stream": stream, "text": text}
        for stream in STREAMS
        for text in (tails[stream][-share[stream] :] if share[stream] else [])
    ]


def _tail(path: Path, lines: int) -> list[str]:
    try:
        with path.open("rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - TAIL_BYTES))
            data = file.read()
    except FileNotFoundError:
        return []
    text = data.decode(errors="replace").splitlines()
    if size > TAIL_BYTES and text:
        text = text[1:]  # the first is likely a piece of a line
    return text[-lines:]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
