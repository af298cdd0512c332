"""A remote shell command that writes far more than its caller asked for costs `serve` (where the local agent
runs) only what it keeps: the rest is read and dropped as it comes, never held."""

from __future__ import annotations

import threading

import psutil
import pytest

from tests.conftest import StartServe

pytestmark = pytest.mark.slow
MEGABYTE = 1024 * 1024


def test_a_huge_shell_output_is_dropped_as_it_comes(start_serve: StartServe) -> None:
    serve = start_serve()
    api = serve.api(timeout=120)
    assert serve.process is not None
    process = psutil.Process(serve.process.pid)
    warm = api.post("/api/v1/agents/local/shell", json={"command": "echo warm", "max_output": 1000})
    assert warm.status_code == 200, warm.text
    before = process.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        command = {"command": "head -c 200000000 /dev/zero; echo done >&2", "max_output": 1000, "timeout": 120}
        answer = api.post("/api/v1/agents/local/shell", json=command)
    finally:
        done.set()
        sampler.join()
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["exit_code"] == 0 and result["truncated"] and not result["timed_out"]
    assert result["stdout"] == "\0" * 1000 and result["stderr"] == "done\n"
    assert (peak[0] - before) / MEGABYTE < 100, f"serve grew by {(peak[0] - before) / MEGABYTE:.0f} MB"
