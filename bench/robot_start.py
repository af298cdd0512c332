"""Click-to-running latency of a real robot on the embedded local agent of a real `robofleet serve`.

Each round: POST /api/v1/robots/{name}/start (it answers once the robot's process runs), then a kill, waiting
until the run has ended. Prints p50/p99 of the start latency, next to a peer run side by side: the same robot
process started bare with subprocess.Popen in this process (the floor no orchestrator can beat).
Target on 2 cores: p50 < 150 ms.
Usage: python bench/robot_start.py [--rounds 40] [--stores sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import percentile, postgres_available, print_table, serve

COUNTER = [sys.executable, str(Path(__file__).resolve().parents[1] / "examples" / "robots" / "counter.py")]


def rounds_on(store: str, rounds: int) -> list[float]:
    with serve(store) as server:
        api = httpx.Client(base_url=server.url, headers=server.headers, timeout=30)
        assert api.post("/api/v1/robots", json={"name": "bench", "argv": COUNTER}).status_code == 201
        latencies = []
        for _ in range(rounds):
            began = time.perf_counter()
            run = api.post("/api/v1/robots/bench/start")
            latencies.append((time.perf_counter() - began) * 1000)
            assert run.status_code == 201 and run.json()["state"] == "running", run.text
            api.post(f"/api/v1/runs/{run.json()['id']}/kill")
            while api.get(f"/api/v1/runs/{run.json()['id']}").json()["state"] not in ("killed", "failed"):
                time.sleep(0.01)
        return latencies


def bare_popen(rounds: int) -> list[float]:
    latencies = []
    for _ in range(rounds):
        began = time.perf_counter()
        process = subprocess.Popen(COUNTER, stdout=subprocess.DEVNULL, start_new_session=True)
        latencies.append((time.perf_counter() - began) * 1000)
        process.kill()
        process.wait()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--stores", default="sqlite,postgresql")
    args = parser.parse_args()
    peer = bare_popen(args.rounds)
    rows = []
    for store in args.stores.split(","):
        if store == "postgresql" and not postgres_available():
            print("PostgreSQL at 127.0.0.1:5432 is not reachable: skipping it", file=sys.stderr)
            continue
        ours = rounds_on(store, args.rounds)
        rows.append(
            [
                store,
                f"{percentile(ours, 0.5):.1f}",
                f"{percentile(ours, 0.99):.1f}",
                "150",
                f"{percentile(peer, 0.5):.2f}",
                f"{percentile(ours, 0.5) / percentile(peer, 0.5):.0f}x",
            ]
        )
    print_table(
        f"Robot start: POST /robots/NAME/start until the process runs ({args.rounds} rounds)",
        ["store", "p50 ms", "p99 ms", "target p50 ms", "bare Popen p50 ms", "vs bare"],
        rows,
    )


if __name__ == "__main__":
    main()
