"""What survives a `kill -9` of serve: a run that fails while no serve runs is alerted after the restart, once (a
second kill and restart raise and deliver nothing more); a delivery whose receiver failed is retried after the restart
from its stored next attempt; and one in flight when serve died is retried once its hold runs out."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.alerts.conftest import AlertsApi, SmtpSink, WebhookReceiver, robot_argv, serve_env
from tests.conftest import StartServe, wait_until

pytestmark = pytest.mark.slow
RESTART_SECONDS = 90  # a start of serve on a loaded machine (two cores, the suite in parallel)


def test_a_run_failed_while_serve_was_killed_is_alerted_once_after_restart(
    store_url: str, start_serve: StartServe, smtp_sink: SmtpSink, webhook_receiver: Callable[..., WebhookReceiver]
) -> None:
    receiver = webhook_receiver()
    serve = start_serve(env=serve_env(store_url, smtp_sink.port), wait="/readyz", timeout=RESTART_SECONDS)
    api = AlertsApi(serve.api())
    api.email_channel("ops-mail", "ops@example.test")
    api.webhook_channel("ops-hook", receiver.url)
    api.rule("failed", "run_failed", "ops-mail", "ops-hook")
    api.robot("nightly", robot_argv(sleep=2, code=4))
    run = api.start("nightly")
    api.wait_run(run["id"], "running")
    serve.kill()
    time.sleep(3)  # the robot fails with nobody watching

    serve.start(wait="/readyz", timeout=RESTART_SECONDS)
    api = AlertsApi(serve.api())
    assert api.wait_run(run["id"], "failed")["exit_code"] == 4
    (alert,) = api.wait_alerts(1)
    assert alert["facts"]["run"] == run["id"]
    smtp_sink.wait(1)
    receiver.wait(1)
    api.wait_delivered(alert["id"])

    serve.kill()
    serve.start(wait="/readyz", timeout=RESTART_SECONDS)
    api = AlertsApi(serve.api())
    time.sleep(2)  # ten detection passes and more
    assert [a["id"] for a in api.alerts()] == [alert["id"]] and api.alerts()[0]["count"] == 1
    assert len(smtp_sink.received) == 1 and len(receiver.received) == 1


def test_a_delivery_whose_receiver_failed_is_retried_after_the_restart(
    store_url: str, start_serve: StartServe, smtp_sink: SmtpSink, webhook_receiver: Callable[..., WebhookReceiver]
) -> None:
    receiver = webhook_receiver(failures=1)
    env = {**serve_env(store_url, smtp_sink.port), "ROBOFLEET_ALERTING__RETRY_BACKOFF_SECONDS": "3"}
    serve = start_serve(env=env, wait="/readyz", timeout=RESTART_SECONDS)
    api = AlertsApi(serve.api())
    api.webhook_channel("ops-hook", receiver.url)
    api.rule("failed", "run_failed", "ops-hook")
    api.robot("crasher", robot_argv(code=1))
    api.wait_run(api.start("crasher")["id"], "failed")
    (alert,) = api.wait_alerts(1)
    wait_until(lambda: api.get(f"/api/v1/alerts/{alert['id']}")["attempts"], 15, message="the first attempt logged")
    serve.kill()  # the next attempt is stored 3 s on

    serve.start(wait="/readyz", timeout=RESTART_SECONDS)
    api = AlertsApi(serve.api())
    first, second = receiver.wait(2, timeout=30)
    assert second.headers["X-Robofleet-Delivery"] == first.headers["X-Robofleet-Delivery"] and second.signed
    detail = api.wait_delivered(alert["id"])
    assert [(a["attempt"], a["outcome"]) for a in detail["attempts"]] == [(1, "error"), (2, "delivered")]


def test_a_delivery_in_flight_when_serve_dies_is_retried_after_the_restart(
    store_url: str, start_serve: StartServe, smtp_sink: SmtpSink, webhook_receiver: Callable[..., WebhookReceiver]
) -> None:
    receiver = webhook_receiver(hang_first=30)  # the first POST is never answered while serve lives
    serve = start_serve(env=serve_env(store_url, smtp_sink.port), wait="/readyz", timeout=RESTART_SECONDS)
    api = AlertsApi(serve.api())
    api.webhook_channel("ops-hook", receiver.url)
    api.rule("failed", "run_failed", "ops-hook")
    api.robot("crasher", robot_argv(code=1))
    api.wait_run(api.start("crasher")["id"], "failed")
    receiver.wait(1)
    serve.kill()  # mid-request: nothing of the attempt was recorded

    serve.start(wait="/readyz", timeout=RESTART_SECONDS)
    api = AlertsApi(serve.api())
    (alert,) = api.alerts()
    # Taken again once the attempt's hold ran out (the longest send timeout, SMTP's 10 s, and 10 s more).
    detail = api.wait_delivered(alert["id"], timeout=40)
    assert [(d["state"], d["attempts"]) for d in detail["deliveries"]] == [("delivered", 2)]
    assert [(a["attempt"], a["outcome"]) for a in detail["attempts"]] == [(2, "delivered")]
    assert len(receiver.received) == 2  # at least once: the receiver tells the repeat by X-Robofleet-Delivery
    assert receiver.received[0].headers["X-Robofleet-Delivery"] == receiver.received[1].headers["X-Robofleet-Delivery"]
