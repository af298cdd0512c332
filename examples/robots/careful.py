"""Demo robot using the SDK: works in steps of --step seconds and, on a safe stop, finishes the step it is in
before leaving (exit code 0), logging through the orchestrator's log store."""

from __future__ import annotations

import argparse
import logging
import time

from robofleet import sdk


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--step", type=float, default=1.0)
    args = parser.parse_args()
    sdk.install()
    log = logging.getLogger("careful")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    step = 0
    while not sdk.should_stop():
        step += 1
        print(f"step {step} begins", flush=True)
        time.sleep(args.step)  # a unit of work that must not be cut in half
        print(f"step {step} done", flush=True)
    log.info("stop requested: left cleanly after step %d", step)


if __name__ == "__main__":
    main()
