"""A robot run outside robofleet (no ROBOFLEET_URL, no ROBOFLEET_TOKEN) is told which variable is missing."""

from __future__ import annotations

import pytest

from tests.sdk.conftest import run_python

pytestmark = pytest.mark.slow
CATCH = """
from robofleet import sdk
try:
    sdk.queue("invoices")
except sdk.NotInARun as exc:
    print(exc)
"""


def test_the_missing_variable_is_named() -> None:
    neither = run_python(CATCH)
    assert neither.stdout.startswith("ROBOFLEET_URL is not set: robofleet.sdk finds the orchestrator's address"), (
        neither
    )
    assert "pass url= and token=" in neither.stdout
    no_token = run_python(CATCH, {"ROBOFLEET_URL": "http://127.0.0.1:9"})
    assert no_token.stdout.startswith("ROBOFLEET_TOKEN is not set: "), no_token
    uncaught = run_python("from robofleet import sdk\nfor item in sdk.queue('invoices'):\n    pass\n")
    assert uncaught.returncode == 1
    assert uncaught.stderr.splitlines()[-1].startswith("robofleet.sdk.errors.NotInARun: ROBOFLEET_URL is not set")
