"""Agents over the API with the embedded local agent: listing, machine info, remote shell and files."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from robofleet.orchestrator import Orchestrator
from robofleet.settings.model import Settings
from robofleet.store import Store
from robofleet.web.app import create_app
from tests.conftest import MakeUser, bearer

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    root = tmp_path / "exchange"
    root.mkdir()
    return root


@pytest.fixture
def client(settings: Settings, store: Store, files: Path) -> Iterator[TestClient]:
    configured = Settings(**{**settings.model_dump(), "agents": {"allowed_roots": [files]}})
    with TestClient(create_app(Orchestrator(settings=configured, store=store, ready=True))) as test_client:
        yield test_client


def test_the_local_agent_is_listed_with_its_machine(client: TestClient, admin_token: str) -> None:
    agents = client.get("/api/v1/agents", headers=bearer(admin_token)).json()["items"]
    assert [agent["name"] for agent in agents] == ["local"] and agents[0]["host"]
    system = client.get("/api/v1/agents/local/system", headers=bearer(admin_token)).json()
    assert system["memory"]["total"] > 0 and system["cpu_count"] >= 1
    listing = client.get("/api/v1/agents/local/processes", headers=bearer(admin_token)).json()
    assert any(process["pid"] == 1 for process in listing["processes"])
    offline = client.get("/api/v1/agents/pc-42/system", headers=bearer(admin_token))
    assert offline.status_code == 409 and offline.json()["error"]["code"] == "agent_offline"


def test_viewers_see_processes_without_their_command_lines(
    client: TestClient, admin_token: str, make_user: MakeUser
) -> None:
    secret = "--password=cmdline-secret-42"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", secret])
    try:
        viewer = client.get("/api/v1/agents/local/processes", headers=bearer(make_user("v", ["viewer"])))
        admin = client.get("/api/v1/agents/local/processes", headers=bearer(admin_token))
    finally:
        holder.kill()
        holder.wait()
    assert viewer.status_code == 200 and "cmdline-secret-42" not in viewer.text
    seen = next(process for process in viewer.json()["processes"] if process["pid"] == holder.pid)
    assert set(seen) == {"pid", "ppid", "name", "user", "status", "cpu_percent", "rss", "started"}
    listed = next(process for process in admin.json()["processes"] if process["pid"] == holder.pid)
    assert secret in listed["cmdline"]


def test_shell_needs_agents_admin_and_is_audited(client: TestClient, admin_token: str, make_user: MakeUser) -> None:
    ran = client.post(
        "/api/v1/agents/local/shell",
        headers=bearer(admin_token),
        json={"command": "echo from-the-shell", "timeout": 10},
    )
    assert ran.status_code == 200 and ran.json()["stdout"] == "from-the-shell\n"
    operator = make_user("op", ["operator"])
    refused = client.post("/api/v1/agents/local/shell", headers=bearer(operator), json={"command": "id"})
    assert refused.status_code == 403
    assert (
        client.post(
            "/api/v1/agents/local/shell", headers=bearer(admin_token), json={"command": "x", "timeout": 0}
        ).status_code
        == 422
    )
    audit = client.get("/api/v1/audit", params={"action": "agent.shell"}, headers=bearer(admin_token)).json()
    assert audit["items"][0]["details"]["command"] == "echo from-the-shell"


def test_files_go_up_and_down_inside_the_allowed_roots(client: TestClient, admin_token: str, files: Path) -> None:
    content = b"invoice;amount\n42;17.50\n" * 1000
    target = str(files / "in" / "invoices.csv")
    uploaded = client.put(
        "/api/v1/agents/local/files", params={"path": target}, content=content, headers=bearer(admin_token)
    )
    assert uploaded.status_code == 201 and uploaded.json()["sha256"] == hashlib.sha256(content).hexdigest()
    assert Path(target).read_bytes() == content
    downloaded = client.get("/api/v1/agents/local/files", params={"path": target}, headers=bearer(admin_token))
    assert downloaded.content == content and downloaded.headers["x-content-sha256"] == uploaded.json()["sha256"]
    outside = client.get("/api/v1/agents/local/files", params={"path": "/etc/hostname"}, headers=bearer(admin_token))
    assert outside.status_code == 422 and outside.json()["error"]["details"]["code"] == "forbidden_path"
    too_big = client.put(
        "/api/v1/agents/local/files", params={"path": target}, content=b"x" * 2_000_000, headers=bearer(admin_token)
    )
    assert too_big.status_code == 413
