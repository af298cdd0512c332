"""`robofleet serve` and `robofleet agent` as real subprocesses, started the way a user starts them, and the
owner that stops whatever a test started."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx
import psutil

from robofleet.agents.display_keeper import stop_recorded
from tests.kit.cli import ROBOFLEET, CliResult, clean_environ, run_cli
from tests.kit.ports import free_port
from tests.kit.waiting import wait_until

ADDRESS_IN_USE = "address already in use"


def stop_process(process: subprocess.Popen[Any] | None, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
    """Sends `sig` and waits `timeout` seconds for the exit, then SIGKILL; the exit code (0 if never started)."""
    if process is None:
        return 0
    if process.poll() is not None:
        return process.returncode
    process.send_signal(sig)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout=timeout)


class ServeProcess:
    """`robofleet serve` in `workdir` (its data in workdir/robofleet-data) on `port`, a free one if not given.

    `env` adds settings to an environment without the runner's ROBOFLEET_* variables. Its output goes to
    workdir/serve.log, or with `split_output` to serve.stdout and serve.stderr beside `workdir`. `start` again
    after a `stop` or `kill` restarts it on the same port and data."""

    def __init__(
        self, workdir: Path, *, env: dict[str, str] | None = None, port: int | None = None, split_output: bool = False
    ) -> None:
        self.workdir = workdir
        self._own_port = port is None
        self.port = port or free_port()
        self.extra_env = dict(env or {})
        self.process: subprocess.Popen[str] | None = None
        self.log = workdir / "serve.log"
        self.split_output = split_output
        self.stdout_file = workdir.parent / f"{workdir.name}.stdout"
        self.stderr_file = workdir.parent / f"{workdir.name}.stderr"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return clean_environ({"ROBOFLEET_SERVER__PORT": str(self.port), **self.extra_env})

    def start(self, *, wait: str | None = "/healthz", timeout: float = 30) -> ServeProcess:
        """Starts serve and waits for `wait` to answer 200 (not at all if None).

        A port of its own choosing that another process took meanwhile (another test's server, in parallel runs)
        is replaced by a new free one, twice at most; fails (RuntimeError) if serve exits first, (AssertionError)
        after `timeout` seconds."""
        for attempt in range(3):
            self._spawn()
            if not wait:
                return self
            try:
                self.wait_for(wait, timeout=timeout)
                if self._listens():
                    return self
                # What answered is another process on our port: ours failed to bind it and is on its way out.
                assert self.process is not None
                self.process.wait(timeout=timeout)
                raise RuntimeError(f"serve exited with {self.process.returncode}:\n{self.output()}")
            except RuntimeError:
                if not (self._own_port and attempt < 2 and ADDRESS_IN_USE in self.output().lower()):
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _listens(self) -> bool:
        """Whether this serve process itself listens on `port` (not another that answered there)."""
        if self.process is None or self.process.poll() is not None:
            return False
        try:
            sockets = psutil.Process(self.process.pid).net_connections(kind="tcp")
        except psutil.Error:
            return False
        return any(s.status == psutil.CONN_LISTEN and s.laddr and s.laddr.port == self.port for s in sockets)

    def _spawn(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        out: IO[str]
        err: IO[str] | int
        if self.split_output:
            out, err = self.stdout_file.open("a"), self.stderr_file.open("a")
        else:
            out, err = self.log.open("a"), subprocess.STDOUT
        with out:
            self.process = subprocess.Popen(
                [*ROBOFLEET, "serve"], cwd=self.workdir, env=self.env, stdout=out, stderr=err, text=True
            )
        if not isinstance(err, int):
            err.close()

    def wait_for(self, path: str, *, status: int = 200, timeout: float = 30) -> httpx.Response:
        """The first answer of `path` with `status`; fails (RuntimeError) if serve exits meanwhile."""
        last: list[object] = [None]

        def answered() -> httpx.Response | None:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"serve exited with {self.process.returncode}:\n{self.output()}")
            try:
                response = httpx.get(self.url + path, timeout=2)
            except httpx.HTTPError as exc:
                last[0] = exc
                return None
            last[0] = response.status_code
            return response if response.status_code == status else None

        return wait_until(
            answered,
            timeout,
            interval=0.1,
            message=lambda: f"{path} to answer {status} (last: {last[0]}):\n{self.output()}",
        )

    def stdout(self) -> str:
        return self.stdout_file.read_text() if self.stdout_file.exists() else ""

    def stderr(self) -> str:
        return self.stderr_file.read_text() if self.stderr_file.exists() else ""

    def output(self) -> str:
        if self.split_output:
            return f"--- stdout\n{self.stdout()}--- stderr\n{self.stderr()}"
        return self.log.read_text() if self.log.exists() else ""

    def cli(self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> CliResult:
        """`robofleet ARGS` run in this server's folder with its settings, as its user would run it."""
        return run_cli(*args, cwd=self.workdir, env={**self.env, **(env or {})}, stdin=stdin)

    def token(self, user: str = "admin", *, agent: str | None = None) -> str:
        """A new API token for `user`, made with `robofleet token create` (its last line is the token); with
        `agent`, bound to that agent name."""
        made = self.cli("token", "create", "--user", user, *(("--agent", agent) if agent else ()))
        assert made.returncode == 0, made.stderr
        return made.stdout.strip().splitlines()[-1]

    def user(self, user: str, role: str) -> str:
        """A new user `user` with `role`, made with the CLI as an operator would; its password (`USER-password`)."""
        password = f"{user}-password"
        made = self.cli("user", "create", user, "--role", role, "--password-stdin", stdin=f"{password}\n")
        assert made.returncode == 0, made.stderr
        return password

    def agent_user(self, user: str) -> str:
        """A new user `user` with the agent role, made with the CLI as an operator would; its name."""
        self.user(user, "agent")
        return user

    def agent_token(self, name: str, user: str | None = None) -> str:
        """A token bound to the agent name `name`, of the agent user `user` (by default a new user `name`)."""
        return self.token(user or self.agent_user(name), agent=name)

    def api(self, token: str | None = None, timeout: float = 20) -> httpx.Client:
        """An HTTP client of this server authenticated with `token`, by default a new admin token."""
        token = token or self.token()
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)

    def admin_password(self) -> str:
        return (self.workdir / "robofleet-data" / "initial-admin-password").read_text().strip()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Sends `sig`, then SIGKILL after `timeout` seconds; the exit code."""
        return stop_process(self.process, sig, timeout)

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)

    @property
    def agent_state_dir(self) -> Path:
        """The embedded local agent's state (its runs, its displays), in the data dir."""
        data_dir = self.extra_env.get("ROBOFLEET_STORE__DATA_DIR")
        return (Path(data_dir) if data_dir else self.workdir / "robofleet-data") / "agent-local"


