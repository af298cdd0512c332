"""What survives a `kill -9` of serve: a run that fails while no serve runs is alerted after the restart, once (a
second kill and restart raise and deliver nothing more); and a delivery whose receiver was down when serve died is
retried after the restart from its stored next attempt."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.alerts.conftest import AlertsApi, SmtpSink, WebhookReceiver, robot_argv, serve_env
from tests.conftest import StartServe

pytestmark = pytest.mark.slow


def test_a_run_failed_while_serve_was_killed_is_alerted_once_after_restart(
    store_url: str, start_serve: StartServe, smtp_sink: SmtpSink, webhook_receiver: Callable[..., WebhookReceiver]
) -> None:
    receiver = webhook_receiver()
    serve = start_serve(env=serve_env(store_url, smtp_sink.port), wait="/readyz")
    api = AlertsApi(serve.api())
    api.email_channel("ops-mail", "ops@example.test")
    api.webhook_channel("ops-hook", receiver.url)
    api.rule("failed", "run_failed", "ops-mail", "ops-hook")
    api.robot("nightly", robot_argv(sleep=2, code=4))
    run = api.start("nightly")
    api.wait_run(run["id"], "running")
    serve.kill()
    time.sleep(3)  # the robot fails with nobody watching

    serve.start(wait="/readyz")
    api = AlertsApi(serve.api())
    assert api.wait_run(run["id"], "failed")["exit_code"] == 4
    (alert,) = api.wait_alerts(1)
    assert alert["facts"]["run"] == run["id"]
    smtp_sink.wait(1)
    receiver.wait(1)
    api.wait_delivered(alert["id"])

    serve.kill()
    serve.start(wait="/readyz")
    api = AlertsApi(serve.api())
    time.sleep(2)  # ten detection passes and more
    assert [a["id"] for a in api.alerts()] == [alert["id"]] and api.alerts()[0]["count"] == 1
    assert len(smtp_sink.received) == 1 and len(receiver.received) == 1


def test_a_delivery_cut_short_by_a_kill_is_retried_after_the_restart(
    store_url: str, start_serve: StartServe, smtp_sink: SmtpSink, webhook_receiver: Callable[..., WebhookReceiver]
) -> None:
    receiver = webhook_receiver(failures=1)
    env = {**serve_env(store_url, smtp_sink.port), "ROBOFLEET_ALERTING__RETRY_BACKOFF_SECONDS": "3"}
    serve = start_serve(env=env, wait="/readyz")
    api = AlertsApi(serve.api())
    api.webhook_channel("ops-hook", receiver.url)
    api.rule("failed", "run_failed", "ops-hook")
    api.robot("crasher", robot_argv(code=1))
    api.wait_run(api.start("crasher")["id"], "failed")
    receiver.wait(1)  # the first attempt failed: the next one is stored 3 s on
    serve.kill()

    serve.start(wait="/readyz")
    api = AlertsApi(serve.api())
    first, second = receiver.wait(2, timeout=20)
    assert second.headers["X-Robofleet-Delivery"] == first.headers["X-Robofleet-Delivery"] and second.signed
    (alert,) = api.alerts()
    detail = api.wait_delivered(alert["id"])
    assert [(a["attempt"], a["outcome"]) for a in detail["attempts"]] == [(1, "error"), (2, "delivered")]
