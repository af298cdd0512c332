from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from robofleet.orchestrator import Orchestrator
from robofleet.settings.model import Settings
from robofleet.store import Store
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


def submit(client: TestClient, token: str, body: object, **params: object) -> dict:  # type: ignore[type-arg]
    response = client.post("/api/v1/activities", headers={"Authorization": f"Bearer {token}"}, json=body, params=params)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


__all__ = ["Store", "submit"]
