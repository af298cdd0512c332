"""Alerts delivered on both stores, by the app in-process with its local agent: a failed run reaches a real SMTP
server as an e-mail and a real HTTP receiver as a webhook whose HMAC it verifies; the same rule and robot within
the cool-down raise one alert, counted; a receiver that fails twice gets the delivery at the third attempt, after
waits that double, each attempt in the delivery log and in /metrics."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.alerts.conftest import BACKOFF_SECONDS, AlertsApi, SmtpSink, WebhookReceiver, robot_argv
from tests.conftest import bearer, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def api(client: TestClient, admin_token: str) -> AlertsApi:
    return AlertsApi(client, bearer(admin_token))


def test_a_failed_run_is_mailed_and_posted_signed(
    api: AlertsApi, smtp_sink: SmtpSink, webhook_receiver: Callable[..., WebhookReceiver]
) -> None:
    receiver = webhook_receiver()
    api.email_channel("ops-mail", "ops@example.test")
    api.webhook_channel("ops-hook", receiver.url)
    api.rule("billing-failed", "run_failed", "ops-mail", "ops-hook", match="billing-*")
    api.robot("billing-eu", robot_argv(code=3))
    api.robot("hr-payroll", robot_argv(code=3))
    run = api.start("billing-eu")
    other = api.start("hr-payroll")
    api.wait_run(run["id"], "failed")
    api.wait_run(other["id"], "failed")

    (alert,) = api.wait_alerts(1)
    assert alert["rule"] == "billing-failed" and alert["subject"] == "billing-eu" and alert["count"] == 1
    assert alert["facts"]["run"] == run["id"] and alert["facts"]["exit_code"] == 3

    ((recipients, mail),) = smtp_sink.wait(1)
    assert recipients == ["ops@example.test"]
    assert mail["From"] == "robofleet@example.test" and "billing-eu" in mail["Subject"]
    assert f"Run {run['id']} of robot billing-eu" in mail.get_payload()

    (request,) = receiver.wait(1)
    assert request.signed, request.headers
    assert request.json()["alert"]["id"] == alert["id"] and request.json()["alert"]["facts"]["robot"] == "billing-eu"
    detail = api.wait_delivered(alert["id"])
    assert {(d["channel"], d["state"], d["attempts"]) for d in detail["deliveries"]} == {
        ("ops-mail", "delivered", 1),
        ("ops-hook", "delivered", 1),
    }
    assert request.headers["X-Robofleet-Delivery"] in {str(d["id"]) for d in detail["deliveries"]}
    assert api.alerts(subject="hr-payroll") == []  # no rule matches it


def test_the_same_rule_and_robot_within_the_cooldown_raise_one_alert_counted(
    api: AlertsApi, smtp_sink: SmtpSink
) -> None:
    api.email_channel("ops-mail", "ops@example.test")
    api.rule("any-failed", "run_failed", "ops-mail", cooldown_seconds=600)
    api.robot("flaky", robot_argv(code=1), max_concurrent=3)
    for _ in range(3):
        api.wait_run(api.start("flaky")["id"], "failed")

    wait_until(lambda: [a["count"] for a in api.alerts()] == [3], 10, message=api.alerts)
    smtp_sink.wait(1)
    time.sleep(1)  # a second e-mail would have come by now
    assert len(smtp_sink.received) == 1 and len(api.alerts()) == 1


def test_a_receiver_that_fails_twice_gets_it_at_the_third_attempt_after_doubling_waits(
    api: AlertsApi, client: TestClient, admin_token: str, webhook_receiver: Callable[..., WebhookReceiver]
) -> None:
    receiver = webhook_receiver(failures=2)
    api.webhook_channel("flaky-hook", receiver.url)
    api.rule("failed", "run_failed", "flaky-hook")
    api.robot("crasher", robot_argv(code=2))
    api.wait_run(api.start("crasher")["id"], "failed")

    first, second, third = receiver.wait(3)
    assert all(request.signed for request in (first, second, third))
    assert second.at - first.at >= BACKOFF_SECONDS * 0.9
    assert third.at - second.at >= 2 * BACKOFF_SECONDS * 0.9
    assert len({request.headers["X-Robofleet-Delivery"] for request in (first, second, third)}) == 1
    (alert,) = api.alerts()
    detail = api.wait_delivered(alert["id"])
    assert [(d["state"], d["attempts"]) for d in detail["deliveries"]] == [("delivered", 3)]
    log = [(a["attempt"], a["outcome"], a["status"]) for a in detail["attempts"]]
    assert log == [(1, "error", "HTTP 500"), (2, "error", "HTTP 500"), (3, "delivered", "HTTP 204")]
    assert "receiver down for a moment" in detail["attempts"][0]["error"]

    page = api.get("/api/v1/alerts/deliveries", channel="flaky-hook")["items"]
    assert [a["attempt"] for a in page] == [3, 2, 1]  # newest first
    metrics = client.get("/metrics", headers=bearer(admin_token)).text
    assert 'robofleet_alert_deliveries_total{channel="flaky-hook",kind="webhook",outcome="error"} 2.0' in metrics
    assert 'robofleet_alert_deliveries_total{channel="flaky-hook",kind="webhook",outcome="delivered"} 1.0' in metrics


def test_acknowledging_an_alert_is_audited_and_filters_the_inbox(api: AlertsApi) -> None:
    api.rule("failed", "run_failed")
    api.robot("crasher", robot_argv(code=2))
    api.wait_run(api.start("crasher")["id"], "failed")
    (alert,) = api.wait_alerts(1)
    assert alert["acknowledged_at"] is None and api.alerts(acknowledged="false") != []
    done = api.post(f"/api/v1/alerts/{alert['id']}/acknowledge", {}, status=200)
    assert done["acknowledged_by"] and done["acknowledged_at"]
    assert api.alerts(acknowledged="false") == [] and len(api.alerts(acknowledged="true")) == 1
    audit = api.get("/api/v1/audit", action="alert.acknowledge")["items"]
    assert [record["target"] for record in audit] == [str(alert["id"])]
