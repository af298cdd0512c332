"""Fixtures that start the real thing: SQLite files, PostgreSQL databases, the app, `robofleet serve`."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from robofleet.auth.principal import cli_principal
from robofleet.auth.schemas import TokenCreate, UserCreate
from robofleet.auth.tokens import create_token
from robofleet.auth.users import create_user
from robofleet.orchestrator import Orchestrator, prepare_store
from robofleet.settings.model import Settings
from robofleet.store import Store
from robofleet.web.app import create_app
from tests.pg import HOW_TO_ENABLE, PgServer, ThrowawayCluster, answers, pg_bin

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
STORES = ["sqlite", "postgresql"]


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
