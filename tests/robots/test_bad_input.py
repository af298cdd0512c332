"""Bad input to the robots routes is refused with a 4xx that names the field, never a 500, on a real `robofleet
serve`, both stores."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import StartServe
from tests.robots.conftest import serve_env

pytestmark = pytest.mark.slow
NOT_NULL = (
    "agent",
    "argv",
    "env",
    "safe_stop_timeout",
    "restart",
    "max_concurrent",
    "tags",
    "description",
    "keep_leftovers",
)


def test_null_in_a_robot_patch_is_refused_by_field(start_serve: StartServe, store_url: str) -> None:
    serve = start_serve(env=serve_env(store_url))
    api = serve.api()
    made = api.post("/api/v1/robots", json={"name": "billing-probe", "argv": [sys.executable, "-c", "pass"]})
    assert made.status_code == 201, made.text
    for field in NOT_NULL:
        refused = api.patch("/api/v1/robots/billing-probe", json={field: None})
        assert refused.status_code == 422, (field, refused.text)
        assert field in refused.json()["error"]["message"] and "null" in refused.json()["error"]["message"]
    assert api.get("/api/v1/robots/billing-probe").json() == made.json()
    # Where a definition can have none, null is that: the agent's own directory, no session, no limit.
    cleared = api.patch("/api/v1/robots/billing-probe", json={"cwd": None, "session": None, "max_runtime": None})
    assert cleared.status_code == 200, cleared.text
    assert "Traceback" not in serve.output()
