"""`robofleet serve`: prepare the store (migrate, built-in roles, first admin, config), then serve HTTP."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from types import FrameType

import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from robofleet.activities.processor import Processor
from robofleet.activities.registry import Registry
from robofleet.agents.hub import AgentHub
from robofleet.agents.local import LocalAgent
from robofleet.auth.bootstrap import InitialAdmin, apply_config, ensure_builtin_roles, ensure_initial_admin
from robofleet.errors import ConfigError, StoreUnavailable
from robofleet.logs.service import LogService
from robofleet.robots.service import RobotsService
from robofleet.settings.model import Settings
from robofleet.store import Store
from robofleet.store.migrate import upgrade
from robofleet.web.app import create_app
from robofleet.web.context import AppContext
from robofleet.web.events import EventHub

log = logging.getLogger("robofleet.server")
RETRY_SECONDS = 2.0
# How long a stop (SIGTERM, Ctrl-C) waits for open requests before cutting them: live streams (SSE) never end by
# themselves, and a browser left on the panel must not keep the orchestrator from stopping.
GRACEFUL_STOP_SECONDS = 5


def prepare_store(store: Store, settings: Settings) -> InitialAdmin | None:
    """Migrate and seed; idempotent. Raises StoreUnavailable when the database cannot be reached."""
    try:
        upgrade(store.engine)
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot migrate the store: {str(getattr(exc, 'orig', exc)).strip()}") from exc
    ensure_builtin_roles(store)
    admin = ensure_initial_admin(store, settings)
    apply_config(store, settings)
    return admin


def announce(admin: InitialAdmin | None) -> None:
    if admin is None:
        return
    banner = "=" * 64
    print(
        f"\n{banner}\n  First start: created the user '{admin.username}'.\n"
        f"  Password (shown once): {admin.password}\n"
        f"  Also written to {admin.password_file} (mode 0600).\n{banner}\n",
        flush=True,
    )


def try_prepare(context: AppContext) -> bool:
    try:
        admin = prepare_store(context.store, context.settings)
    except StoreUnavailable as exc:
        context.ready, context.not_ready_reason = False, exc.message
        return False
    context.ready = True
    announce(admin)
    return True


async def keep_preparing(context: AppContext) -> None:
    """Retry preparation until the store answers, so `serve` can start before its database."""
    while not context.ready:
        log.warning("store not ready (%s); retrying in %.0f s", context.not_ready_reason, RETRY_SECONDS)
        await asyncio.sleep(RETRY_SECONDS)
        try:
            if await asyncio.to_thread(try_prepare, context):
                log.info("store ready")
        except ConfigError as exc:
            context.not_ready_reason = f"the settings do not fit the store: {exc}"
            log.error("%s", context.not_ready_reason)
            return


async def start_services(context: AppContext, registry: Registry, hub: EventHub) -> None:
    """Start what needs a ready store; raises StoreUnavailable when it went away meanwhile."""
    if context.logs is None:
        context.logs = LogService(context.store, context.settings.logs, hub)
        context.logs.start(asyncio.get_running_loop(), own_logs=context.settings.logs.store_own)
    if context.robots is None:
        server = context.settings.server
        url = server.public_url or f"{'https' if server.tls_cert else 'http'}://{server.host}:{server.port}"
        context.hub = AgentHub()
        robots = RobotsService(context.store, context.hub, hub, server_url=url)
        await asyncio.to_thread(robots.apply_config, context.settings.robots)
        context.robots = robots
    if context.settings.agents.local and context.local_agent is None and context.hub is not None:
        local = LocalAgent(context.settings, context.hub, context.logs, context.robots)
        await local.start()
        context.local_agent = local
    if context.processor is None:
        processor = Processor(context, registry, hub)
        try:
            await processor.start()
        except BaseException:
            await processor.stop()
            raise
        context.processor = processor


async def run_services(context: AppContext, registry: Registry, hub: EventHub) -> None:
    """The orchestrator's background services, started once the store is ready (retried until it is)."""
    await keep_preparing(context)
    while context.ready and context.processor is None:
        try:
            await start_services(context, registry, hub)
        except StoreUnavailable as exc:
            log.warning("background services wait for the store: %s", exc.message)
            await asyncio.sleep(RETRY_SECONDS)


async def stop_services(context: AppContext) -> None:
    if context.local_agent is not None:
        await context.local_agent.stop()
        context.local_agent = None
    if context.processor is not None:
        await context.processor.stop()
        context.processor = None
    if context.logs is not None:
        await asyncio.to_thread(context.logs.stop)
        context.logs = None


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
    context = AppContext(settings=settings, store=Store(settings.store))
    app = create_app(context, config_path=config_path)  # first: a bad activities module stops the start here
    try_prepare(context)
    scheme = "https" if server.tls_cert else "http"
    print(
        f"robofleet serving {scheme}://{server.host}:{server.port}/panel  (store: {context.store.dialect})", flush=True
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
    )
    _Uvicorn(config, app.state.events).run()


class _Uvicorn(uvicorn.Server):
    """Ends the live streams (SSE) when asked to stop: uvicorn waits for open responses, and a stream never ends
    by itself, so every open panel made a stop wait the whole grace period."""

    def __init__(self, config: uvicorn.Config, hub: EventHub) -> None:
        super().__init__(config)
        self.hub = hub

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.hub.close_soon()
        super().handle_exit(sig, frame)
