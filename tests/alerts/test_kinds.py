"""Each kind of rule on both stores: a run far longer than its robot's median, a restart policy that gave up, an
agent offline longer than its threshold (a real `robofleet agent`), a schedule's fires skipped by its misfire
policy while serve was down, and a queue past its SLA (raised when it begins, again only after it ended)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from robofleet.alerts.detection import detect
from robofleet.alerts.schemas import AlertFilter, AlertOut, RuleCreate
from robofleet.alerts.service import AlertsService
from robofleet.alerts.store_ops import enabled_rules
from robofleet.auth.principal import system_principal
from robofleet.orchestrator import Orchestrator
from robofleet.queues.schemas import QueueStats
from tests.alerts.conftest import AlertsApi, SmtpSink, robot_argv, serve_env
from tests.conftest import StartAgent, StartServe, bearer

pytestmark = pytest.mark.slow
RESTART_SECONDS = 90  # a start of serve on a loaded machine (two cores, the suite in parallel)


@pytest.fixture
def api(client: TestClient, admin_token: str) -> AlertsApi:
    return AlertsApi(client, bearer(admin_token))


def test_a_run_longer_than_twice_its_median_is_alerted_while_it_runs(api: AlertsApi) -> None:
    api.rule("slow", "run_too_long", threshold=2, match="report*")
    api.robot("report", robot_argv(sleep=0.3))
    for _ in range(3):
        api.wait_run(api.start("report")["id"], "succeeded")
    assert api.alerts() == []
    patched = api.api.patch("/api/v1/robots/report", json={"argv": robot_argv(sleep=5)}, headers=api.headers)
    assert patched.status_code == 200, patched.text
    run = api.start("report")
    (alert,) = api.wait_alerts(1, timeout=10)
    assert api.get(f"/api/v1/runs/{run['id']}")["state"] == "running"  # raised before the run ended
    assert alert["subject"] == "report" and alert["facts"]["run"] == run["id"]
    assert 0.2 < alert["facts"]["median_seconds"] < 2
    api.wait_run(run["id"], "succeeded")
    time.sleep(1)
    assert len(api.alerts()) == 1  # its end does not raise it again


def test_a_restart_policy_that_gave_up_is_alerted(api: AlertsApi) -> None:
    api.rule("gave-up", "restart_gave_up")
    restart = {"policy": "on-failure", "backoff_seconds": 0, "give_up_after": 2, "window_seconds": 600}
    api.robot("crashy", robot_argv(code=1), restart=restart)
    first = api.start("crashy")
    api.wait_run(first["id"], "failed")
    (alert,) = api.wait_alerts(1, timeout=20)  # the restart failed too: the second failure gave up
    assert alert["subject"] == "crashy" and alert["facts"]["failures"] == 2
    assert alert["facts"]["run"] != first["id"]
    runs = api.get("/api/v1/runs", robot="crashy")["items"]
    assert len(runs) == 2 and {run["state"] for run in runs} == {"failed"}


def test_queue_past_sla_is_raised_when_it_begins_and_again_only_after_it_ended(context: Orchestrator) -> None:
    """The condition as the detection sees it, the queues' figures given; the marks and alerts stored. (The app is
    not started: no loop of its own runs meanwhile.)"""
    service = AlertsService(context)
    admin = system_principal("test")
    service.create_rule(
        admin, RuleCreate(name="late", kind="queue_past_sla", match="invoices", threshold=5, cooldown_seconds=0)
    )

    def stats(past: int) -> list[QueueStats]:
        now = datetime.now(UTC)
        return [
            QueueStats(
                queue=name,
                counts={},
                throughput_per_minute=[],
                average_handling_seconds=None,
                p95_handling_seconds=None,
                past_sla=past,
                past_deadline=0,
                oldest_waiting_seconds=None,
                at=now,
            )
            for name in ("invoices", "orders")
        ]

    def tick(past: int) -> list[AlertOut]:
        with context.store.transaction() as session:
            rules = enabled_rules(session)
        now = datetime.now(UTC)
        service._store_findings(detect(context.store, rules, {}, now, lambda: stats(past)), now)
        return service.list_alerts(admin, AlertFilter(), limit=100, cursor=None).items

    assert tick(4) == []  # under the threshold
    tick(7)
    (alert,) = tick(9)  # still past: the same spell
    assert alert.subject == "invoices" and alert.facts["past_sla"] == 7
    tick(0)  # over
    assert [a.facts["past_sla"] for a in tick(6)] == [6, 7]  # a new spell


def test_an_agent_offline_longer_than_its_threshold_is_alerted_once(
    store_url: str, start_serve: StartServe, start_agent: StartAgent, smtp_sink: SmtpSink
) -> None:
    serve = start_serve(env=serve_env(store_url, smtp_sink.port), wait="/readyz", timeout=RESTART_SECONDS)
    api = AlertsApi(serve.api())
    api.rule("away", "agent_offline", match="pc-*", threshold=1)
    agent = start_agent(serve, "pc-01", online=api.api)
    time.sleep(1.5)
    assert api.alerts() == []  # online all along
    agent.stop()
    (alert,) = api.wait_alerts(1, timeout=15)
    assert alert["subject"] == "pc-01" and alert["facts"]["seconds"] >= 1
    assert alert["facts"]["agent"] == "pc-01"
    time.sleep(1)
    assert len(api.alerts()) == 1


def test_fires_skipped_while_serve_was_down_are_alerted(
    store_url: str, start_serve: StartServe, smtp_sink: SmtpSink
) -> None:
    serve = start_serve(env=serve_env(store_url, smtp_sink.port), wait="/readyz", timeout=RESTART_SECONDS)
    api = AlertsApi(serve.api())
    api.rule("missed", "schedule_missed", match="each-*")
    echo = {"action": "system.echo", "args": {"message": "tick"}}
    api.post(
        "/api/v1/schedules",
        {
            "name": "each-second",
            "trigger": {"kind": "interval", "seconds": 1},
            "target": echo,
            "misfire": {"policy": "skip", "grace_seconds": 0.5},
        },
    )
    time.sleep(1.5)
    serve.stop()
    time.sleep(4)
    serve.start(wait="/readyz", timeout=RESTART_SECONDS)
    api = AlertsApi(serve.api())
    (alert,) = api.wait_alerts(1, timeout=15)
    assert alert["subject"] == "each-second" and alert["facts"]["missed"] >= 2
