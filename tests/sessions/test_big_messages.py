"""serve takes an agent's websocket messages up to 64 MiB: a command result above uvicorn's default 16 MiB (a large
screenshot or evidence bundle in base64) must not drop the agent's connection, to be sent again at every reconnection
for ever (review 16, finding 5)."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import StartServe

pytestmark = pytest.mark.slow


def test_serve_takes_a_20_mib_message_from_an_agent(start_serve: StartServe) -> None:
    serve = start_serve()
    token = serve.agent_token("big")
    url = serve.url.replace("http", "ws", 1) + "/api/v1/agents/connect"
    hello = {"type": "hello", "name": "big", "instance": "i-1", "runs": [], "padding": "x" * (20 * 2**20)}
    with connect(url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=None) as socket:
        socket.send(json.dumps(hello))
        try:
            answer = json.loads(socket.recv(timeout=30))
        except ConnectionClosed as closed:
            pytest.fail(f"serve dropped the connection: {closed}")
        assert answer["type"] == "welcome", answer
