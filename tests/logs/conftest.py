"""Fixtures of the log tests that run robots: `robots`, the robots API of the in-process app as its administrator."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import bearer
from tests.robots.conftest import RobotsApi


@pytest.fixture
def robots(client: TestClient, admin_token: str) -> RobotsApi:
    return RobotsApi(client, bearer(admin_token), wait_seconds=20, output_seconds=10)
