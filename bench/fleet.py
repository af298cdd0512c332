"""Many agents on one orchestrator: a real `robofleet serve` and N simulated agents (light clients speaking the
real WebSocket protocol: hello, heartbeats, answers to commands), N = 100, 1,000 and more (--sizes).

Per N it prints: the time to connect them all, command round-trip p50/p99 (GET /api/v1/agents/NAME/system,
orchestrator -> agent -> orchestrator, under a steady load of --rate commands/s spread over the agents), and
the orchestrator's CPU % and RSS while it holds them. Side by side, the same round trip to the embedded local
agent (no network hop) is the peer figure.
Targets on 2 cores: 1,000 agents held with command p99 < 100 ms and orchestrator RSS < 400 MB.
Usage: python bench/fleet.py [--sizes 100,1000,2000] [--rate 100] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import psutil
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Server, percentile, print_table, serve


async def simulated_agent(url: str, token: str, name: str, ready: asyncio.Event, stop: asyncio.Event) -> None:
    async with websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=60, ping_interval=None
    ) as socket:
        await socket.send(
            json.dumps(
                {
                    "type": "hello",
                    "name": name,
                    "host": "sim",
                    "os_user": "bench",
                    "os": "Linux",
                    "python": "3",
                    "capabilities": ["system"],
                    "runs": [],
                }
            )
        )
        ready.set()

        async def heartbeat() -> None:
            while not stop.is_set():
                await asyncio.sleep(10)
                await socket.send(json.dumps({"type": "heartbeat", "stats": {"cpu_percent": 1.0}}))

        beating = asyncio.create_task(heartbeat())
        try:
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(socket.recv(), 0.5)
                except TimeoutError:
                    continue
                message = json.loads(raw)
                if message.get("type") == "command":
                    outcome = {"ok": True, "result": {"host": "sim", "cpu_count": 2, "memory": {"total": 1}}}
                    await socket.send(json.dumps({"type": "result", "id": message["id"], "outcome": outcome}))
        finally:
            beating.cancel()


async def round_trips(server: Server, names: list[str], rate: float, seconds: float) -> list[float]:
    latencies: list[float] = []
    async with aiohttp.ClientSession(server.url, headers=server.headers) as http:

        async def one(name: str) -> None:
            began = time.perf_counter()
            async with http.get(f"/api/v1/agents/{name}/system") as answer:
                assert answer.status == 200, await answer.text()
                await answer.read()
            latencies.append((time.perf_counter() - began) * 1000)

        tasks = []
        began = time.perf_counter()
        for index in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, began + index / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(names[index % len(names)])))
        await asyncio.gather(*tasks)
    return latencies


async def measure(server: Server, token: str, size: int, rate: float, seconds: float) -> list[str]:
    url = server.url.replace("http://", "ws://") + "/api/v1/agents/connect"
    stop = asyncio.Event()
    names = [f"sim-{size}-{n}" for n in range(size)]
    readies = [asyncio.Event() for _ in names]
    began = time.perf_counter()
    agents = []
    for index, name in enumerate(names):
        agents.append(asyncio.create_task(simulated_agent(url, token, name, readies[index], stop)))
        if index % 50 == 49:
            await asyncio.sleep(0)  # let handshakes progress while more are opened
    await asyncio.gather(*(ready.wait() for ready in readies))
    async with aiohttp.ClientSession(server.url, headers=server.headers) as http:
        while True:
            async with http.get("/api/v1/agents") as answer:
                listed = {agent["name"] for agent in (await answer.json())["items"]}
            if set(names) <= listed:
                break
            await asyncio.sleep(0.05)
    connect_seconds = time.perf_counter() - began
    process = psutil.Process(server.process.pid)
    process.cpu_percent()
    latencies = await round_trips(server, names, rate, seconds)
    cpu = process.cpu_percent()
    rss = process.memory_info().rss / 1e6
    local = await round_trips(server, ["local"], rate, min(seconds, 3))
    stop.set()
    await asyncio.gather(*agents, return_exceptions=True)
    return [
        f"{size:,}",
        f"{connect_seconds:.1f}",
        f"{percentile(latencies, 0.5):.1f}",
        f"{percentile(latencies, 0.99):.1f}",
        f"{cpu:.0f}",
        f"{rss:.0f}",
        f"{percentile(local, 0.5):.1f}",
        f"{percentile(local, 0.99):.1f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,2000")
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    rows = []
    with serve("sqlite", {"ROBOFLEET_LOGS__LEVEL": "WARNING"}) as server:
        made = subprocess.run(
            [sys.executable, "-m", "robofleet", "user", "create", "fleet-bench", "--role", "agent", "--password-stdin"],
            cwd=server.workdir,
            input="fleet-bench-pw\n",
            text=True,
            capture_output=True,
            check=True,
            env={**__import__("os").environ},
        )
        del made
        token = (
            subprocess.run(
                [sys.executable, "-m", "robofleet", "token", "create", "--user", "fleet-bench"],
                cwd=server.workdir,
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        for size in (int(part) for part in args.sizes.split(",")):
            try:
                rows.append(asyncio.run(measure(server, token, size, args.rate, args.seconds)))
            except Exception as exc:  # as far as it goes: report where it stopped
                rows.append([f"{size:,}", f"failed: {type(exc).__name__}: {exc}"[:60], "", "", "", "", "", ""])
                break
    print_table(
        f"Simulated agents on one orchestrator (commands: GET /agents/NAME/system at {args.rate:.0f}/s for "
        f"{args.seconds:.0f} s)",
        [
            "agents",
            "connect s",
            "cmd p50 ms",
            "cmd p99 ms",
            "serve CPU %",
            "serve RSS MB",
            "local p50 ms",
            "local p99 ms",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
