"""Demo robot that pauses cooperatively: it works in steps of --step seconds and calls `sdk.checkpoint()` between
them. Paused, it holds at the checkpoint still alive (with --heartbeat FILE, a thread writes the time there ten
times a second, paused or not) instead of being frozen mid-step; on a safe stop it leaves after its step."""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

from robofleet import sdk


def beat(path: Path) -> None:
    while True:
        path.write_text(f"{time.time():.3f}\n")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--step", type=float, default=1.0, help="Seconds one step takes")
    parser.add_argument("--steps", type=int, default=0, help="Leave after N steps (0: never)")
    parser.add_argument("--heartbeat", type=Path, help="A file a thread keeps writing the time to")
    args = parser.parse_args()
    sdk.install(checkpoints=True)  # says so at once: a pause asked during the first step waits for its end
    if args.heartbeat:
        threading.Thread(target=beat, args=(args.heartbeat,), daemon=True).start()
    step = 0
    while not sdk.checkpoint() and (not args.steps or step < args.steps):
        step += 1
        print(f"step {step} begins", flush=True)
        time.sleep(args.step)  # a unit of work that must not be cut in half
        print(f"step {step} done", flush=True)
    print(f"left after step {step}{' (stop requested)' if sdk.should_stop() else ''}", flush=True)


if __name__ == "__main__":
    main()
