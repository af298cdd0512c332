"""What an agent does with the orchestrator's commands, whoever carries them (the embedded local agent or a
remote `robofleet agent` over WebSocket): start and signal robot processes, run shell commands, move files,
describe the machine, keep graphical sessions (display_keeper.py) and show and drive their screens, keep the
evidence of failed runs (evidence.py). Each command has an id: a repeated id gets the first result again, never a
second run; a repeat that arrives while the first run still goes waits for that run's result. Screenshots and
evidence bundles are the exception: they are large, and asking again for a picture wants a new one, so their
results are not remembered; nor are the sessions' syncs, restarts, inputs, connects, disconnects and logoffs
(NOT_REMEMBERED: each says how the session is now). A result larger
than MAX_RESULT_BYTES is refused (`too_large`) rather than sent.

A session spec the agent cannot keep (a name or a value it refuses) is that session's `failed` status with the
reason, under the name as sent; the other sessions of the sync are kept as asked.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import getpass
import hashlib
import json
import os
import platform
import selectors
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psutil

from robofleet.agents import inputs, owned, screens
from robofleet.agents.display_keeper import DisplayKeeper, SessionProblem, SessionState, Status
from robofleet.agents.displays import DisplaySpec
from robofleet.agents.evidence import Bundle, EvidenceKeeper
from robofleet.agents.processes import ManagedRun, ProcessManager, is_run_id
from robofleet.agents.spool import Output, Positions, SpoolReader

REMEMBERED_RESULTS = 10_000
SHELL_OUTPUT_LIMIT = 1_000_000
READ_CHUNK = 65_536
PART_SUFFIX = ".robofleet-part"
FILE_LIMIT = 50 * 1024 * 1024
CAPABILITIES = ["process", "shell", "files", "system", "session"]
# Large (pictures, bundles, every session's status and events) or worth doing again when asked again.
NOT_REMEMBERED = frozenset(
    {
        "session.screenshot",
        "run.evidence",
        "session.sync",
        "session.restart",
        "session.input",
        "session.connect",
        "session.disconnect",
        "session.logoff",
    }
)
# Below the WebSocket's 64 MiB message limit with room: a larger answer would end the connection, and be sent
# again on the next, for ever.
MAX_RESULT_BYTES = 24 * 1024 * 1024
SESSION_WAIT_SECONDS = 15.0
LOGOFF_WAIT_SECONDS = 20.0
MAX_LOGOFF_WAIT_SECONDS = 120.0


def refused_status(name: str, reason: str) -> Status:
    """The status of a session whose spec the agent refuses: failed, with why, and never kept."""
    return {
        "name": name,
        "state": SessionState.FAILED.value,
        "display": None,
        "pid": None,
        "restarts": 0,
        "reason": f"this agent cannot keep it: {reason}",
        "since": datetime.now(UTC).isoformat(),
        "events": [],
        "screen_width": None,
        "screen_height": None,
        "connection": None,
    }


class CommandError(Exception):
    """A command that cannot be carried out; `code` says why in a word (bad_args, not_found, forbidden_path…)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Captured:
    """A command's output on one pipe: its first `limit` bytes, and how many after them were read and dropped."""

    limit: int
    kept: bytearray = field(default_factory=bytearray)
    dropped: int = 0

    def add(self, chunk: bytes) -> None:
        room = self.limit - len(self.kept)
        self.kept += chunk[:room]
        self.dropped += max(0, len(chunk) - room)


def capture(process: subprocess.Popen[bytes], pipes: dict[IO[bytes], Captured], deadline: float) -> bool:
    """Reads the process's pipes as they fill, keeping what each `Captured` keeps and dropping the rest (memory
    stays at the limits, however much a command writes), until the process has ended and its pipes are closed;
    False when `deadline` (monotonic) came first."""
    with selectors.DefaultSelector() as selector:
        for pipe in pipes:
            selector.register(pipe, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, READ_CHUNK)
                if chunk:
                    pipes[key.fileobj].add(chunk)  # type: ignore[index]
                else:
                    selector.unregister(key.fileobj)
    # The pipes closed; the shell may outlive them (a command that closed its output and goes on).
    try:
        process.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return False
    return True


