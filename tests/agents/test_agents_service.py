"""The agents service that the API and the panel share: permission, the agent's answer, and the audit record of
every administration of a machine, however it ends. Driven with the embedded local agent."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from robofleet.agents.hub import CommandFailed
from robofleet.agents.service import AgentsService
from robofleet.auth import audit
from robofleet.auth.principal import Principal, cli_principal
from robofleet.errors import Conflict, Forbidden
from robofleet.orchestrator import Orchestrator
from robofleet.settings.model import Settings
from robofleet.store import Store
from robofleet.web.app import create_app

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
NOBODY = Principal(username="nobody", user_id=None, grants=(), via="token")


@pytest.fixture
def files(tmp_path: Path) -> Path:
    root = tmp_path / "exchange"
    root.mkdir()
    return root


@pytest.fixture
def agents(settings: Settings, store: Store, files: Path) -> Iterator[AgentsService]:
    """The service of an orchestrator whose services run (its local agent connected), as the adapters get it."""
    configured = Settings(**{**settings.model_dump(), "agents": {"allowed_roots": [files]}})
    orchestrator = Orchestrator(settings=configured, store=store, ready=True)
    with TestClient(create_app(orchestrator)):
        yield AgentsService.of(orchestrator)


def audited(store: Store, action: str) -> list[dict[str, Any]]:
    with store.transaction() as db:
        return [
            {"actor": row.actor, "outcome": row.outcome, "target": row.target, "details": row.details}
            for row in db.scalars(audit.query(action=action))
        ]


def test_a_file_goes_up_and_down_audited_with_its_checksum(agents: AgentsService, store: Store, files: Path) -> None:
    content = b"x" * 3_000_000  # several chunks
    digest = hashlib.sha256(content).hexdigest()
    target = str(files / "big.bin")
    agents.max_file_bytes = 10_000_000
    stored = asyncio.run(agents.put_file(cli_principal(), "local", target, content))
    assert stored["sha256"] == digest and Path(target).read_bytes() == content
    got = asyncio.run(agents.get_file(cli_principal(), "local", target))
    assert got.content == content and got.sha256 == digest
    [put] = audited(store, "agent.file_put")
    assert put["outcome"] == "ok" and put["details"] == {"path": target, "size": len(content), "sha256": digest}
    [get] = audited(store, "agent.file_get")
    assert get["outcome"] == "ok" and get["details"] == {"path": target, "size": len(content)}


def test_administration_that_fails_or_is_refused_is_audited(agents: AgentsService, store: Store) -> None:
    with pytest.raises(CommandFailed):
        asyncio.run(agents.get_file(cli_principal(), "local", "/etc/hostname"))
    with pytest.raises(Conflict):
        asyncio.run(agents.shell(cli_principal(), "pc-42", "id"))
    with pytest.raises(Forbidden):
        asyncio.run(agents.shell(NOBODY, "local", "id"))
    [refused_file] = audited(store, "agent.file_get")
    assert refused_file["outcome"] == "failed" and "allowed roots" in refused_file["details"]["error"]
    outcomes = {(record["actor"], record["target"], record["outcome"]) for record in audited(store, "agent.shell")}
    assert outcomes == {(cli_principal().actor, "pc-42", "failed"), ("nobody", "local", "denied")}


def test_seeing_agents_needs_agents_read(agents: AgentsService) -> None:
    assert [agent["name"] for agent in asyncio.run(agents.list_agents(cli_principal()))] == ["local"]
    with pytest.raises(Forbidden):
        asyncio.run(agents.list_agents(NOBODY))
    with pytest.raises(Forbidden):
        asyncio.run(agents.system_info(NOBODY, "local"))