class AgentProcess:
    """`robofleet agent --name NAME` connected to `server` with `token`, its state in `state_dir`, its output in
    `log`. `start` again after a `stop` or `kill` restarts it on the same state (it finds its runs). The token is
    given as an operator should: in a file of mode 0600 (`--token-file`), never on the command line."""

    def __init__(
        self,
        server: str,
        token: str,
        name: str,
        state_dir: Path,
        *,
        env: dict[str, str] | None = None,
        token_in_env: bool = False,
    ) -> None:
        self.server = server
        self.token = token
        self.token_in_env = token_in_env  # ROBOFLEET_AGENT_TOKEN instead of --token-file
        self.name = name
        self.state_dir = state_dir
        self.env = clean_environ(env)
        self.log = state_dir.parent / f"{state_dir.name}.log"
        self.token_file = state_dir.parent / f"{state_dir.name}.token"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def agent_state_dir(self) -> Path:
        return self.state_dir

    def start(self) -> AgentProcess:
        self.state_dir.parent.mkdir(parents=True, exist_ok=True)
        command = ["agent", "--server", self.server, "--name", self.name, "--state-dir", str(self.state_dir)]
        env = self.env
        if self.token_in_env:
            env = {**env, "ROBOFLEET_AGENT_TOKEN": self.token}
        else:
            descriptor = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(self.token + "\n")
            command += ["--token-file", str(self.token_file)]
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [*ROBOFLEET, *command],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait_online(self, api: httpx.Client, timeout: float = 20) -> AgentProcess:
        """Returns once `api` (a client of the server, allowed to list agents) lists this agent online."""
        wait_until(
            lambda: self.name in [a["name"] for a in api.get("/api/v1/agents").json()["items"] if a["online"]],
            timeout,
            interval=0.1,
            message=lambda: f"agent {self.name} to connect:\n{self.output()}",
        )
        return self

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        """Sends `sig`, then SIGKILL after `timeout` seconds; the exit code."""
        return stop_process(self.process, sig, timeout)

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)


class Processes:
    """Starts `robofleet serve` and `robofleet agent` processes in folders under `base`, and stops them all
    (SIGTERM, then SIGKILL) in `stop_all`, newest first, whatever the test did to them meanwhile."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.started: list[ServeProcess | AgentProcess] = []
        self._named: set[str] = set()

    def _folder(self, stem: str) -> Path:
        """base/stem, or base/stem-2, -3… when taken (by an earlier process or the test's own files)."""
        taken = self._named | ({path.name for path in self.base.iterdir()} if self.base.exists() else set())
        name = next(name for n in range(1, 1000) if (name := stem if n == 1 else f"{stem}-{n}") not in taken)
        self._named.add(name)
        return self.base / name

    def serve(
        self,
        workdir: Path | None = None,
        *,
        env: dict[str, str] | None = None,
        port: int | None = None,
        wait: str | None = "/readyz",
        start: bool = True,
        split_output: bool = False,
        timeout: float = 30,
    ) -> ServeProcess:
        serve = ServeProcess(workdir or self._folder("server"), env=env, port=port, split_output=split_output)
        self.started.append(serve)
        if not start:
            serve.workdir.mkdir(parents=True, exist_ok=True)  # its CLI runs there before it starts
            return serve
        return serve.start(wait=wait, timeout=timeout)

    def agent(
        self,
        server: ServeProcess | str,
        name: str,
        *,
        token: str | None = None,
        state_dir: Path | None = None,
        env: dict[str, str] | None = None,
        online: httpx.Client | None = None,
        timeout: float = 20,
        token_in_env: bool = False,
    ) -> AgentProcess:
        if token is None:
            assert isinstance(server, ServeProcess), "a token, or a ServeProcess to make one with"
            token = server.agent_token(name)
        url = server.url if isinstance(server, ServeProcess) else server
        agent = AgentProcess(url, token, name, state_dir or self._folder("agent"), env=env, token_in_env=token_in_env)
        self.started.append(agent)
        agent.start()
        if online is not None:
            agent.wait_online(online, timeout)
        return agent

    def stop_all(self) -> None:
        """Stops every process, even when stopping one fails, and the displays their agents started (which outlive
        an agent on purpose, as its robots do); then raises the first failure."""
        failures: list[BaseException] = []
        for process in reversed(self.started):
            try:
                process.stop()
            except (OSError, subprocess.SubprocessError) as exc:
                failures.append(exc)
            stop_recorded(process.agent_state_dir)
        if failures:
            raise failures[0]


StartServe = Callable[..., ServeProcess]
StartAgent = Callable[..., AgentProcess]
