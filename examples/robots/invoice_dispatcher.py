"""Demo dispatcher robot: adds invoices to a work queue through the SDK, for worker robots (invoice_worker.py).

    python invoice_dispatcher.py [--queue invoices] [--count N] [--seconds S] [--first K]

Adds N invoices, INV-K to INV-(K+N-1), each with its number as the item's reference (a queue of unique references
refuses one it holds already: those are counted, not added again) and paying for S seconds each."""

from __future__ import annotations

import argparse
import logging

from robofleet import sdk

log = logging.getLogger("invoice-dispatcher")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queue", default="invoices")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--first", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    invoices = [
        sdk.NewItem(
            reference=f"INV-{number}",
            payload={"number": f"INV-{number}", "amount": 100 + number, "seconds": args.seconds},
        )
        for number in range(args.first, args.first + args.count)
    ]
    added = sdk.queue(args.queue).add_many(invoices)
    log.info("added %d invoices to %s, %d refused", len(added.ids), args.queue, len(added.refused))


if __name__ == "__main__":
    main()
