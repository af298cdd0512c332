"""The store's files are its user's alone: the data dir 0700, the SQLite database and its -wal and -shm 0600, on a
first start with a permissive umask and after a start that finds them world-readable (as earlier versions left them)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import StartServe

pytestmark = pytest.mark.slow

DATABASE_FILES = ("robofleet.db", "robofleet.db-wal", "robofleet.db-shm")


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """serve inherits the umask: 022, as most shells set it, makes files 0644 unless serve restricts them."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(data: Path) -> dict[str, int]:
    return {name: mode(data / name) for name in DATABASE_FILES}


@pytest.mark.usefixtures("permissive_umask")
def test_sqlite_files_are_private_at_first_start_and_made_private_again(
    tmp_path: Path, start_serve: StartServe
) -> None:
    serve = start_serve(tmp_path / "site")
    data = serve.workdir / "robofleet-data"
    serve.api().post("/api/v1/robots", json={"name": "payroll", "argv": ["true"], "env": {"DB_PASSWORD": "s3cret"}})
    assert mode(data) == 0o700
    assert modes(data) == dict.fromkeys(DATABASE_FILES, 0o600)
    assert mode(data / "initial-admin-password") == 0o600

    serve.stop()
    data.chmod(0o755)
    for name in DATABASE_FILES:
        if (data / name).exists():  # a clean stop may have folded the WAL back into the database
            (data / name).chmod(0o644)
    serve.start(wait="/readyz")
    assert serve.api().get("/api/v1/robots/payroll").status_code == 200
    assert mode(data) == 0o700
    assert modes(data) == dict.fromkeys(DATABASE_FILES, 0o600)


@pytest.mark.usefixtures("permissive_umask")
def test_the_data_dir_is_private_on_postgresql_too(pg_url: str, tmp_path: Path, start_serve: StartServe) -> None:
    site = tmp_path / "site"
    (site / "robofleet-data").mkdir(parents=True, mode=0o755)
    serve = start_serve(site, env={"ROBOFLEET_STORE__URL": pg_url})
    assert mode(serve.workdir / "robofleet-data") == 0o700
    assert mode(serve.workdir / "robofleet-data" / "initial-admin-password") == 0o600
