"""The composition root: every service of one orchestrator built once, in one ordered function, started once the
store is ready and stopped in reverse order through one exit stack.

It sits between the domains and the adapters: it imports the domains' services, and the web app, the CLI and
`serve` reach those services through it (`web/deps.py`), never by building their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack

from sqlalchemy.exc import SQLAlchemyError

from robofleet.activities.processor import Processor
from robofleet.activities.registry import Registry, load_modules
from robofleet.agents.hub import AgentHub, HubListeners
from robofleet.agents.local import LocalAgent
from robofleet.auth.bootstrap import InitialAdmin, apply_config, ensure_builtin_roles, ensure_initial_admin
from robofleet.auth.principal import system_principal
from robofleet.domain import Domain, Service, load
from robofleet.domains import DOMAINS, action_registrars
from robofleet.errors import ConfigError, NotFound, StoreUnavailable
from robofleet.events import EventHub
from robofleet.logs.robot_output import RobotOutput
from robofleet.logs.service import LogService
from robofleet.robots.service import RobotsService
from robofleet.runtime.leader import Leader, leader_for
from robofleet.runtime.replicas import Presence, new_replica_id
from robofleet.settings.model import Settings
from robofleet.store import Store
from robofleet.store.migrate import upgrade

log = logging.getLogger("robofleet.server")
RETRY_SECONDS = 2.0


def build_registry(settings: Settings, domains: Sequence[Domain] = DOMAINS) -> Registry:
    """Every domain's operations, then the deployment's modules; ConfigError when one of those cannot be loaded."""
    registry = Registry()
    for registrar in action_registrars(domains):
        load(registrar)(registry)
    load_modules(registry, settings.activities.modules)
    return registry


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


class Orchestrator:
    """One orchestrator: its settings, store, event hub, action registry, replica id and leader from the start; its
    services once `start()` found the store ready (at once, or by retrying in the background until the database
    answers).

    `replica` names this process among the `serve` processes sharing the store (fresh at every start); its presence
    (a lock held while it lives: runtime/replicas.py) is taken before any service runs. `leader` is the one `Leader`
    of this process, shared by every leader duty (each adds its listener by `leader.start`) and stopped after them."""

    def __init__(
        self,
        settings: Settings,
        store: Store | None = None,
        *,
        ready: bool = False,
        registry: Registry | None = None,
        events: EventHub | None = None,
        domains: Sequence[Domain] = DOMAINS,
    ) -> None:
        self.settings = settings
        self.domains = tuple(domains)
        self.store = store or Store(settings.store)
        self.events = events or EventHub()
        self.registry = registry or build_registry(settings, self.domains)
        self.replica = new_replica_id()
        self.leader: Leader = leader_for(self.store)
        self.presence: Presence | None = None
        self.ready = ready
        self.not_ready_reason = "the store has not been prepared yet"
        self.logs: LogService | None = None
        self.hub: AgentHub | None = None
        self.robots: RobotsService | None = None
        self.local_agent: LocalAgent | None = None
        self.processor: Processor | None = None
        self.services: dict[str, Service] = {}  # by domain name: the services of domains that bring one
        self._stack = AsyncExitStack()
        self._stack.push_async_callback(self.leader.stop)  # the first pushed, so stopped after every duty
        self._starting: asyncio.Task[None] | None = None

    @property
    def server_url(self) -> str:
        server = self.settings.server
        return server.public_url or f"{'https' if server.tls_cert else 'http'}://{server.host}:{server.port}"

    # ---- preparing the store ------------------------------------------------------------------------------------

    def prepare(self) -> bool:
        """Migrate and seed the store; False (and the reason kept for /readyz) when it cannot be reached."""
        try:
            admin = prepare_store(self.store, self.settings)
        except StoreUnavailable as exc:
            self.ready, self.not_ready_reason = False, exc.message
            return False
        self.ready = True
        announce(admin)
        return True

    async def _keep_preparing(self) -> None:
        """Retry preparation until the store answers, so `serve` can start before its database."""
        while not self.ready:
            log.warning("store not ready (%s); retrying in %.0f s", self.not_ready_reason, RETRY_SECONDS)
            await asyncio.sleep(RETRY_SECONDS)
            try:
                if await asyncio.to_thread(self.prepare):
                    log.info("store ready")
            except ConfigError as exc:
                self.not_ready_reason = f"the settings do not fit the store: {exc}"
                log.error("%s", self.not_ready_reason)
                return

    # ---- services -----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the services now when the store is ready, else in the background as soon as it is."""
        if self.ready:
            # Started before the first request is served, so a ready orchestrator answers at once.
            with contextlib.suppress(StoreUnavailable):
                await self._start_services()
        if self.processor is None:
            self._starting = asyncio.get_running_loop().create_task(self._start_when_ready())

    async def stop(self) -> None:
        """Stop every service started, in reverse order; safe to call twice."""
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
            self._starting = None
        await self._stack.aclose()

    async def _start_when_ready(self) -> None:
        await self._keep_preparing()
        while self.ready and self.processor is None:
            try:
                await self._start_services()
            except StoreUnavailable as exc:
                log.warning("background services wait for the store: %s", exc.message)
                await asyncio.sleep(RETRY_SECONDS)

    async def _start_services(self) -> None:
        """Each service once, in dependency order; one that failed to start (the store went away meanwhile) is
        started by the next attempt, those started already are kept. Raises StoreUnavailable."""
        if self.presence is None:
            # Before anything stores a row that names this replica: until its lock is held, the leader counts it gone.
            presence = Presence(self.store, self.replica)
            await presence.start()
            self.presence = presence
            self._owns("presence", presence.stop)
        if self.logs is None:
            logs = LogService(self.store, self.settings.logs, self.events)
            logs.start(asyncio.get_running_loop(), own_logs=self.settings.logs.store_own)
            self.logs = logs
            self._owns("logs", lambda: asyncio.to_thread(logs.stop))
        if self.hub is None:
            self.hub = AgentHub()
            self._owns("hub", self.hub.stop)
        if self.robots is None:
            robots = RobotsService(
                self.store,
                self.hub,
                self.events,
                server_url=self.server_url,
                agent_grace_seconds=self.settings.agents.grace_seconds,
                logs=self.logs,
            )
            await asyncio.to_thread(robots.apply_config, self.settings.robots)
            self._listen(self.hub, robots, self.logs)
            self.robots = robots
            self._owns("robots", robots.stop)
        if self.settings.agents.local and self.local_agent is None:
            local = LocalAgent(self.settings, self.hub)
            await local.start()
            self.local_agent = local
            self._owns("local_agent", local.stop)
        if not self.robots.deadlines.running:
            # After the local agent: a deadline that passed while serve was down is enforced on a connected agent.
            await self.robots.startup()
        for domain in self.domains:
            if domain.service is not None and domain.name not in self.services:
                service: Service = load(domain.service)(self)
                await service.startup()
                self.services[domain.name] = service
                self._stack.push_async_callback(self._stop_service, domain.name)
        if self.processor is None:
            processor = Processor(self, self.registry, self.events)
            try:
                await processor.start()
            except BaseException:
                await processor.stop()
                raise
            self.processor = processor
            self._owns("processor", processor.stop)

    @staticmethod
    def _listen(hub: AgentHub, robots: RobotsService, logs: LogService) -> None:
        """What agents report reaches the services that own it: exits and losses the robots, output the logs; which
        agent and robot a run belongs to the robots (an agent reports on its own runs only, as their robot)."""

        def run_robot(run_id: str) -> str | None:
            try:
                return robots.get_run(system_principal("agents-hub"), int(run_id)).robot
            except NotFound:
                return None

        def run_log_format(run_id: str) -> str | None:
            robot = run_robot(run_id) if run_id.isascii() and run_id.isdigit() else None
            try:
                return robots.get_robot(system_principal("agents-hub"), robot).log_format if robot else None
            except NotFound:  # deleted since
                return None

        output = RobotOutput(logs.writer.submit, run_log_format)

        hub.listeners = HubListeners(
            run_exited=robots.run_exited,
            agent_back=robots.agent_back,
            agent_gone=robots.watch_gone,
            runs_vanished=robots.runs_vanished,
            store_output=output.store,
            run_agent=robots.run_agent,
            run_robot=run_robot,
        )

    def service(self, domain: str) -> Service:
        """The running service of `domain`; StoreUnavailable until it started."""
        service = self.services.get(domain)
        if service is None:
            raise StoreUnavailable(f"{domain} is not available yet: the store is not ready")
        return service

    async def _stop_service(self, domain: str) -> None:
        service = self.services.pop(domain, None)
        if service is not None:
            await service.stop()

    def _owns(self, attribute: str, stop: Callable[[], Awaitable[object]]) -> None:
        """The service now in `attribute` is stopped by `stop` when the orchestrator stops (in reverse order of the
        starts), and forgotten then: a stopped orchestrator holds no service."""

        async def release() -> None:
            await stop()
            setattr(self, attribute, None)

        self._stack.push_async_callback(release)
