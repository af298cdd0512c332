"""What the robot-side log handler delivers against a real orchestrator: never its own traffic, batches that fit
the server's body limit, any text, and an exit that does not hang while the orchestrator is away."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from robofleet.sdk import RobofleetLogHandler
from tests.conftest import ServeProcess, StartServe

pytestmark = pytest.mark.slow


@dataclass
class Orchestrator:
    serve: ServeProcess
    robot_token: str
    reader_token: str

    def handler(self, run_id: str, **options: Any) -> RobofleetLogHandler:
        options.setdefault("flush_interval", 5.0)  # nothing goes out before send_now(): batches are predictable
        return RobofleetLogHandler(self.serve.url, self.robot_token, source="robot:delivery", run_id=run_id, **options)

    def stored(self, run_id: str) -> list[dict[str, Any]]:
        answer = httpx.get(
            f"{self.serve.url}/api/v1/logs",
            params={"run_id": run_id, "order": "asc", "limit": 1000},
            headers={"Authorization": f"Bearer {self.reader_token}"},
        )
        answer.raise_for_status()
        items: list[dict[str, Any]] = answer.json()["items"]
        return items


@pytest.fixture(scope="module")
def orchestrator(start_module_serve: StartServe) -> Orchestrator:
    serve = start_module_serve()
    made = serve.cli("user", "create", "robot-1", "--role", "robot", "--password-stdin", stdin="long-password\n")
    assert made.returncode == 0, made.stderr
    return Orchestrator(serve, serve.token("robot-1"), serve.token())


@pytest.fixture
def run_id() -> str:
    return f"run-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def robot_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger(f"robot.{uuid.uuid4().hex[:8]}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger
    for handler in logger.handlers:
        logger.removeHandler(handler)
        handler.close()


def test_the_handler_never_ships_its_own_requests_but_ships_the_robots(orchestrator: Orchestrator, run_id: str) -> None:
    handler = orchestrator.handler(run_id)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)  # as logging.basicConfig(level=INFO) does: httpx's INFO lines now reach the root
    root.addHandler(handler)
    on_stderr: list[str] = []  # the robot's other handlers (its stderr) do not get the shipper's lines either
    other = logging.Handler()
    other.emit = lambda record: on_stderr.append(record.getMessage())  # type: ignore[method-assign]
    root.addHandler(other)
    try:
        logging.getLogger("robot").info("one line")
        assert handler.send_now(3)
        httpx.get(f"{orchestrator.serve.url}/healthz")  # the robot's own HTTP: its httpx line is shipped
        assert handler.send_now(3)
        time.sleep(0.3)  # long enough for dozens of self-inflicted round trips, were there any
        assert handler.send_now(3)
    finally:
        root.removeHandler(handler)
        root.removeHandler(other)
        root.setLevel(level)
        handler.close()
    assert len(on_stderr) == 2 and "/healthz" in on_stderr[1], on_stderr
    messages = [record["message"] for record in orchestrator.stored(run_id)]
    assert len(messages) == 2 and messages[0] == "one line"
    assert messages[1].startswith("HTTP Request: GET ") and "/healthz" in messages[1]
    assert handler.sent == 2


def test_batches_bigger_than_the_servers_body_limit_are_split_not_dropped(
    orchestrator: Orchestrator, run_id: str, robot_logger: logging.Logger
) -> None:
    handler = orchestrator.handler(run_id)
    robot_logger.addHandler(handler)
    padding = "x" * 4000  # 600 of these are well past the server's 1 MiB body limit, each far below it
    for n in range(600):
        robot_logger.info("line %d %s", n, padding)
    assert handler.send_now(20)
    assert (handler.sent, handler.dropped) == (600, 0)
    stored = orchestrator.stored(run_id)
    assert [record["message"].split()[1] for record in stored] == [str(n) for n in range(600)]


def test_a_record_too_big_even_alone_is_dropped_and_said_so(
    orchestrator: Orchestrator, run_id: str, robot_logger: logging.Logger
) -> None:
    handler = orchestrator.handler(run_id)
    robot_logger.addHandler(handler)
    robot_logger.info("before")
    robot_logger.info("huge %s", "y" * 1_200_000)
    robot_logger.info("after")
    assert handler.send_now(20)
    assert (handler.sent, handler.dropped) == (2, 1)
    messages = [record["message"] for record in orchestrator.stored(run_id)]
    assert len(messages) == 3 and messages[0] == "before" and messages[2] == "after"
    assert messages[1].startswith("1 log record was dropped: too large for the orchestrator even alone (HTTP 413")


def test_records_the_server_refuses_for_good_are_counted_as_dropped_and_said_so(
    orchestrator: Orchestrator, run_id: str, robot_logger: logging.Logger
) -> None:
    handler = orchestrator.handler(run_id)
    robot_logger.addHandler(handler)
    robot_logger.info("refused alone", extra={"run_id": "r" * 65})  # the whole batch refused: 422
    assert handler.send_now(5)
    assert (handler.sent, handler.dropped) == (0, 1)
    robot_logger.info("kept")
    robot_logger.info("refused among others", extra={"run_id": "r" * 65})  # this one refused: 207
    assert handler.send_now(5)
    assert (handler.sent, handler.dropped) == (1, 2)
    stored = orchestrator.stored(run_id)
    assert [record["message"] for record in stored][1] == "kept"
    notices = [record for record in stored if "dropped" in record["message"]]
    assert [notice["level"] for notice in notices] == ["WARNING", "WARNING"]
    assert notices[0]["message"].startswith("1 log record was dropped: refused by the orchestrator (HTTP 422")
    assert notices[1]["message"].startswith("1 log record was dropped: refused by the orchestrator")
    assert all("run_id must be" in notice["message"] for notice in notices)


def test_text_that_is_not_unicode_arrives_and_the_shipper_keeps_going(
    orchestrator: Orchestrator, run_id: str, robot_logger: logging.Logger
) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no text for this one")

    handler = orchestrator.handler(run_id)
    robot_logger.addHandler(handler)
    name = os.fsdecode(b"report-\xff.csv")  # an undecodable file name byte, as os.listdir gives it
    robot_logger.info("processing %s", name, extra={"fields": {"file": name}})
    robot_logger.info("cannot encode this", extra={"fields": {"thing": Unprintable()}})
    robot_logger.info("next line")
    assert handler.send_now(5)
    stored = orchestrator.stored(run_id)
    assert [record["message"] for record in stored][:2] == ["processing report-\\xff.csv", "next line"]
    assert stored[0]["fields"]["file"] == "report-\\xff.csv"
    assert stored[2]["message"].startswith("1 log record was dropped: could not be encoded")
    assert (handler.sent, handler.dropped) == (2, 1)


ROBOT = textwrap.dedent(
    """
    import logging
    from robofleet.sdk import RobofleetLogHandler

    log = logging.getLogger("robot")
    log.setLevel(logging.INFO)
    log.addHandler(RobofleetLogHandler())
    for n in range({lines}):
        log.info("line %d", n)
    """
)


def run_robot(env: dict[str, str], lines: int) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", ROBOT.format(lines=lines)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, time.monotonic() - started


@pytest.mark.parametrize("orchestrator_down", ["refusing connections", "never answering"])
def test_a_robot_exits_within_seconds_while_the_orchestrator_is_down(orchestrator_down: str) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        if orchestrator_down == "never answering":
            silent.listen()  # connections complete in the kernel's backlog; no request is ever answered
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        done, took = run_robot({"ROBOFLEET_URL": url, "ROBOFLEET_TOKEN": "t"}, lines=10)
    assert done.returncode == 0, done.stderr
    assert took < 3.5  # flush() and close() share a budget of 2 s; the rest is starting Python
    notes = [line for line in done.stderr.splitlines() if line.startswith("robofleet:")]
    assert len(notes) == 1 and notes[0].startswith(f"robofleet: 10 log records could not be delivered to {url}")


def test_a_robot_exiting_at_once_still_delivers_everything_buffered(orchestrator: Orchestrator, run_id: str) -> None:
    env = {
        "ROBOFLEET_URL": orchestrator.serve.url,
        "ROBOFLEET_TOKEN": orchestrator.robot_token,
        "ROBOFLEET_RUN_ID": run_id,
        "ROBOFLEET_ROBOT": "exiting",
    }
    done, _ = run_robot(env, lines=900)
    assert done.returncode == 0 and done.stderr == ""
    assert [record["message"] for record in orchestrator.stored(run_id)] == [f"line {n}" for n in range(900)]


def test_a_robot_whose_token_is_refused_says_how_many_lines_it_lost(orchestrator: Orchestrator) -> None:
    done, _ = run_robot({"ROBOFLEET_URL": orchestrator.serve.url, "ROBOFLEET_TOKEN": "rf_not_a_token"}, lines=10)
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if line.startswith("robofleet:")]
    assert "dropped so far" in notes[0] and "401" in notes[0], notes
    assert notes[-1] == "robofleet: 10 log records dropped in all: the orchestrator refused them", notes
