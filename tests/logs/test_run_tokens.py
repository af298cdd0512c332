"""A robot run's own token sends logs as that robot and that run only: a robot cannot pass its lines off as
another robot's, another run's or the orchestrator's. Through a real `robofleet serve` and a real robot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.conftest import StartServe, wait_until

# The robot posts a batch with its run's token and writes the answer where the test can read it.
ROBOT = """
import json, os, sys, httpx
records = [
    {"message": "mine, defaults filled in"},
    {"message": "mine, said outright", "source": "robot:" + os.environ["ROBOFLEET_ROBOT"],
     "run_id": os.environ["ROBOFLEET_RUN_ID"]},
    {"message": "as another robot", "source": "robot:payroll"},
    {"message": "as another run", "run_id": "999999"},
    {"message": "as the orchestrator", "source": "orchestrator", "level": "CRITICAL"},
]
answer = httpx.post(os.environ["ROBOFLEET_URL"] + "/api/v1/logs", json={"records": records},
                    headers={"Authorization": "Bearer " + os.environ["ROBOFLEET_TOKEN"]})
open(sys.argv[1], "w").write(json.dumps({"status": answer.status_code, "body": answer.json()}))
"""


def test_a_run_token_sends_as_its_robot_and_run_only(tmp_path: Path, store_url: str, start_serve: StartServe) -> None:
    env = {} if store_url.startswith("sqlite") else {"ROBOFLEET_STORE__URL": store_url}
    serve = start_serve(env=env)
    answer_file = tmp_path / "answer.json"
    api = serve.api()
    made = api.post(
        "/api/v1/robots", json={"name": "invoices", "argv": [sys.executable, "-c", ROBOT, str(answer_file)]}
    )
    assert made.status_code == 201, made.text
    run = api.post("/api/v1/robots/invoices/start").json()
    wait_until(lambda: answer_file.exists() and answer_file.read_text(), 30, 0.1, serve.output)
    answer = json.loads(answer_file.read_text())
    assert answer["status"] == 207, answer
    reasons = {item["index"]: item["error"] for item in answer["body"]["rejected"]}
    assert sorted(reasons) == [2, 3, 4], reasons
    assert "robot:invoices only" in reasons[2] and f"run {run['id']} only" in reasons[3]
    stored = api.get("/api/v1/logs", params={"q": "mine", "order": "asc"}).json()["items"]
    assert [(r["source"], r["run_id"]) for r in stored] == [("robot:invoices", str(run["id"]))] * 2
    assert api.get("/api/v1/logs", params={"source": "orchestrator", "q": "orchestrator"}).json()["items"] == []
