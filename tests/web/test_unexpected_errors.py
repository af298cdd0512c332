"""An error no handler knows is a 500 in the documented shape, logged once with its traceback and not handed on
to the server (which would log it a second time); a value the store refuses is a 422 wherever it is raised."""

from __future__ import annotations

import logging

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.conftest import bearer


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_an_unexpected_error_is_one_logged_traceback_and_a_500(
    client: TestClient, admin_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    def boom() -> None:
        raise RuntimeError("a bug")

    def refused() -> None:  # a driver used directly, past the store's own mapping
        raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")

    client.app.add_api_route("/api/v1/boom", boom)  # type: ignore[attr-defined]
    client.app.add_api_route("/panel/boom", boom)  # type: ignore[attr-defined]
    client.app.add_api_route("/api/v1/refused", refused)  # type: ignore[attr-defined]
    caplog.set_level(logging.ERROR)

    answer = client.get("/api/v1/boom", headers=bearer(admin_token))  # TestClient raises what the app hands on
    assert answer.status_code == 500
    assert answer.json() == {
        "error": {"code": "internal", "message": "an unexpected error occurred; it has been logged", "details": None}
    }
    assert answer.headers["x-content-type-options"] == "nosniff"
    tracebacks = [record for record in caplog.records if record.exc_info]
    assert [record.getMessage() for record in tracebacks] == ["unexpected error on GET /api/v1/boom"]

    page = client.get("/panel/boom")
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")

    caplog.clear()
    refusal = client.get("/api/v1/refused")
    assert refusal.status_code == 422 and refusal.json()["error"]["code"] == "nul_character"
    assert not caplog.records
