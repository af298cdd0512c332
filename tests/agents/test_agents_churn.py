"""The agents list and the Fleet page while hundreds of agents connect and leave at once: every answer whole.

Both read the hub's agents from a worker thread or the loop while the loop adds and removes them; iterating a
dictionary that changes under a thread fails, which once answered 500 to the first listing during a fleet start.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from tests.conftest import ServeProcess, StartServe

pytestmark = pytest.mark.slow
AGENTS = 300
WAVES = 7


async def one_agent(url: str, token: str, name: str, leave: asyncio.Event) -> None:
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=60) as ws:
        hello = {"type": "hello", "name": name, "host": "churn", "os_user": "t", "os": "Linux", "python": "3"}
        await ws.send(json.dumps({**hello, "capabilities": ["system"], "runs": []}))
        await leave.wait()


async def churn_while_listing(serve: ServeProcess, tokens: list[str], admin: str) -> list[int]:
    """Agents connect at once and leave in waves, each wave after another round of listings: however slow the
    machine, the listings overlap both the connecting and the leaving."""
    url = serve.url.replace("http", "ws") + "/api/v1/agents/connect"
    waves = [asyncio.Event() for _ in range(WAVES)]
    agents = [
        asyncio.create_task(one_agent(url, token, f"churn-{n}", waves[n % WAVES])) for n, token in enumerate(tokens)
    ]
    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=serve.url, headers={"Authorization": f"Bearer {admin}"}) as http:
        rounds = 0
        while not all(agent.done() for agent in agents):
            for path in ("/api/v1/agents", "/panel/fleet"):
                statuses.append((await http.get(path, timeout=30)).status_code)
            if rounds < WAVES:
                waves[rounds].set()
            rounds += 1
    await asyncio.gather(*agents)
    return statuses


def test_listing_agents_while_hundreds_connect_and_leave(start_serve: StartServe) -> None:
    serve = start_serve()
    admin = serve.token()
    user = serve.agent_user("churner")
    with serve.api(admin) as api:  # a token per agent name, each bound to its name
        tokens = [
            api.post("/api/v1/tokens", json={"user": user, "agent": f"churn-{n}"}).json()["token"]
            for n in range(AGENTS)
        ]
    statuses = asyncio.run(churn_while_listing(serve, tokens, admin))
    assert len(statuses) >= 2 * WAVES and set(statuses) == {200}, statuses
    assert "unexpected error" not in serve.output()
