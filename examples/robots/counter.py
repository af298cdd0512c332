"""Demo robot: counts forever, one line a second (or `--every SECONDS`, `--until N`). Works without the SDK:
every lifecycle action reaches it through signals."""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--every", type=float, default=1.0)
    parser.add_argument("--until", type=int, default=0, help="Stop after N (0: never)")
    args = parser.parse_args()
    count = 0
    while not args.until or count < args.until:
        count += 1
        print(f"count {count}", flush=True)
        time.sleep(args.every)


if __name__ == "__main__":
    main()
