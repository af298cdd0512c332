"""A plain Python robot's output in the log store, on both stores, through real runs of the embedded agent: levels read
from its lines (stderr is not WARNING), a traceback as one ERROR record, lines in the order written, a robot's own
log_format, and the ingest counted for /metrics."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from robofleet.agents.hub import AgentHub
from robofleet.auth.principal import cli_principal
from robofleet.errors import ConfigError
from robofleet.events import EventHub
from robofleet.robots.service import RobotsService
from robofleet.settings.model import RobotConfig
from robofleet.store import Store
from tests.conftest import bearer, wait_until
from tests.robots.conftest import RobotsApi

LOGGING_ROBOT = """
import logging
logging.basicConfig(level=logging.INFO)  # INFO:name:message, on stderr
log = logging.getLogger("invoices")
for n in range(1, 31):
    log.info("step %d of 30", n)
log.warning("portal slow: retrying")
print("printed on stdout", flush=True)

def fetch():
    raise ConnectionError("portal down")

fetch()
"""


def records_of(client: TestClient, token: str, run: dict[str, Any], **params: str) -> list[dict[str, Any]]:
    query = {"run_id": str(run["id"]), "order": "asc", "limit": "500", **params}
    answer = client.get("/api/v1/logs", params=query, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]  # type: ignore[no-any-return]


def test_a_logging_robot_reads_right(client: TestClient, admin_token: str, robots: RobotsApi, tmp_path: Path) -> None:
    script = tmp_path / "invoices.py"
    script.write_text(LOGGING_ROBOT)
    robots.make("invoices", [sys.executable, str(script)])
    run = robots.wait_run(robots.start("invoices")["id"], "failed")

    def crash() -> list[dict[str, Any]] | None:
        found = records_of(client, admin_token, run)
        return found if any(r["message"].startswith("Traceback") for r in found) else None

    stored = wait_until(crash, 10, interval=0.1, message=lambda: records_of(client, admin_token, run))
    steps = [r for r in stored if "step" in r["message"]]
    assert [r["message"] for r in steps] == [f"INFO:invoices:step {n} of 30" for n in range(1, 31)]  # written order
    assert {r["level"] for r in steps} == {"INFO"} and {r["fields"]["stream"] for r in steps} == {"stderr"}
    newest_first = [r["message"] for r in records_of(client, admin_token, run, order="desc") if "step" in r["message"]]
    assert newest_first == [r["message"] for r in reversed(steps)]
    printed = [r for r in stored if r["message"] == "printed on stdout"]
    assert len(printed) == 1 and printed[0]["level"] == "INFO"

    tracebacks = [r for r in stored if "Traceback" in r["message"]]
    assert len(tracebacks) == 1, stored
    crash_record = tracebacks[0]
    assert crash_record["level"] == "ERROR" and crash_record["fields"]["lines"] >= 5
    assert crash_record["message"].startswith("Traceback (most recent call last):\n  File ")
    assert crash_record["message"].endswith("\nConnectionError: portal down")
    assert not any(r["message"].startswith("  File") for r in stored)  # no frame is a record of its own

    # The README's example: --level WARNING returns no INFO line.
    serious = records_of(client, admin_token, run, level="WARNING", source="robot:invoices")
    assert [(r["level"], r["message"].splitlines()[0]) for r in serious] == [
        ("WARNING", "WARNING:invoices:portal slow: retrying"),
        ("ERROR", "Traceback (most recent call last):"),
    ]

    def ingested() -> dict[tuple[str, str], float]:
        metrics = client.get("/metrics", headers=bearer(admin_token))
        assert metrics.status_code == 200
        return {
            (labels["source_kind"], labels["level"]): float(value)
            for text, value in re.findall(r"^robofleet_log_records_ingested_total\{(.*)\} (\S+)$", metrics.text, re.M)
            for labels in [dict(re.findall(r'(\w+)="(\w*)"', text))]
        }

    # The orchestrator's own records (the run's end) reach the store in its log writer's next batch.
    def with_orchestrator() -> dict[tuple[str, str], float] | None:
        found = ingested()
        return found if any(kind == "orchestrator" for kind, _ in found) else None

    counted = wait_until(
        with_orchestrator,
        15,
        interval=0.2,
        message=lambda: str(ingested()),
    )
    assert counted[("robot", "INFO")] >= 31 and counted[("robot", "WARNING")] >= 1, counted
    assert counted[("robot", "ERROR")] >= 1, counted


def test_a_robot_declares_its_log_format(client: TestClient, admin_token: str, robots: RobotsApi) -> None:
    shout = "import sys; print('ERROR|invoice 8 failed'); print('  total 120'); print('the portal said no');"
    shout += "print('WARN|slow'); print('nothing declared')"
    refused = client.post(
        "/api/v1/robots",
        json={"name": "formatted", "argv": [sys.executable, "-c", shout], "log_format": "(?P<level>[A-Z]+"},
        headers=bearer(admin_token),
    )
    assert refused.status_code == 422 and "log_format is not a valid regular expression" in refused.text
    no_group = {"name": "formatted", "argv": [sys.executable, "-c", shout], "log_format": r"^[A-Z]+\|"}
    refused = client.post("/api/v1/robots", json=no_group, headers=bearer(admin_token))
    assert refused.status_code == 422 and "(?P<level>" in refused.text
    made = robots.make("formatted", [sys.executable, "-c", shout], log_format=r"(?P<level>[A-Z]+)\|")
    assert made["log_format"] == r"(?P<level>[A-Z]+)\|"
    patched = client.patch("/api/v1/robots/formatted", json={"log_format": "(("}, headers=bearer(admin_token))
    assert patched.status_code == 422 and "log_format" in patched.text
    kept = client.get("/api/v1/robots/formatted", headers=bearer(admin_token)).json()
    assert kept["log_format"] == made["log_format"]

    run = robots.wait_run(robots.start("formatted")["id"], "succeeded")
    wanted = [
        ("ERROR", "ERROR|invoice 8 failed\n  total 120\nthe portal said no"),
        ("WARNING", "WARN|slow\nnothing declared"),
    ]
    wait_until(
        lambda: [(r["level"], r["message"]) for r in records_of(client, admin_token, run)] == wanted,
        10,
        interval=0.1,
        message=lambda: records_of(client, admin_token, run),
    )

    plain_format = {"log_format": "plain"}
    assert client.patch("/api/v1/robots/formatted", json=plain_format, headers=bearer(admin_token)).is_success
    plain = robots.wait_run(robots.start("formatted")["id"], "succeeded")
    wait_until(
        lambda: [r["level"] for r in records_of(client, admin_token, plain)] == ["INFO"] * 5,
        10,
        interval=0.1,
        message=lambda: records_of(client, admin_token, plain),
    )


def test_a_robot_of_the_settings_file_declares_its_log_format(store: Store) -> None:
    service = RobotsService(store, AgentHub(), EventHub(), server_url="http://127.0.0.1:8080")
    service.apply_config([RobotConfig(name="declared", argv=["x"], log_format=r"^(?P<level>\w+)\|")])
    assert service.get_robot(cli_principal(), "declared").log_format == r"^(?P<level>\w+)\|"
    service.apply_config([RobotConfig(name="declared", argv=["x"])])
    assert service.get_robot(cli_principal(), "declared").log_format == "auto"
    with pytest.raises(ConfigError, match=r"robots\.declared\.log_format: .*regular expression"):
        service.apply_config([RobotConfig(name="declared", argv=["x"], log_format="((")])
