"""Secret-looking env values are masked in what the API shows, and a client that sends the mask back (a GET, changed,
PATCHed) keeps the stored secret; a mask that stands for no stored secret is refused by name. Both stores."""

from __future__ import annotations

import sys
from typing import Any

from fastapi.testclient import TestClient

from robofleet.robots import store_ops
from robofleet.store import Store
from tests.conftest import bearer
from tests.robots.conftest import RobotsApi

MASK = "********"
# Prints the secret it was given: what the robot sees is what matters.
SHOW_TOKEN = [sys.executable, "-c", "import os; print('token is', os.environ['API_TOKEN'])"]


def stored_env(store: Store, name: str) -> dict[str, str]:
    with store.transaction() as session:
        return dict(store_ops.find_robot(session, name).env)


def patch(client: TestClient, token: str, name: str, **fields: Any) -> Any:
    return client.patch(f"/api/v1/robots/{name}", headers=bearer(token), json=fields)


def test_a_patch_that_sends_back_the_mask_keeps_the_stored_secret(
    client: TestClient, admin_token: str, store: Store, robots: RobotsApi
) -> None:
    robots.make("portal", SHOW_TOKEN, env={"GREETING": "hello", "API_TOKEN": "s3cret"})
    shown = client.get("/api/v1/robots/portal", headers=bearer(admin_token)).json()
    assert shown["env"] == {"GREETING": "hello", "API_TOKEN": MASK}

    changed = patch(client, admin_token, "portal", env={**shown["env"], "GREETING": "hi", "EXTRA": "1"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["env"] == {"GREETING": "hi", "API_TOKEN": MASK, "EXTRA": "1"}
    assert stored_env(store, "portal") == {"GREETING": "hi", "API_TOKEN": "s3cret", "EXTRA": "1"}

    run = robots.start("portal")
    assert robots.wait_run(run["id"], "succeeded", "failed")["state"] == "succeeded"
    params = {"run_id": str(run["id"]), "source": "robot:portal"}
    messages = [
        r["message"] for r in client.get("/api/v1/logs", headers=bearer(admin_token), params=params).json()["items"]
    ]
    assert messages == ["token is s3cret"]

    # A new value replaces the secret; leaving the key out removes it.
    assert patch(client, admin_token, "portal", env={"API_TOKEN": "n3w"}).status_code == 200
    assert stored_env(store, "portal") == {"API_TOKEN": "n3w"}
    assert patch(client, admin_token, "portal", env={}).status_code == 200
    assert stored_env(store, "portal") == {}


def test_a_mask_that_stands_for_no_stored_secret_is_refused_by_name(
    client: TestClient, admin_token: str, store: Store, robots: RobotsApi
) -> None:
    robots.make("billing", SHOW_TOKEN, env={"GREETING": "hello", "API_TOKEN": "s3cret"})
    for env, names in (
        ({"API_TOKEN": MASK, "DB_PASSWORD": MASK}, ["DB_PASSWORD"]),  # a new name: nothing to keep
        ({"GREETING": MASK}, ["GREETING"]),  # shown in the clear: its mask was never shown
    ):
        refused = patch(client, admin_token, "billing", env=env, description="never saved")
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "masked_value" and error["details"] == {"field": "env", "keys": names}
        assert all(name in error["message"] for name in names)
    assert stored_env(store, "billing") == {"GREETING": "hello", "API_TOKEN": "s3cret"}
    assert client.get("/api/v1/robots/billing", headers=bearer(admin_token)).json()["description"] == ""

    # Copying a robot as GET shows it does not copy its secrets: the mask is refused there too.
    copied = {**client.get("/api/v1/robots/billing", headers=bearer(admin_token)).json(), "name": "billing-2"}
    copy = {key: copied[key] for key in ("name", "argv", "env")}
    refused = client.post("/api/v1/robots", headers=bearer(admin_token), json=copy)
    assert refused.status_code == 422 and refused.json()["error"]["details"]["keys"] == ["API_TOKEN"]
    assert client.get("/api/v1/robots/billing-2", headers=bearer(admin_token)).status_code == 404


def test_passwords_in_urls_and_common_secret_names_are_masked_too(
    client: TestClient, admin_token: str, store: Store, robots: RobotsApi
) -> None:
    env = {
        "DATABASE_URL": "postgresql://robot:urlpw-secret@db.example/erp",
        "MYSQL_PWD": "mysqlpw-secret",
        "SMTP_AUTH": "authsecret",
        "ORACLE_DSN": "dsn-secret",
        "XAUTHORITY": "/run/user/1000/xauth",  # a path a graphical robot needs, not a secret
        "HOMEPAGE": "https://example.com/a@b",
    }
    robots.make("urlenv", SHOW_TOKEN, env=env)
    shown = client.get("/api/v1/robots/urlenv", headers=bearer(admin_token)).json()["env"]
    assert shown == {
        **{name: MASK for name in ("DATABASE_URL", "MYSQL_PWD", "SMTP_AUTH", "ORACLE_DSN")},
        "XAUTHORITY": env["XAUTHORITY"],
        "HOMEPAGE": env["HOMEPAGE"],
    }
    assert "secret" not in str(shown)
    kept = patch(client, admin_token, "urlenv", env={**shown, "HOMEPAGE": "https://example.org"})
    assert kept.status_code == 200, kept.text
    assert stored_env(store, "urlenv") == {**env, "HOMEPAGE": "https://example.org"}
