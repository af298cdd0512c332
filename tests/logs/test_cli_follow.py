"""`robofleet logs --follow` across a restart of the orchestrator: it reconnects and resumes where it was, and still
stops at once when the server refuses it."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import ServeProcess, StartServe, wait_until

pytestmark = pytest.mark.slow


class Follower:
    """A `robofleet logs --follow` subprocess whose output lines are read as they come."""

    def __init__(self, serve: ServeProcess, token: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "robofleet", "logs", "--follow", *args],
            cwd=serve.workdir,
            env={**serve.env, "ROBOFLEET_CLIENT__TOKEN": token},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        for stream, kept in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr)):
            threading.Thread(target=self._read, args=(stream, kept), daemon=True).start()

    def _read(self, stream: Iterator[str] | None, kept: list[str]) -> None:
        for line in stream or ():
            kept.append(line.rstrip("\n"))

    def wait_until(self, printed: Callable[[], bool], timeout: float = 20) -> None:
        wait_until(printed, timeout, 0.1, lambda: f"it printed; stdout {self.stdout}, stderr {self.stderr}")

    def messages(self) -> list[str]:
        return [line.split(" robot:follow ", 1)[1] for line in self.stdout if " robot:follow " in line]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=30)  # a loaded machine: the exit itself is not what is measured


@pytest.fixture
def follow() -> Iterator[Callable[..., Follower]]:
    """`follow(serve, token, *args)`: a started Follower, stopped when the test ends."""
    started: list[Follower] = []

    def start(serve: ServeProcess, token: str, *args: str) -> Follower:
        started.append(Follower(serve, token, *args))
        return started[-1]

    yield start
    for follower in started:
        try:
            follower.stop()
        except subprocess.TimeoutExpired:
            follower.process.kill()
            follower.process.wait(10)


def post(serve: ServeProcess, token: str, *messages: str) -> None:
    records = [{"message": message, "source": "robot:follow"} for message in messages]
    answer = httpx.post(
        f"{serve.url}/api/v1/logs", json={"records": records}, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 201, answer.text


def test_follow_resumes_after_a_server_restart_without_losing_or_repeating_a_record(
    start_serve: StartServe, follow: Callable[..., Follower]
) -> None:
    serve = start_serve()
    token = serve.token()
    post(serve, token, "before 1", "before 2")
    follower = follow(serve, token, "--source", "robot:follow")
    follower.wait_until(lambda: "before 2" in follower.messages())
    post(serve, token, "live before the restart")
    follower.wait_until(lambda: "live before the restart" in follower.messages())
    serve.stop()
    serve.start(wait="/readyz")
    post(serve, token, "after 1")  # most likely stored before it reconnects: it comes from the backlog
    post(serve, token, "after 2")
    follower.wait_until(lambda: "after 2" in follower.messages())
    post(serve, token, "after 3")  # and live again
    follower.wait_until(lambda: "after 3" in follower.messages())
    code = follower.stop()
    assert code == 0, follower.stderr
    assert follower.messages() == [
        "before 1",
        "before 2",
        "live before the restart",
        "after 1",
        "after 2",
        "after 3",
    ]
    notes = [line for line in follower.stderr if line.startswith("robofleet:")]
    assert len(notes) == 1 and notes[0].startswith("robofleet: stream lost (") and "reconnecting" in notes[0]


def test_follow_stops_at_once_when_the_server_refuses_it_after_a_reconnect(
    start_serve: StartServe, follow: Callable[..., Follower]
) -> None:
    serve = start_serve()
    made = serve.cli("token", "create", "--user", "admin", "--name", "follower")
    assert made.returncode == 0, made.stderr
    token_id, token = made.stdout.split()[1], made.stdout.strip().splitlines()[-1]
    post(serve, token, "seen")
    follower = follow(serve, token, "--source", "robot:follow")
    follower.wait_until(lambda: "seen" in follower.messages())
    serve.kill()  # a crash this time: no graceful wait for open streams
    revoked = serve.cli("token", "revoke", token_id)
    assert revoked.returncode == 0, revoked.stderr
    serve.start(wait="/readyz")
    code = follower.process.wait(timeout=20)
    assert code == 1
    assert any(line.startswith("robofleet: 401 ") for line in follower.stderr), follower.stderr
