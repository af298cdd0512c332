"""Demo robot that logs through the SDK: its records reach the orchestrator's log store with structured fields,
authenticated by the token the agent gives each run (ROBOFLEET_TOKEN)."""

from __future__ import annotations

import logging

from robofleet.sdk import RobofleetLogHandler, context


def main() -> None:
    handler = RobofleetLogHandler()
    log = logging.getLogger("sdk-demo")
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    log.info("hello via the sdk from run %s", context().run_id, extra={"fields": {"invoice": 42}})
    log.warning("a warning with a field", extra={"fields": {"step": "login"}})
    handler.close()  # sends what is buffered before the robot exits


if __name__ == "__main__":
    main()
