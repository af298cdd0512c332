"""A robot that logs its error through the SDK only (nothing on its stderr) still says why it failed: the robots
service reads the run's newest record at ERROR from the log store. A real serve (the SDK sends to its URL), on both
stores."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from tests.conftest import StartServe, wait_until
from tests.robots.conftest import serve_env

pytestmark = pytest.mark.slow
# Logs through the SDK only: its error is in the log store, not on its stderr.
SDK_ERROR = (
    "import logging, sys\n"
    "from robofleet.sdk import RobofleetLogHandler\n"
    "handler = RobofleetLogHandler()\n"
    "log = logging.getLogger('invoices')\n"
    "log.addHandler(handler)\n"
    "log.error('invoice 4711 is over the limit')\n"
    "log.warning('leaving')\n"
    "handler.close()\n"
    "sys.exit(3)\n"
)
TRACEBACK_ONLY_IN_THE_LOGS = (
    "import logging, sys\n"
    "from robofleet.sdk import RobofleetLogHandler\n"
    "handler = RobofleetLogHandler()\n"
    "log = logging.getLogger('invoices')\n"
    "log.addHandler(handler)\n"
    "try:\n"
    "    raise ConnectionError('portal down')\n"
    "except ConnectionError:\n"
    "    log.exception('invoice 8 failed')\n"
    "handler.close()\n"
    "sys.exit(4)\n"
)


def test_an_error_logged_through_the_sdk_is_the_reason_too(start_serve: StartServe, store_url: str) -> None:
    serve = start_serve(env=serve_env(store_url))
    api = serve.api()
    for name, code in (("sdk-business", SDK_ERROR), ("sdk-exception", TRACEBACK_ONLY_IN_THE_LOGS)):
        assert api.post("/api/v1/robots", json={"name": name, "argv": [sys.executable, "-c", code]}).status_code == 201

    def ended(name: str) -> dict[str, Any]:
        run_id = api.post(f"/api/v1/robots/{name}/start").json()["id"]
        return wait_until(
            lambda: (run := api.get(f"/api/v1/runs/{run_id}").json())["ended_at"] and run, 20, 0.1, f"{name} to end"
        )

    assert ended("sdk-business")["error"] == "exit 3: invoice 4711 is over the limit"
    assert ended("sdk-exception")["error"] == "exit 4: ConnectionError: portal down"
