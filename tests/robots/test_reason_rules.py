"""The rules a run's reason is made by, as tables: what the shim finds at the end of a failed robot's stderr, what an
exit code says, how who acted is told, and which reason each end gets."""

from __future__ import annotations

import pytest

from robofleet.agents.shim import last_error
from robofleet.robots.reasons import Origin, describe_actor, end_reason, exit_meaning, logged_reason, origin_of

CHAINED = """INFO:root:step 2 of 4
Traceback (most recent call last):
  File "robot.py", line 4, in fetch
    return portal.get()
           ^^^^^^^^^^^^
KeyError: 'session'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "robot.py", line 9, in <module>
    fetch()
ConnectionError: portal down
"""


@pytest.mark.parametrize(
    ("stderr", "reason"),
    [
        (CHAINED, "ConnectionError: portal down"),
        ("ERROR:root:invoice 4711 is over the limit\nINFO:root:leaving\n", "ERROR:root:invoice 4711 is over the limit"),
        ("2026-12-06 08:00:00,123 ERROR invoices: portal refused\n", "ERROR invoices: portal refused"),
        ("[CRITICAL] disk full\n", "CRITICAL] disk full"),
        (
            "2026-12-06 08:00:00.123 | ERROR    | __main__:main:12 - over the limit\n",
            "ERROR | __main__:main:12 - over the limit",
        ),
        # The later of the two wins: an error logged after a traceback was handled is what ended the run.
        (CHAINED + "ERROR:root:giving up after 3 tries\n", "ERROR:root:giving up after 3 tries"),
        ("ERROR:root:first try failed\n" + CHAINED, "ConnectionError: portal down"),
        ("no level here\nterrors and ERRORS are words\n", None),
        ("", None),
        ("ERROR:root:" + "x" * 400, "ERROR:root:" + "x" * 288 + "…"),
    ],
)
def test_the_shim_finds_why_a_robot_failed_at_the_end_of_its_stderr(stderr: str, reason: str | None) -> None:
    assert last_error(stderr) == reason


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        (0, "success"),
        (1, "a general error; in Python, an uncaught exception"),
        (3, "an error of the robot's own (its exit code)"),
        (127, "the program was not found"),
        (137, "killed by SIGKILL"),
        (139, "killed by SIGSEGV"),
        (143, "ended by SIGTERM (asked to stop)"),
        (None, None),
    ],
)
def test_an_exit_code_is_explained(code: int | None, meaning: str | None) -> None:
    assert exit_meaning(code) == meaning


@pytest.mark.parametrize(
    ("actor", "origin", "words"),
    [
        ("alice", Origin.USER, "an operator (alice)"),
        ("alice (token 3f2a)", Origin.TOKEN, "an API token of alice (3f2a)"),
        ("schedule:nightly", Origin.SCHEDULE, "schedule nightly"),
        ("schedule:nightly (token 3f2a)", Origin.SCHEDULE, "schedule nightly"),
        ("restart-policy", Origin.RESTART, "the restart policy"),
        ("cli:root", Origin.CLI, "the command line (root)"),
        ("max_runtime", Origin.SYSTEM, "robofleet (max_runtime)"),
        ("system", Origin.SYSTEM, "robofleet"),
    ],
)
def test_who_acted_is_told_in_words(actor: str, origin: Origin, words: str) -> None:
    assert origin_of(actor) is origin and describe_actor(actor) == words


def test_an_agent_reporting_on_its_run_is_told_as_the_agent() -> None:
    assert describe_actor("agent:pc-01") == "agent pc-01"


def test_each_end_gets_its_reason() -> None:
    crash = {"exit_code": 1, "signal": None, "last_error": "ConnectionError: portal down"}
    assert end_reason("failed", crash, kill_requested_by=None, known=None) == "exit 1: ConnectionError: portal down"
    assert end_reason("failed", {"exit_code": 3}, kill_requested_by=None, known=None) == "exit 3"
    spawn = {"exit_code": 127, "spawn_error": "cannot start 'pyhton3': No such file or directory"}
    assert end_reason("failed", spawn, kill_requested_by=None, known=None) == spawn["spawn_error"]
    oom = {"exit_code": 137, "signal": 9}
    assert end_reason("failed", oom, kill_requested_by=None, known=None) == "killed by SIGKILL (not by robofleet)"
    assert end_reason("failed", {"exit_code": None}, kill_requested_by=None, known=None) == (
        "ended without an exit code (its run shim was killed)"
    )
    assert end_reason("killed", oom, kill_requested_by="alice", known=None) == "killed by an operator (alice)"
    assert end_reason("succeeded", {"exit_code": 0}, kill_requested_by=None, known="stale") is None
    assert end_reason("stopped", {"exit_code": 143}, kill_requested_by=None, known=None) is None
    timeout = "killed by SIGKILL at the safe-stop timeout: it did not stop within 5 s of the stop"
    assert end_reason("stopped", oom, kill_requested_by=None, known=timeout) == timeout


def test_a_record_logged_at_error_gives_its_exception_or_its_first_line() -> None:
    assert logged_reason("invoice 4711 is over the limit") == "invoice 4711 is over the limit"
    assert logged_reason("invoice 8 failed\n" + CHAINED) == "ConnectionError: portal down"
    assert logged_reason("\n  two\nlines") == "two"
    assert logged_reason("ERROR is a word here") == "ERROR is a word here"
