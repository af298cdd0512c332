"""Real PostgreSQL for tests: the server at 127.0.0.1:5432, or a throwaway cluster from the local binaries."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.kit.ports import free_port
from tests.kit.waiting import wait_until

HOW_TO_ENABLE = (
    "PostgreSQL tests need a server at 127.0.0.1:5432 with trust auth for user 'postgres', or the PostgreSQL "
    "server binaries (apt-get install postgresql) so a throwaway cluster can be started"
)


@dataclass
class PgServer:
    host: str
    port: int
    user: str = "postgres"

    def admin_dsn(self, database: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={database} connect_timeout=5"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    @contextmanager
    def database(self) -> Iterator[str]:
        """A fresh database, dropped afterwards; yields its SQLAlchemy URL."""
        name = f"robofleet_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_dsn(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        try:
            yield self.url(name)
        finally:
            with psycopg.connect(self.admin_dsn(), autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def answers(host: str, port: int, user: str = "postgres") -> bool:
    try:
        with psycopg.connect(f"host={host} port={port} user={user} dbname=postgres connect_timeout=3"):
            return True
    except psycopg.Error:
        return False


def pg_bin() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


class ThrowawayCluster:
    """A PostgreSQL cluster of our own that a test may stop and start (initdb refuses root: run as postgres)."""

    def __init__(self) -> None:
        binaries = pg_bin()
        if binaries is None:
            raise RuntimeError("no PostgreSQL server binaries found under /usr/lib/postgresql")
        self.bin = binaries
        self.dir = Path(tempfile.mkdtemp(prefix="robofleet-pg-"))
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, *argv: str) -> None:
        command = ["runuser", "-u", "postgres", "--", *argv] if self._as_postgres else list(argv)
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.dir / "data"),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", mode, "-w", "stop")

    def server(self) -> PgServer:
        return PgServer("127.0.0.1", self.port)

    def destroy(self) -> None:
        with suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def wait_until_answers(self, timeout: float = 15) -> None:
        """Returns once the cluster answers; fails (TimeoutError) after `timeout` seconds."""
        try:
            wait_until(lambda: answers("127.0.0.1", self.port), timeout, 0.1, "the throwaway PostgreSQL to come up")
        except AssertionError as exc:
            raise TimeoutError(str(exc)) from exc
