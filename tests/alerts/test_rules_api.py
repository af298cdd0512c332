"""Rules and channels through the API on both stores: made, listed a page at a time, changed and deleted, each
change audited; bad input refused with 422 and a message naming the field; a webhook's secret and the SMTP
password never shown; a viewer reads and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from robofleet.settings.model import Settings
from robofleet.settings.render import as_toml, masked_tree
from tests.alerts.conftest import SECRET, AlertsApi
from tests.conftest import MakeUser, bearer


@pytest.fixture
def api(client: TestClient, admin_token: str) -> AlertsApi:
    return AlertsApi(client, bearer(admin_token))  # type: ignore[arg-type]


def test_rules_and_channels_are_made_listed_changed_and_deleted(client: TestClient, api: AlertsApi) -> None:
    api.email_channel("ops-mail", "ops@example.test", "oncall@example.test")
    api.webhook_channel("ops-hook", "https://hooks.example.test/robofleet")
    for index in range(3):
        api.rule(f"failed-{index}", "run_failed", "ops-mail", match=f"billing-{index}*")
    made = api.rule("slow", "run_too_long", "ops-hook", threshold=3)
    assert made["threshold"] == 3 and made["match"] == "*" and made["cooldown_seconds"] == 300
    assert api.rule("away", "agent_offline")["threshold"] == 60  # the kind's default

    first = api.get("/api/v1/alerts/rules", limit=2)
    assert [rule["name"] for rule in first["items"]] == ["failed-0", "failed-1"] and first["next_cursor"]
    rest = api.get("/api/v1/alerts/rules", limit=10, cursor=first["next_cursor"])
    assert [rule["name"] for rule in rest["items"]] == ["failed-2", "slow", "away"] and rest["next_cursor"] is None

    changed = client.patch(
        "/api/v1/alerts/rules/slow", json={"threshold": 1.5, "enabled": False}, headers=api.headers
    ).json()
    assert changed["threshold"] == 1.5 and changed["enabled"] is False
    assert client.delete("/api/v1/alerts/rules/away", headers=api.headers).status_code == 204
    assert client.get("/api/v1/alerts/rules/away", headers=api.headers).status_code == 404

    in_use = client.delete("/api/v1/alerts/channels/ops-hook", headers=api.headers)
    assert in_use.status_code == 409 and "slow" in in_use.json()["error"]["message"]
    assert client.delete("/api/v1/alerts/rules/slow", headers=api.headers).status_code == 204
    assert client.delete("/api/v1/alerts/channels/ops-hook", headers=api.headers).status_code == 204

    audit = api.get("/api/v1/audit", limit=100)["items"]
    actions = {(record["action"], record["target"]) for record in audit}
    assert {
        ("alert_channel.create", "ops-hook"),
        ("alert_rule.create", "slow"),
        ("alert_rule.update", "slow"),
        ("alert_rule.delete", "slow"),
        ("alert_channel.delete", "ops-hook"),
    } <= actions


RULES, CHANNELS = "/api/v1/alerts/rules", "/api/v1/alerts/channels"
BAD_INPUT: list[tuple[str, dict[str, Any], str]] = [
    (RULES, {"name": "r", "kind": "run_exploded"}, "kind"),
    (RULES, {"name": "r", "kind": "run_failed", "match": "billing-[a"}, "match"),
    (RULES, {"name": "r", "kind": "run_failed", "match": ""}, "match"),
    (RULES, {"name": "r", "kind": "run_too_long", "threshold": -2}, "threshold"),
    (RULES, {"name": "r", "kind": "run_too_long", "threshold": 1}, "threshold"),
    (RULES, {"name": "r", "kind": "agent_offline", "threshold": -5}, "threshold"),
    (RULES, {"name": "r", "kind": "run_failed", "threshold": 3}, "takes no threshold"),
    (RULES, {"name": "r", "kind": "run_failed", "cooldown_seconds": -1}, "cooldown_seconds"),
    (RULES, {"name": "r", "kind": "run_failed", "channels": ["nowhere"]}, "nowhere"),
    (RULES, {"name": "bad name!", "kind": "run_failed"}, "name"),
    (CHANNELS, {"name": "c", "kind": "webhook", "url": "ftp://example.test/x", "secret": SECRET}, "url"),
    (CHANNELS, {"name": "c", "kind": "webhook", "url": "not a url", "secret": SECRET}, "url"),
    (CHANNELS, {"name": "c", "kind": "webhook", "url": "https://example.test/x"}, "secret"),
    (CHANNELS, {"name": "c", "kind": "webhook", "url": "https://example.test/x", "secret": "short"}, "secret"),
    (CHANNELS, {"name": "c", "kind": "email", "recipients": ["not-an-address"]}, "not-an-address"),
    (CHANNELS, {"name": "c", "kind": "email", "recipients": []}, "recipients"),
    (CHANNELS, {"name": "c", "kind": "pager"}, "kind"),
]


def test_bad_input_is_a_422_that_says_what_is_wrong(client: TestClient, api: AlertsApi) -> None:
    for path, body, said in BAD_INPUT:
        answer = client.post(path, json=body, headers=api.headers)
        assert answer.status_code == 422, (body, answer.text)
        error = answer.json()["error"]
        assert said in error["message"] + str(error.get("details")), (body, error)
    assert api.get(RULES)["items"] == [] and api.get(CHANNELS)["items"] == []


def test_a_bad_threshold_in_a_change_is_refused_and_nothing_changes(client: TestClient, api: AlertsApi) -> None:
    api.rule("slow", "run_too_long", threshold=3)
    refused = client.patch("/api/v1/alerts/rules/slow", json={"threshold": 0.5}, headers=api.headers)
    assert refused.status_code == 422 and "threshold" in refused.json()["error"]["message"]
    refused = client.patch("/api/v1/alerts/rules/slow", json={"match": "a b"}, headers=api.headers)
    assert refused.status_code == 422
    assert (
        api.get("/api/v1/alerts/rules/slow")["threshold"] == 3 and api.get("/api/v1/alerts/rules/slow")["match"] == "*"
    )


def test_a_webhook_secret_is_never_shown(client: TestClient, api: AlertsApi) -> None:
    made = api.webhook_channel("hook", "https://hooks.example.test/x")
    assert "secret" not in made and made["has_secret"] is True
    client.patch("/api/v1/alerts/channels/hook", json={"secret": "another-secret-of-length"}, headers=api.headers)
    for answer in (
        client.get("/api/v1/alerts/channels", headers=api.headers),
        client.get("/api/v1/alerts/channels/hook", headers=api.headers),
        client.get("/api/v1/audit", params={"limit": 100}, headers=api.headers),
    ):
        assert SECRET not in answer.text and "another-secret-of-length" not in answer.text


def test_the_smtp_password_and_webhook_secrets_of_the_settings_are_masked() -> None:
    settings = Settings(
        alerting={"smtp": {"host": "mail.example.test", "user": "robofleet", "password": "smtp-password-123"}},
        alert_channels=[{"name": "hook", "kind": "webhook", "url": "https://x.example.test/", "secret": SECRET}],
    )
    tree = masked_tree(settings)
    assert tree["alerting"]["smtp"]["password"] == "********" and tree["alert_channels"][0]["secret"] == "********"
    assert "smtp-password-123" not in as_toml(settings) and SECRET not in as_toml(settings)


def test_a_viewer_reads_alerts_but_changes_nothing(client: TestClient, api: AlertsApi, make_user: MakeUser) -> None:
    api.rule("failed", "run_failed")
    viewer = bearer(make_user("vera", ["viewer"]))
    assert client.get("/api/v1/alerts/rules", headers=viewer).status_code == 200
    assert client.get("/api/v1/alerts", headers=viewer).status_code == 200
    refused = client.post("/api/v1/alerts/rules", json={"name": "x", "kind": "run_failed"}, headers=viewer)
    assert refused.status_code == 403 and refused.json()["error"]["details"]["permission"] == "alerts:admin"
    assert client.delete("/api/v1/alerts/rules/failed", headers=viewer).status_code == 403
    operator = bearer(make_user("olga", ["operator"]))
    assert (
        client.post("/api/v1/alerts/rules", json={"name": "y", "kind": "run_failed"}, headers=operator).status_code
        == 201
    )
