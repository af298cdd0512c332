"""A run's states and their transitions are one table (robots/states.py) that the service obeys."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from robofleet.errors import Conflict
from robofleet.robots.models import Run
from robofleet.robots.restarts import restart_delay
from robofleet.robots.schemas import RestartPolicy
from robofleet.robots.states import ACTIVE, ENDED, TRANSITIONS, RunState, may_move
from robofleet.robots.store_ops import transition


def test_the_table_names_every_state_once() -> None:
    assert set(TRANSITIONS) == set(RunState) == {*ACTIVE, *ENDED}
    assert not set(ACTIVE) & set(ENDED)


def test_an_ended_run_moves_no_more_except_a_lost_one() -> None:
    for state in ENDED:
        if state != RunState.LOST:
            assert TRANSITIONS[state] == frozenset(), state
    assert may_move("lost", "running")  # its agent came back and found it alive
    assert may_move("lost", "succeeded")  # or reported how it ended meanwhile


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [
        ("starting", "running", True),
        ("running", "paused", True),
        ("paused", "running", True),
        ("running", "stopping", True),
        ("stopping", "stopped", True),
        ("stopping", "running", False),
        ("succeeded", "running", False),
        ("killed", "stopped", False),
        ("running", "queued", False),
    ],
)
def test_moves(source: str, target: str, allowed: bool) -> None:
    assert may_move(source, target) is allowed


def test_an_illegal_transition_is_a_conflict_and_changes_nothing() -> None:
    run = Run(id=7, robot="r", agent="local", state="succeeded", transitions=[])
    with pytest.raises(Conflict) as raised:
        transition(run, RunState.RUNNING, datetime.now(UTC), "test")
    assert raised.value.code == "illegal_transition" and run.state == "succeeded" and run.transitions == []


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_the_openapi_document_lists_the_states(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["RunState"]["enum"] == [state.value for state in RunState]
    assert schemas["RunOut"]["properties"]["state"] == {"$ref": "#/components/schemas/RunState"}


def test_the_restart_policy_is_a_pure_decision() -> None:
    policy = RestartPolicy(policy="on-failure", backoff_seconds=2, give_up_after=3)
    assert [restart_delay(policy, manual_stop=False, failures=n) for n in (1, 2, 3)] == [2.0, 4.0, None]
    assert restart_delay(policy, manual_stop=True, failures=1) is None
    assert restart_delay(RestartPolicy(), manual_stop=False, failures=1) is None  # "never"
    assert restart_delay(RestartPolicy(policy="on-failure", backoff_seconds=200), manual_stop=False, failures=4) == 300
