"""A queue worker as a robot would be one, run as its own process by the tests:

    python worker.py URL TOKEN QUEUE OUT [--hold SECONDS] [--idle SECONDS]

It leases items one at a time (long-polling `items/next?wait=1`, or the next item brought by the completion of the
last, `complete?next=1`), holds each `--hold` seconds (0: none), completes it with its reference as output, and
appends `leased ID` and then `done ID` (or `lost ID`) to OUT as each happens. It exits after
`--idle` seconds without an item."""

from __future__ import annotations

import argparse
import time

import httpx


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("queue")
    parser.add_argument("out")
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument("--idle", type=float, default=3.0)
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {args.token}"}
    base = f"/api/v1/queues/{args.queue}/items"
    idle_since = time.monotonic()
    waiting: list[dict[str, object]] = []  # items leased with the last completion (`complete?next=1`)
    with httpx.Client(base_url=args.url, headers=headers, timeout=30) as client, open(args.out, "a") as out:
        while waiting or time.monotonic() - idle_since < args.idle:
            if not waiting:
                try:
                    leased = client.post(f"{base}/next", params={"wait": 1})
                except httpx.TransportError:  # serve restarting: its items wait for us
                    time.sleep(0.2)
                    continue
                if leased.status_code == 204:
                    continue
                leased.raise_for_status()
                waiting = [leased.json()]
            item = waiting.pop()
            out.write(f"leased {item['id']}\n")
            out.flush()
            if args.hold:
                time.sleep(args.hold)
            report = {"lease_id": item["lease_id"], "output": item["reference"]}
            try:
                done = client.post(f"{base}/{item['id']}/complete", params={"next": 1}, json=report)
            except httpx.TransportError:  # unacknowledged: the lease runs out and the item comes back
                out.write(f"lost {item['id']}\n")
                continue
            if done.status_code == 409:  # the lease was lost meanwhile: another worker has the item now
                out.write(f"lost {item['id']}\n")
            else:
                done.raise_for_status()
                out.write(f"done {item['id']}\n")
                waiting = list(done.json()["items"])
            out.flush()
            idle_since = time.monotonic()


if __name__ == "__main__":
    main()
