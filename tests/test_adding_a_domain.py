"""A new domain is its package and one line: its routes, actions and service run with nothing else edited."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from robofleet.domains import DOMAINS
from robofleet.orchestrator import Orchestrator
from robofleet.settings.model import Settings
from robofleet.store import Store
from robofleet.web.app import create_app
from tests import sample_domain
from tests.conftest import bearer


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_new_domain_gets_its_routes_actions_and_a_started_then_stopped_service(
    settings: Settings, store: Store, admin_token: str
) -> None:
    orchestrator = Orchestrator(settings, store, ready=True, domains=(*DOMAINS, sample_domain.DOMAIN))
    assert "sample.state" in orchestrator.registry
    with TestClient(create_app(orchestrator)) as client:
        assert client.get("/api/v1/sample", headers=bearer(admin_token)).json() == {"state": "started"}
        assert client.get("/api/v1/sample").status_code == 401  # its guard holds like every route's
        answer = client.post(
            "/api/v1/activities",
            headers=bearer(admin_token),
            json={"action": "sample.state", "args": {}},
            params={"wait": 10},
        ).json()
        assert answer["activities"][0]["result"] == {"state": "started"}
        started_first = list(orchestrator.services)
    assert started_first[-1] == "sample" and sample_domain.STOPPED == ["sqlite"]  # after the built-in domains' own
    assert orchestrator.services == {} and orchestrator.robots is None and orchestrator.processor is None
