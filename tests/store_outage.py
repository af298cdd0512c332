"""The set-up of a store outage under a real `robofleet serve`: a throwaway PostgreSQL cluster a test may stop,
start and freeze, and a serve whose store is that cluster's database.

For the outage tests (tests/store/test_outage.py, tests/agents/test_local_agent_outage.py): each takes the cluster
as a fixture of its own, `with throwaway_cluster() as cluster: yield cluster`."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from tests.conftest import ServeProcess, StartServe, ThrowawayCluster, pg_bin, skip_or_fail


@contextmanager
def throwaway_cluster() -> Iterator[ThrowawayCluster]:
    """A started cluster that answers, destroyed afterwards, however the test ends. Without the PostgreSQL server
    binaries, or when the cluster cannot run, the test is skipped (failed in CI: `skip_or_fail`)."""
    if pg_bin() is None:
        skip_or_fail("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin) to start a throwaway cluster")
    try:
        made = ThrowawayCluster()
        made.start()
        made.wait_until_answers()
    except (RuntimeError, OSError, subprocess.SubprocessError, TimeoutError) as exc:
        skip_or_fail(f"cannot run a throwaway PostgreSQL cluster: {exc}")
        raise
    try:
        yield made
    finally:
        made.destroy()


def serve_on(start_serve: StartServe, cluster: ThrowawayCluster, **env: str) -> ServeProcess:
    """A `robofleet serve` on the cluster's database with the settings of `env`, not started yet."""
    url = cluster.server().url("postgres")
    return start_serve(env={"ROBOFLEET_STORE__URL": url, **env}, start=False)
