"""Shared by the benchmarks: start `robofleet serve` on SQLite or a fresh PostgreSQL database, get a token."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    token: str
    process: subprocess.Popen[bytes]
    workdir: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def rss_mb(self) -> float:
        import psutil

        return float(psutil.Process(self.process.pid).memory_info().rss) / 1e6


def postgres_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN):
            return True
    except psycopg.Error:
        return False


@contextmanager
def serve(store: str, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """A real `robofleet serve` subprocess on `store` ("sqlite" or "postgresql"), with an admin token."""
    workdir = Path(tempfile.mkdtemp(prefix=f"robofleet-bench-{store}-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOFLEET_")}
    port = free_port()
    env.update({"ROBOFLEET_SERVER__PORT": str(port), "ROBOFLEET_LOGS__LEVEL": "WARNING", **(extra_env or {})})
    database = None
    if store == "postgresql":
        database = f"robofleet_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{database}"')
        env["ROBOFLEET_STORE__URL"] = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
    log = (workdir / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "robofleet", "serve"], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError((workdir / "serve.log").read_text())
            time.sleep(0.1)
        made = subprocess.run(
            [sys.executable, "-m", "robofleet", "token", "create", "--user", "admin"],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        yield Server(url, made.stdout.strip().splitlines()[-1], process, workdir)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        # The displays of its local agent outlive serve on purpose (as its robots do): a benchmark leaves none.
        from robofleet.agents.display_keeper import stop_recorded

        stop_recorded(workdir / "robofleet-data" / "agent-local")
        if database:
            with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def loop_seconds(steps: int = 10_000_000) -> float:
    """How long a plain Python loop takes now: this machine's CPU speed swings by 3x between spells, and every
    figure with it. Printed with each table, so figures of different runs can be compared (ratios against the
    peers run side by side hold across spells)."""
    began = time.perf_counter()
    total = 0
    for step in range(steps):
        total += step
    return time.perf_counter() - began


_LOOP_AT_START = loop_seconds()


def print_table(title: str, headers: list[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    print(f"machine speed: a 10M-step Python loop took {_LOOP_AT_START:.2f} s at the start, {loop_seconds():.2f} s now")


def screenshot_round_trips(
    api: httpx.Client, name: str, fmt: str, rounds: int, quality: int = 80
) -> tuple[list[float], int]:
    """Milliseconds per GET /api/v1/sessions/NAME/screenshot, one after the other (from the call to the last byte),
    and the size of the last image."""
    took, size = [], 0
    for _ in range(rounds):
        began = time.perf_counter()
        answer = api.get(f"/api/v1/sessions/{name}/screenshot", params={"format": fmt, "quality": quality})
        took.append((time.perf_counter() - began) * 1000)
        assert answer.status_code == 200, answer.text
        size = len(answer.content)
    return took, size


def screenshot_rows(
    figures: dict[str, dict[str, list[float]]], sizes: dict[str, int], ours: str, tail: float
) -> list[list[object]]:
    """The screenshot table's rows: per format and system, p50 and the `tail` percentile in ms, our image's size in
    KB, and our p50 over each peer's."""
    rows: list[list[object]] = []
    for fmt, systems in figures.items():
        for system, took in systems.items():
            ratio = percentile(systems[ours], 0.5) / max(percentile(took, 0.5), 1e-9)
            rows.append(
                [
                    fmt.upper(),
                    system,
                    f"{percentile(took, 0.5):.1f}",
                    f"{percentile(took, tail):.1f}",
                    f"{sizes[fmt] / 1000:.0f}" if system == ours else "",
                    "-" if system == ours else f"{ratio:.2f}x",
                ]
            )
    return rows
