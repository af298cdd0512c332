"""`robofleet serve`: the orchestrator (store prepared, services started) behind uvicorn."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import FrameType

import uvicorn

from robofleet.events import EventHub
from robofleet.orchestrator import Orchestrator
from robofleet.settings.model import Settings
from robofleet.store.files import private_dir
from robofleet.web.app import create_app

# How long a stop (SIGTERM, Ctrl-C) waits for open requests before cutting them: live streams (SSE) never end by
# themselves, and a browser left on the panel must not keep the orchestrator from stopping.
GRACEFUL_STOP_SECONDS = 5
# The largest websocket message taken from an agent: above the agent's largest command result (24 MiB, a screenshot
# or evidence bundle in base64), which uvicorn's default of 16 MiB would refuse by dropping the connection, and the
# agent would send it again at every reconnection.
WS_MAX_BYTES = 64 * 2**20


def run(settings: Settings, config_path: Path | None) -> None:
    # Store threads release the GIL for every row they write; with the default 5 ms switch interval a busy
    # request thread makes each of them wait that long to get it back. 0.5 ms keeps writers flowing.
    sys.setswitchinterval(0.0005)
    logging.basicConfig(
        level=settings.logs.level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Alembic narrates every migration context at INFO, and /readyz opens one per probe.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    server = settings.server
    if bool(server.tls_cert) != bool(server.tls_key):
        raise SystemExit("server.tls_cert and server.tls_key must be given together")
    # Whatever the store, serve keeps files there (the initial admin's password, the local agent's runs): 0700.
    private_dir(settings.store.data_dir)
    orchestrator = Orchestrator(settings)  # first: a bad activities module stops the start here
    app = create_app(orchestrator, config_path=config_path)
    orchestrator.prepare()
    scheme = "https" if server.tls_cert else "http"
    print(
        f"robofleet serving {scheme}://{server.host}:{server.port}/panel  (store: {orchestrator.store.dialect})",
        flush=True,
    )
    config = uvicorn.Config(
        app,
        host=server.host,
        port=server.port,
        log_level="warning",
        ssl_certfile=str(server.tls_cert) if server.tls_cert else None,
        ssl_keyfile=str(server.tls_key) if server.tls_key else None,
        proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_STOP_SECONDS,
        ws_max_size=WS_MAX_BYTES,
    )
    _Uvicorn(config, orchestrator.events).run()


class _Uvicorn(uvicorn.Server):
    """Ends the live streams (SSE) when asked to stop: uvicorn waits for open responses, and a stream never ends
    by itself, so every open panel made a stop wait the whole grace period."""

    def __init__(self, config: uvicorn.Config, hub: EventHub) -> None:
        super().__init__(config)
        self.hub = hub

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.hub.close_soon()
        super().handle_exit(sig, frame)
