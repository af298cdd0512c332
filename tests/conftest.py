"""Fixtures that start the real thing: SQLite files, PostgreSQL databases, the app, `robofleet serve` and
`robofleet agent` processes, the CLI, a browser.

Test modules take what starts or owns something as a fixture, and import from a conftest only its types and its
pure helpers (`bearer`, `wait_until`, `log_in`, `signed_in`); never anything from another test module nor from
tests.kit."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser

from robofleet.agents.display_keeper import stop_recorded
from robofleet.auth.principal import cli_principal
from robofleet.auth.schemas import TokenCreate, UserCreate
from robofleet.auth.tokens import create_token
from robofleet.auth.users import create_user
from robofleet.orchestrator import Orchestrator, prepare_store
from robofleet.settings.model import Settings
from robofleet.store import Store
from robofleet.web.app import create_app
from tests.kit import cli as kit_cli
from tests.kit.browser import chromium, log_in, signed_in
from tests.kit.cli import CliResult
from tests.kit.pg import HOW_TO_ENABLE, PgServer, ThrowawayCluster, answers, pg_bin
from tests.kit.ports import free_port
from tests.kit.proxy import FlakyProxy
from tests.kit.serve import AgentProcess, Processes, ServeProcess, StartAgent, StartServe
from tests.kit.waiting import wait_until, wait_until_async

__all__ = [
    "STORES",
    "AgentProcess",
    "CliResult",
    "FlakyProxy",
    "MakeUser",
    "PgServer",
    "RunCli",
    "ServeProcess",
    "StartAgent",
    "StartServe",
    "ThrowawayCluster",
    "bearer",
    "free_port",
    "log_in",
    "pg_bin",
    "signed_in",
    "skip_or_fail",
    "wait_until",
    "wait_until_async",
]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
STORES = ["sqlite", "postgresql"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Captured output as text any process can be sent: a robot's undecodable file name (a lone surrogate) is
    shown escaped, so that a pytest-xdist worker can report the test to the controller."""
    report: pytest.TestReport = yield
    report.sections = [(title, printable(text)) for title, text in report.sections]
    return report


def printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def skip_or_fail(reason: str) -> None:
    """Outside CI a missing PostgreSQL skips, saying how to enable it; in CI it fails, so CI proves both stores."""
    if IN_CI:
        pytest.fail(f"CI=true and PostgreSQL is unusable: {reason}. {HOW_TO_ENABLE}")
    pytest.skip(f"PostgreSQL unusable: {reason}. {HOW_TO_ENABLE}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer | None]:
    if answers("127.0.0.1", 5432):
        yield PgServer("127.0.0.1", 5432)
        return
    if pg_bin() is None:
        yield None
        return
    cluster = ThrowawayCluster()
    cluster.start()
    try:
        yield cluster.server()
    finally:
        cluster.destroy()


@pytest.fixture
def pg_url(pg_server: PgServer | None) -> Iterator[str]:
    if pg_server is None:
        skip_or_fail("no server at 127.0.0.1:5432 and no local PostgreSQL binaries")
        raise AssertionError("unreachable")
    with pg_server.database() as url:
        yield url


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'robofleet.db'}"
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture
def settings(store_url: str, tmp_path: Path) -> Settings:
    return Settings(
        store={"url": store_url, "data_dir": tmp_path / "data"}, auth={"lockout_threshold": 3, "lockout_minutes": 1}
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = Store(settings.store)
    prepare_store(store, settings)
    yield store
    store.dispose()


@pytest.fixture
def context(settings: Settings, store: Store) -> Orchestrator:
    return Orchestrator(settings=settings, store=store, ready=True)


@pytest.fixture
def client(context: Orchestrator) -> Iterator[TestClient]:
    with TestClient(create_app(context), base_url="http://testserver") as test_client:
        yield test_client
    # The displays its local agent started outlive it on purpose, as its robots do: a test leaves none behind.
    stop_recorded(context.settings.store.data_dir / "agent-local")


MakeUser = Callable[..., str]


@pytest.fixture
def make_user(store: Store) -> MakeUser:
    """Creates a user with the given roles and returns a bearer token for it."""

    def make(
        username: str | None = None,
        roles: list[str] | None = None,
        password: str | None = None,
        scopes: list[str] | None = None,
    ) -> str:
        username = username or f"user{secrets.token_hex(3)}"
        create_user(
            store,
            cli_principal(),
            UserCreate(username=username, password=password or "password-123", roles=roles or []),
        )
        return create_token(store, cli_principal(), TokenCreate(user=username, scopes=scopes or [])).token

    return make


@pytest.fixture
def admin_token(make_user: MakeUser) -> str:
    return make_user("root-admin", ["admin"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """The owner of this test's `robofleet serve` and `robofleet agent` processes: all stopped at its end."""
    owner = Processes(tmp_path)
    try:
        yield owner
    finally:
        owner.stop_all()


@pytest.fixture
def start_serve(processes: Processes) -> StartServe:
    """`start_serve(workdir=None, *, env=None, port=None, wait="/readyz", start=True, split_output=False)`: a
    `robofleet serve` in `workdir` (a new folder under tmp_path by default) with the settings of `env`, on a free
    port, answering `wait`; stopped (SIGTERM, then SIGKILL) when the test ends, however it ends."""
    return processes.serve


@pytest.fixture
def start_agent(processes: Processes) -> StartAgent:
    """`start_agent(server, name, *, token=None, state_dir=None, env=None, online=None, token_in_env=False)`: a
    `robofleet agent` named `name` connected to `server` (a ServeProcess, or a URL with a `token`); with `online`
    (an admin API client) it returns once the server lists it. When no token is given, a new agent user `name`
    gets a token bound to the agent name `name` (`ServeProcess.agent_token`). The token goes in a 0600 file
    (`--token-file`), or with `token_in_env` in ROBOFLEET_AGENT_TOKEN; never on the command line. Stopped
    (SIGTERM, then SIGKILL) when the test ends."""
    return processes.agent


@pytest.fixture(scope="module")
def start_module_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServe]:
    """`start_serve` for a module-scoped fixture: the processes live until the module's last test ends."""
    owner = Processes(tmp_path_factory.mktemp("module-serve"))
    try:
        yield owner.serve
    finally:
        owner.stop_all()


RunCli = Callable[..., CliResult]


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """`run_cli(*args, cwd=tmp_path, env=None, stdin=None, timeout=60)`: `python -m robofleet ARGS` in `cwd` with
    the runner's environment less its ROBOFLEET_* variables, plus `env`; its (returncode, stdout, stderr).
    `ServeProcess.cli` runs the same with a server's folder and settings."""

    def run(
        *args: str,
        cwd: Path = tmp_path,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
        timeout: float = 60,
    ) -> CliResult:
        return kit_cli.run_cli(*args, cwd=cwd, env=env, stdin=stdin, timeout=timeout)

    return run


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Headless Chromium for this test (Debian's, through Playwright)."""
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def module_browser() -> Iterator[Browser]:
    """`browser` for a module's tests to share (each test its own context)."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def flaky_proxy() -> Iterator[Callable[[int], FlakyProxy]]:
    """`flaky_proxy(port)`: a started FlakyProxy in front of 127.0.0.1:`port`, stopped when the test ends."""
    started: list[FlakyProxy] = []

    def start(port: int) -> FlakyProxy:
        started.append(FlakyProxy(port).start())
        return started[-1]

    yield start
    for proxy in reversed(started):
        proxy.stop()
