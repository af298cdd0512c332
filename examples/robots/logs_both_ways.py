"""Demo robot that logs as most Python robots do: `logging.basicConfig` (to stderr) for whoever watches it, and the
SDK's `RobofleetLogHandler` for the orchestrator, both on the root logger. Each record is stored once: the SDK's
copy, with its fields (in a run, the handler leaves its records out of the stream handlers). What the robot prints
is stored as its output, and so is the traceback it dies of with --crash: one record at ERROR.

Run it with an interpreter that has robofleet installed (the SDK is part of it), e.g. the one of robofleet's own
virtual environment: `argv = [".venv/bin/python", "examples/robots/logs_both_ways.py"]`.
"""

from __future__ import annotations

import argparse
import logging

from robofleet.sdk import RobofleetLogHandler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--crash", action="store_true", help="end with an uncaught ConnectionError")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler = RobofleetLogHandler()
    logging.getLogger().addHandler(handler)
    log = logging.getLogger("invoices")

    print("portal session opened", flush=True)
    for step in range(1, 4):
        log.info("step %d of 3", step, extra={"fields": {"step": step}})
    log.warning("portal slow: retrying")
    log.info("invoice 7 read:\n  total 120.00\n  due 2026-12-31")
    try:
        raise ConnectionError("portal closed the connection")
    except ConnectionError:
        log.exception("invoice 8 failed")
    handler.close()  # delivers what is buffered before the robot ends
    if args.crash:
        raise ConnectionError("portal down")


if __name__ == "__main__":
    main()
