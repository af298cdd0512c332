"""A robot run's own token sends logs as that robot and that run only: a robot cannot pass its lines off as
another robot's, another run's or the orchestrator's. Through a real `robofleet serve` and a real robot. An
agent's token sends as that agent only, and other users of logs:write as no agent and for no run of robofleet's."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

from robofleet.auth.principal import cli_principal
from robofleet.auth.schemas import TokenCreate
from robofleet.auth.tokens import create_token
from robofleet.store import Store
from tests.conftest import MakeUser, StartServe, bearer, wait_until

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


SPOOFS = [
    {"source": "agent:local", "level": "CRITICAL", "message": "spoofed"},
    {"source": "robot:hr-payroll", "run_id": "9", "message": "spoofed"},
]


def test_agent_and_robot_users_send_as_themselves_only(
    client: TestClient, store: Store, make_user: MakeUser, admin_token: str
) -> None:
    unbound_agent, robot = make_user("u_agent", ["agent"]), make_user("u_robot", ["robot"])
    bound = create_token(store, cli_principal(), TokenCreate(user="u_agent", agent="pc-01")).token

    def post(token: str, records: list[dict[str, Any]]) -> Response:
        return client.post("/api/v1/logs", headers=bearer(token), json={"records": records})

    def reasons(answer: Response) -> list[str]:
        """Why each refused record was refused: in the 207's body, or in the details of a 422 (all refused)."""
        body = answer.json()
        rejected = body["error"]["details"]["rejected"] if "error" in body else body["rejected"]
        return [item["error"] for item in rejected]

    # The findings' repro: refused record by record, and so the batch (422: every record refused).
    answer = post(bound, SPOOFS)
    assert answer.status_code == 422 and reasons(answer) == ["this token sends as agent:pc-01 only"] * 2
    for token in (unbound_agent, robot):
        answer = post(token, SPOOFS)
        assert answer.status_code == 422, answer.text
        assert "agent's own token" in reasons(answer)[0] and "run 9 is robofleet's" in reasons(answer)[1]

    # What each may send: an agent as itself, for no run; a robot user as robot:<name>, with run ids of its own.
    mine = post(bound, [{"message": "agent line"}, {"message": "of a run", "run_id": "ext-1"}])
    assert mine.status_code == 207 and reasons(mine) == ["this token sends records of no run"]
    assert post(robot, [{"source": "robot:outside", "run_id": "ext-1", "message": "sdk line"}]).status_code == 201
    assert post(admin_token, SPOOFS).status_code == 201  # logs:admin sends as anyone
    stored = client.get("/api/v1/logs", headers=bearer(admin_token), params={"order": "asc"}).json()["items"]
    assert [(r["source"], r["run_id"], r["message"]) for r in stored] == [
        ("agent:pc-01", None, "agent line"),
        ("robot:outside", "ext-1", "sdk line"),
        ("agent:local", None, "spoofed"),
        ("robot:hr-payroll", "9", "spoofed"),
    ]
