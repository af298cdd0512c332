"""What an agent does with the orchestrator's commands, whoever carries them (the embedded local agent or a
remote `robofleet agent` over WebSocket): start and signal robot processes, run shell commands, move files,
describe the machine. Each command has an id: a repeated id gets the first result again, never a second run; a
repeat that arrives while the first run still goes waits for that run's result.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import os
import platform
import socket
import subprocess
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import psutil

from robofleet.agents.processes import ManagedRun, ProcessManager, is_run_id
from robofleet.agents.spool import Output, Positions, SpoolReader

REMEMBERED_RESULTS = 10_000
SHELL_OUTPUT_LIMIT = 1_000_000
FILE_LIMIT = 50 * 1024 * 1024
CAPABILITIES = ["process", "shell", "files", "system"]


class CommandError(Exception):
    """A command that cannot be carried out; `code` says why in a word (bad_args, not_found, forbidden_path…)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Worker:
    def __init__(
        self, state_dir: Path, *, allowed_roots: list[Path] | None = None, file_limit: int = FILE_LIMIT
    ) -> None:
        self.processes = ProcessManager(state_dir)
        self.spool = SpoolReader()
        self.allowed_roots = [root.resolve() for root in (allowed_roots or [])]
        self.file_limit = file_limit
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
        }

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
            return {"ok": True, "result": handler(args)}
        except CommandError as exc:
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
        "exit_code", "signal", "ended_at" (when the shim recorded it), "leftovers" (how many processes the run left
        behind that the agent ended)}. They stay known until `collect`. Looks after the runs first (see
        `look_after_runs`), so it may block for up to LEFTOVER_GRACE_SECONDS: call it in a thread."""
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
        ended = [run for run in list(self.processes.runs.values()) if self.processes.outcome(run) is not None]
        for run in self.processes.end_leftovers(ended):
            self.spool.read_again(run.run_id)

    def collect(self, run_id: str) -> None:
        run = self.processes.runs.get(run_id)
        if run is not None:
            self.processes.collect(run)
        self.spool.forget(run_id)

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
        run = self.processes.start(
            run_id,
            argv,
            cwd=cwd,
            env=env,
            label=str(args.get("robot", "")),
            keep_leftovers=keep_leftovers,
        )
        return self._run_state(run)

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
            self.processes.terminate(run)
        elif action == "kill":
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

    # ---- shell and files -----------------------------------------------------------------------------------

    def _shell_run(self, args: dict[str, Any]) -> dict[str, Any]:
        command = str(args["command"])
        timeout = float(args.get("timeout", 60))
        limit = int(args.get("max_output", 64_000))
        if not 0 < timeout <= 3600 or not 0 < limit <= SHELL_OUTPUT_LIMIT:
            raise CommandError("bad_args", "timeout must be in (0, 3600] s and max_output in (0, 1000000] bytes")
        began = time.monotonic()
        # A remote shell is the feature (agents:admin, audited): the command line is meant for a shell.
        process = subprocess.Popen(  # noqa: S602
            command,
            shell=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            cwd=args.get("cwd"),
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            stdout, stderr = process.communicate()
            timed_out = True
        return {
            "exit_code": process.returncode,
            "timed_out": timed_out,
            "stdout": stdout[:limit].decode(errors="replace"),
            "stderr": stderr[:limit].decode(errors="replace"),
            "truncated": len(stdout) > limit or len(stderr) > limit,
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
        """One chunk: {"path", "offset", "data" (base64), "sha256" of the whole file on the last chunk}."""
        path = self._check_path(Path(args["path"]))
        data = base64.b64decode(args["data"], validate=True)
        offset = int(args.get("offset", 0))
        if offset + len(data) > self.file_limit:
            raise CommandError("too_large", f"files are limited to {self.file_limit} bytes on this agent")
        partial = path.with_name(path.name + ".robofleet-part")
        partial.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("r+b" if offset else "wb") as file:
            file.seek(offset)
            file.write(data)
            file.truncate()
        if args.get("sha256"):
            digest = hashlib.sha256(partial.read_bytes()).hexdigest()
            if digest != args["sha256"]:
                partial.unlink()
                raise CommandError("checksum_mismatch", f"sha256 {digest} does not match {args['sha256']}")
            os.replace(partial, path)
            return {"path": str(path), "size": path.stat().st_size, "sha256": digest}
        return {"path": str(partial), "received": offset + len(data)}

    def _file_get(self, args: dict[str, Any]) -> dict[str, Any]:
        path = self._check_path(Path(args["path"]), must_exist=True)
        size = path.stat().st_size
        if size > self.file_limit:
            raise CommandError("too_large", f"{path} has {size} bytes; the limit is {self.file_limit}")
        offset = int(args.get("offset", 0))
        length = min(int(args.get("length", 1024 * 1024)), 4 * 1024 * 1024)
        with path.open("rb") as file:
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
            result["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
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