class Worker:
    def __init__(
        self, state_dir: Path, *, allowed_roots: list[Path] | None = None, file_limit: int = FILE_LIMIT
    ) -> None:
        self.processes = ProcessManager(state_dir)
        self.spool = SpoolReader()
        self.displays = DisplayKeeper(state_dir)
        self.evidence = EvidenceKeeper(state_dir, self.displays)
        self.allowed_roots = [root.resolve() for root in (allowed_roots or [])]
        self.file_limit = file_limit
        self.result_limit = MAX_RESULT_BYTES
        self._uploads: dict[Path, Path] = {}  # target -> the file its chunks go to until the last one
        self._uploads_lock = threading.Lock()
        self._results: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._in_flight: dict[str, Future[dict[str, Any]]] = {}
        self._commands_lock = threading.Lock()  # commands arrive on several threads at once
        self._handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "process.start": self._process_start,
            "process.signal": self._process_signal,
            "process.state": self._process_state,
            "process.list": self._process_list,
            "shell.run": self._shell_run,
            "file.put": self._file_put,
            "file.get": self._file_get,
            "system.info": self._system_info,
            "session.sync": self._session_sync,
            "session.screenshot": self._session_screenshot,
            "session.input": self._session_input,
            "session.restart": self._session_restart,
            "session.connect": self._session_connect,
            "session.disconnect": self._session_disconnect,
            "session.logoff": self._session_logoff,
            "run.evidence": self._run_evidence,
            "run.evidence_drop": self._run_evidence_drop,
        }

    def start(self) -> None:
        """Start the session keeper's thread (adopting the displays an earlier agent process left running)."""
        self.displays.start()

    def close(self) -> None:
        """Stop the session keeper's thread; the displays, like the robots, keep running for the next agent."""
        self.displays.stop()

    def hello(self) -> dict[str, Any]:
        self.processes.adopt()
        return {
            "host": socket.gethostname(),
            "os_user": getpass.getuser(),
            "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(),
            "capabilities": CAPABILITIES,
            "runs": [self._run_state(run) for run in list(self.processes.runs.values())],
        }

    def execute(self, command_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        """The result of command `command_id`: {"ok": True, "result": ...} or {"ok": False, "error": {...}}. A
        repeated id runs nothing: it gets the first run's result, waiting for it while that run still goes."""
        with self._commands_lock:
            if command_id in self._results:
                return self._results[command_id]
            first = self._in_flight.get(command_id)
            if first is None:
                mine: Future[dict[str, Any]] = Future()
                self._in_flight[command_id] = mine
        if first is not None:
            return first.result()
        try:
            outcome = self._outcome(name, args)
        except BaseException as exc:
            # Not a refusal but a fault of the agent's own: the callers see it, and a later repeat may try again.
            with self._commands_lock:
                del self._in_flight[command_id]
            mine.set_exception(exc)
            raise
        with self._commands_lock:
            if name not in NOT_REMEMBERED:
                self._results[command_id] = outcome
            while len(self._results) > REMEMBERED_RESULTS:
                self._results.popitem(last=False)
            del self._in_flight[command_id]
        mine.set_result(outcome)
        return outcome

    def running(self, command_id: str) -> bool:
        """Whether command `command_id` is being carried out now."""
        with self._commands_lock:
            return command_id in self._in_flight

    def _outcome(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        handler = self._handlers.get(name)
        try:
            if handler is None:
                raise CommandError("unknown_command", f"this agent does not know the command {name!r}")
            result = handler(args)
            size = len(json.dumps(result, separators=(",", ":")))
            if size > self.result_limit:
                raise CommandError(
                    "too_large",
                    f"{name}: the answer has {size} bytes, over this agent's limit of {self.result_limit}: ask for"
                    " less (a screenshot as jpeg, or with max_width or scale; a file in smaller chunks)",
                )
            return {"ok": True, "result": result}
        except (CommandError, SessionProblem) as exc:
            return {"ok": False, "error": {"code": exc.code, "message": exc.message}}
        except (KeyError, TypeError, ValueError) as exc:
            return {"ok": False, "error": {"code": "bad_args", "message": f"{name}: {exc}"}}
        except OSError as exc:
            return {"ok": False, "error": {"code": "os_error", "message": f"{name}: {exc}"}}

    def new_output(self) -> Output:
        """Whole lines the runs wrote since the last call, each with its offset, and the read positions after
        them. Delivered, they are committed with `commit_output`; until then an agent that starts again reads
        them again (`rewind_output` does so at once)."""
        runs = list(self.processes.runs.values())
        return self.spool.read([(run, self.processes.outcome(run) is not None) for run in runs])

    def commit_output(self, positions: Positions) -> None:
        self.spool.commit(positions)

    def rewind_output(self) -> None:
        self.spool.rewind()

    def finished_runs(self) -> list[dict[str, Any]]:
        """Runs that have ended and whose output `new_output` has read to the end, with their outcome: {"run_id",
        "exit_code", "signal", "ended_at" (when the shim recorded it), "spawn_error" (why its program could not
        start) or "last_error" (for a failure: its last traceback's exception or ERROR line on stderr) when known,
        "leftovers" (how many processes the run left behind that the agent ended)}. They stay known until
        `collect`. Looks after the runs first (see `look_after_runs`), so it may block for up to
        LEFTOVER_GRACE_SECONDS: call it in a thread."""
        self.look_after_runs()
        return [
            {"run_id": run.run_id, **outcome, "leftovers": run.leftovers}
            for run in list(self.processes.runs.values())
            if (outcome := self.processes.outcome(run)) is not None and self.spool.drained(run.run_id)
        ]

    def look_after_runs(self) -> None:
        """What the agent's watch loop does on every pass, connected or not: note the living runs' process trees
        (now and then), and end what the ended runs left behind, which blocks for up to LEFTOVER_GRACE_SECONDS
        when some leftover does not go at once. Their output written until then is still read before the run's
        end is reported."""
        self.processes.note_trees()
        ended = []
        for run in list(self.processes.runs.values()):
            outcome = self.processes.outcome(run)
            if outcome is None:
                self.evidence.note(run.run_id, functools.partial(self.processes.tree, run))
            else:
                ended.append(run)
                # Before its leftovers are ended: its session's screen may still show what went wrong.
                self.evidence.ended(run.run_id, outcome, run.run_dir)
        for run in self.processes.end_leftovers(ended):
            self.spool.read_again(run.run_id)

    def collect(self, run_id: str) -> None:
        run = self.processes.runs.get(run_id)
        if run is not None:
            self.processes.collect(run)
        self.spool.forget(run_id)
        self.evidence.forget(run_id)

    # ---- processes -----------------------------------------------------------------------------------------

    def _run(self, args: dict[str, Any]) -> ManagedRun:
        run = self.processes.runs.get(str(args["run_id"]))
        if run is None:
            raise CommandError("not_found", f"no run {args['run_id']} on this agent")
        return run

    def _run_state(self, run: ManagedRun) -> dict[str, Any]:
        return {
            **run.state(),
            "robot_pid": self.processes.robot_pid(run),
            "alive": self.processes.alive(run),
            "pause": self.processes.pause_state(run),
        }

    def _process_start(self, args: dict[str, Any]) -> dict[str, Any]:
        run_id = str(args["run_id"])
        if not is_run_id(run_id):
            raise CommandError("bad_args", f"a run id is a number, not {run_id[:40]!r}")
        argv = [str(part) for part in args["argv"]]
        cwd = args.get("cwd")
        # allowed_roots guard file transfers; a robot's working directory is its definition's to choose.
        if cwd and not Path(cwd).is_dir():
            raise CommandError("not_found", f"the working directory {cwd} does not exist on this agent")
        env = {str(key): str(value) for key, value in (args.get("env") or {}).items()}
        keep_leftovers = args.get("keep_leftovers") or False
        if not isinstance(keep_leftovers, bool):
            raise CommandError("bad_args", f"keep_leftovers must be true or false, not {keep_leftovers!r}")
        session = None
        if args.get("session") is not None:
            session = self._ready_session(args["session"], args.get("session_wait_seconds"))
            env["DISPLAY"] = str(session["display"])
            # What robofleet.sdk.session_state() reads: the session's state, written by the keeper at each change.
            env["ROBOFLEET_SESSION"] = session["name"]
            env["ROBOFLEET_SESSION_STATE"] = str(self.displays.state_path(session["name"]))
        run = self.processes.start(
            run_id,
            argv,
            cwd=cwd,
            env=env,
            label=str(args.get("robot", "")),
            keep_leftovers=keep_leftovers,
        )
        self.evidence.watch(run_id, session["name"] if session is not None else None)
        return self._run_state(run)

    def _ready_session(self, raw: Any, wait: Any) -> Status:
        """The run's session, kept from now on, once healthy; CommandError `session_unhealthy` when it is not
        healthy within `wait` seconds."""
        if not isinstance(raw, dict):
            raise CommandError("bad_args", "session is a session's spec (an object), as session.sync takes them")
        spec = DisplaySpec.from_args(raw)
        timeout = SESSION_WAIT_SECONDS if wait is None else float(wait)
        if not 0 <= timeout <= 600:
            raise CommandError("bad_args", "session_wait_seconds is in 0..600")
        self.displays.ensure(spec)
        status = self.displays.wait_healthy(spec.name, timeout)
        if status["state"] != SessionState.HEALTHY:
            reason = status["reason"] or f"still {status['state']} after {timeout:g} s"
            raise CommandError("session_unhealthy", f"session {spec.name} is not healthy: {reason}")
        return status

    def _process_state(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._run_state(self._run(args))

    def _process_signal(self, args: dict[str, Any]) -> dict[str, Any]:
        run = self._run(args)
        action = args["action"]
        if action == "pause":
            # Asked for with checkpoint=True: a robot that has checkpoints pauses at its next one ("asked").
            if not (args.get("checkpoint") and self.processes.ask_pause(run)):
                self.processes.pause(run)
        elif action == "freeze":
            self.processes.freeze_unless_at_checkpoint(run)
        elif action == "resume":
            self.processes.resume(run)
        elif action == "terminate":
            self.evidence.stopping(run.run_id, "terminate", functools.partial(self.processes.tree, run))
            self.processes.terminate(run)
        elif action == "kill":
            self.evidence.stopping(run.run_id, "kill", functools.partial(self.processes.tree, run))
            self.processes.kill(run)
            self.processes.reap_orphans()
        else:
            raise CommandError(
                "bad_args", f"unknown signal action {action!r}: pause, freeze, resume, terminate or kill"
            )
        return self._run_state(run)

    def _process_list(self, args: dict[str, Any]) -> dict[str, Any]:
        processes = []
        for process in psutil.process_iter(
            ["pid", "ppid", "name", "username", "status", "cpu_percent", "memory_info", "create_time", "cmdline"]
        ):
            info = process.info
            processes.append(
                {
                    "pid": info["pid"],
                    "ppid": info["ppid"],
                    "name": info["name"],
                    "user": info["username"],
                    "status": info["status"],
                    "cpu_percent": info["cpu_percent"],
                    "rss": info["memory_info"].rss if info["memory_info"] else None,
                    "started": info["create_time"],
                    "cmdline": " ".join(info["cmdline"] or [])[:500],
                }
            )
        return {"processes": processes, "runs": [self._run_state(r) for r in self.processes.runs.values()]}

    # ---- graphical sessions and evidence -------------------------------------------------------------------

    def _session_sync(self, args: dict[str, Any]) -> dict[str, Any]:
        """Keep the sessions sent. With `instance` (this keeper's, as a former answer said) and `after_seq`, the
        events the orchestrator stored already (seq <= after_seq) are left out of the answer."""
        raw = args["sessions"]
        if not isinstance(raw, list) or not all(isinstance(spec, dict) for spec in raw):
            raise CommandError("bad_args", "sessions is a list of session specs")
        instance, after_seq = args.get("instance"), args.get("after_seq")
        if after_seq is not None and (isinstance(after_seq, bool) or not isinstance(after_seq, int)):
            raise CommandError("bad_args", f"after_seq is a whole number, not {after_seq!r}")
        specs: list[DisplaySpec] = []
        refused: list[Status] = []
        for one in raw:
            try:
                specs.append(DisplaySpec.from_args(one))
            except (KeyError, TypeError, ValueError) as exc:
                refused.append(refused_status(str(one.get("name")), str(exc)))
        statuses = self.displays.sync(specs)
        if instance == self.displays.instance and after_seq is not None:
            for status in statuses:
                status["events"] = [event for event in status["events"] if event["seq"] > after_seq]
        return {"instance": self.displays.instance, "sessions": [*statuses, *refused]}

    def _session_screenshot(self, args: dict[str, Any]) -> screens.Shot:
        shape = screens.Shape.from_args(args)
        etag = args.get("etag")
        screen = self.displays.screen(str(args["name"]))
        try:
            return screens.screenshot(screen.display, shape, str(etag) if etag else None)
        except screens.ScreenError as exc:
            raise CommandError("unhealthy", f"session {screen.name}: {exc}") from exc

    def _session_input(self, args: dict[str, Any]) -> dict[str, Any]:
        screen = self.displays.screen(str(args["name"]))
        try:
            inputs.send(screen, args)
        except inputs.InputFailed as exc:
            raise CommandError("input_failed", f"session {screen.name}: {exc}") from exc
        return {"done": True}

    def _session_restart(self, args: dict[str, Any]) -> Status:
        return self.displays.restart(str(args["name"]))

    def _session_connect(self, args: dict[str, Any]) -> Status:
        return self.displays.connect(str(args["name"]))

    def _session_disconnect(self, args: dict[str, Any]) -> Status:
        return self.displays.disconnect(str(args["name"]))

    def _session_logoff(self, args: dict[str, Any]) -> Status:
        wait = args.get("wait_seconds")
        wait = LOGOFF_WAIT_SECONDS if wait is None else wait
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 < wait <= MAX_LOGOFF_WAIT_SECONDS:
            raise CommandError("bad_args", f"wait_seconds is a number of seconds in (0, {MAX_LOGOFF_WAIT_SECONDS:g}]")
        return self.displays.logoff(str(args["name"]), float(wait))

    def _run_evidence(self, args: dict[str, Any]) -> Bundle:
        run_id = str(args["run_id"])
        bundle = self.evidence.get(run_id) if is_run_id(run_id) else None
        if bundle is None:
            raise CommandError("not_found", f"no evidence of run {run_id[:40]} on this agent")
        return bundle

    def _run_evidence_drop(self, args: dict[str, Any]) -> dict[str, Any]:
        run_id = str(args["run_id"])
        return {"dropped": is_run_id(run_id) and self.evidence.drop(run_id)}

    # ---- shell and files -----------------------------------------------------------------------------------

    def _shell_run(self, args: dict[str, Any]) -> dict[str, Any]:
        command = str(args["command"])
        timeout = float(args.get("timeout", 60))
        limit = int(args.get("max_output", 64_000))
        if not 0 < timeout <= 3600 or not 0 < limit <= SHELL_OUTPUT_LIMIT:
            raise CommandError("bad_args", "timeout must be in (0, 3600] s and max_output in (0, 1000000] bytes")
        began = time.monotonic()
        # A remote shell is the feature (agents:admin, audited): the command line is meant for a shell.
        process = owned.popen(  # noqa: S604
            command,
            shell=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            cwd=args.get("cwd"),
        )
        assert process.stdout is not None and process.stderr is not None
        with process.stdout, process.stderr:
            stdout, stderr = Captured(limit), Captured(limit)
            timed_out = not capture(process, {process.stdout: stdout, process.stderr: stderr}, began + timeout)
            if timed_out:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return {
            "exit_code": process.returncode,
            "timed_out": timed_out,
            "stdout": bytes(stdout.kept).decode(errors="replace"),
            "stderr": bytes(stderr.kept).decode(errors="replace"),
            "truncated": stdout.dropped > 0 or stderr.dropped > 0,
            "seconds": round(time.monotonic() - began, 3),
        }

    def _check_path(self, path: Path, *, must_exist: bool = False) -> Path:
        resolved = path.expanduser().resolve()
        if not self.allowed_roots or not any(resolved.is_relative_to(root) for root in self.allowed_roots):
            roots = ", ".join(map(str, self.allowed_roots)) or "none configured (agents.allowed_roots)"
            raise CommandError("forbidden_path", f"{resolved} is outside the agent's allowed roots: {roots}")
        if must_exist and not resolved.exists():
            raise CommandError("not_found", f"{resolved} does not exist")
        return resolved

    def _file_put(self, args: dict[str, Any]) -> dict[str, Any]:
        """One chunk: {"path", "offset", "data" (base64), "sha256" of the whole file on the last chunk}.

        The chunks go to a file of the agent's own making beside the target (created exclusively, mode 0600, so a
        link planted there is never followed), renamed over the target once the last chunk's sha256 matches; it
        is removed whenever a chunk fails. The target gets the mode of the file it replaces, else 0644. An
        allowed root itself, or a directory, is no target."""
        path = self._check_path(Path(args["path"]))
        if path in self.allowed_roots:
            raise CommandError("forbidden_path", f"{path} is an allowed root itself: name a file inside it")
        if path.is_dir():
            raise CommandError("is_a_directory", f"{path} is a directory")
        data = base64.b64decode(args["data"], validate=True)
        offset = int(args.get("offset", 0))
        with self._uploads_lock:
            try:
                if offset < 0 or offset + len(data) > self.file_limit:
                    raise CommandError("too_large", f"files are limited to {self.file_limit} bytes on this agent")
                descriptor = self._upload_file(path, offset)
                with os.fdopen(descriptor, "r+b") as file:
                    file.seek(offset)
                    file.write(data)
                    file.truncate()
                    if not args.get("sha256"):
                        return {"path": str(path), "received": offset + len(data)}
                    file.seek(0)
                    digest = hashlib.file_digest(file, "sha256").hexdigest()
                    if digest != args["sha256"]:
                        raise CommandError("checksum_mismatch", f"sha256 {digest} does not match {args['sha256']}")
                    os.fchmod(file.fileno(), stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644)
                os.replace(self._uploads[path], path)
                del self._uploads[path]
                return {"path": str(path), "size": path.stat().st_size, "sha256": digest}
            except BaseException:
                self._discard_upload(path)
                raise

    def _upload_file(self, path: Path, offset: int) -> int:
        """A descriptor of the upload's file: a new one at offset 0 (an earlier upload to `path` is dropped), else
        the one it began with, opened without following a link."""
        if offset:
            part = self._uploads.get(path)
            if part is None:
                raise CommandError("bad_args", f"no upload to {path} is under way: send it again from offset 0")
            return os.open(part, os.O_RDWR | os.O_NOFOLLOW)
        self._discard_upload(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._check_path(path.parent)
        descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=PART_SUFFIX)
        self._uploads[path] = Path(name)
        # A folder on the way swapped for a link meanwhile would have put the file elsewhere.
        self._check_path(Path(name).parent)
        return descriptor

    def _discard_upload(self, path: Path) -> None:
        part = self._uploads.pop(path, None)
        if part is not None:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()

    def _file_get(self, args: dict[str, Any]) -> dict[str, Any]:
        """One chunk: {"path", "size", "offset", "data" (base64), "eof", and "sha256" of the whole file with the
        last chunk}. The file is read a chunk at a time, its size checked before any is read, never through a link
        (one put there after the path was checked)."""
        path = self._check_path(Path(args["path"]), must_exist=True)
        offset = int(args.get("offset", 0))
        length = min(int(args.get("length", 1024 * 1024)), 4 * 1024 * 1024)
        if offset < 0 or length < 0:
            raise CommandError("bad_args", "offset and length must not be negative")
        with open(path, "rb", opener=lambda name, flags: os.open(name, flags | os.O_NOFOLLOW)) as file:
            size = os.fstat(file.fileno()).st_size
            if size > self.file_limit:
                raise CommandError("too_large", f"{path} has {size} bytes; the limit is {self.file_limit}")
            file.seek(offset)
            chunk = file.read(length)
            result: dict[str, Any] = {
                "path": str(path),
                "size": size,
                "offset": offset,
                "data": base64.b64encode(chunk).decode(),
                "eof": offset + len(chunk) >= size,
            }
            if result["eof"]:
                file.seek(0)
                result["sha256"] = hashlib.file_digest(file, "sha256").hexdigest()
        return result

    def _system_info(self, args: dict[str, Any]) -> dict[str, Any]:
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage("/")
        return {
            "host": socket.gethostname(),
            "os": f"{platform.system()} {platform.release()}",
            "cpu_percent": psutil.cpu_percent(interval=None),
            "cpu_count": psutil.cpu_count(),
            "memory": {"total": memory.total, "available": memory.available, "percent": memory.percent},
            "disk": {"total": disk.total, "free": disk.free, "percent": disk.percent},
            "uptime_seconds": round(time.time() - psutil.boot_time()),
            "users": sorted({user.name for user in psutil.users()}),
        }
