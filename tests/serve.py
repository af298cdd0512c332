"""`robofleet serve` as a real subprocess, started the way a user starts it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.pg import free_port


class ServeProcess:
    def __init__(self, workdir: Path, *, env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "ROBOFLEET_SERVER__PORT": str(self.port), **(env or {})}
        self.env.pop("ROBOFLEET_CONFIG", None) if "ROBOFLEET_CONFIG" not in (env or {}) else None
        self.process: subprocess.Popen[str] | None = None
        self.log = workdir / "serve.log"

    def start(self, *, wait: str | None = "/healthz", timeout: float = 30) -> ServeProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "robofleet", "serve"],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        if wait:
            self.wait_for(wait, timeout=timeout)
        return self

    def wait_for(self, path: str, *, status: int = 200, timeout: float = 30) -> httpx.Response:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"serve exited with {self.process.returncode}:\n{self.output()}")
            try:
                response = httpx.get(self.url + path, timeout=2)
                if response.status_code == status:
                    return response
                last = response.status_code
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.1)
        raise TimeoutError(f"{path} did not answer {status} within {timeout}s (last: {last}):\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def cli(
        self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`robofleet ARGS` run in this server's folder with its settings, as its user would run it."""
        return subprocess.run(
            [sys.executable, "-m", "robofleet", *args],
            cwd=self.workdir,
            env={**self.env, **(env or {})},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def token(self, user: str = "admin") -> str:
        """A new API token for `user`, made with `robofleet token create` (its last line is the token)."""
        made = self.cli("token", "create", "--user", user)
        assert made.returncode == 0, made.stderr
        return made.stdout.strip().splitlines()[-1]

    def agent_token(self, name: str) -> str:
        """A token of a new user `name` with the agent role, made with the CLI as an operator would."""
        made = self.cli("user", "create", name, "--role", "agent", "--password-stdin", stdin=f"{name}-password\n")
        assert made.returncode == 0, made.stderr
        return self.token(name)

    def admin_password(self) -> str:
        return (self.workdir / "robofleet-data" / "initial-admin-password").read_text().strip()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=timeout)

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)
