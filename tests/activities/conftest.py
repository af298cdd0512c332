from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from robofleet.orchestrator import Orchestrator
from robofleet.settings.model import Settings
from robofleet.web.app import create_app
from tests.activities import recording_actions

MODULE = "tests.activities.recording_actions"


@pytest.fixture
def settings(store_url: str, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(
        store={"url": store_url, "data_dir": tmp_path / "data"},
        activities={"modules": [MODULE], "max_concurrent": 3, "max_batch": 20},
    )


@pytest.fixture
def client(context: Orchestrator) -> Iterator[TestClient]:
    recording_actions.reset()
    with TestClient(create_app(context), base_url="http://testserver") as test_client:
        assert context.processor is not None
        yield test_client


@dataclass
class Recorded:
    """What the test actions of recording_actions did: `executed` (their seq, in order) and `concurrency`
    ("now", "peak": how many ran at once)."""

    executed: list[int]
    concurrency: dict[str, int]


@pytest.fixture
def recorded() -> Recorded:
    """The records of the test actions, empty when the test begins."""
    recording_actions.reset()
    return Recorded(recording_actions.executed, recording_actions.concurrency)


def submit(client: TestClient, token: str, body: object, **params: object) -> dict:  # type: ignore[type-arg]
    """POSTs `body` to /api/v1/activities with `params`; the answer, or a failure unless it is a 201."""
    response = client.post("/api/v1/activities", headers={"Authorization": f"Bearer {token}"}, json=body, params=params)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]
