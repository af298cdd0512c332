"""Demo worker robot: pays the invoices of a work queue through the SDK, one at a time, for as long as it runs.

    python invoice_worker.py [--queue invoices] [--idle SECONDS]

Each item's payload is an invoice: {"number": "INV-7", "amount": 120.5}. An amount that is not positive is the
invoice's own fault (a BusinessError: the item fails for good); `"crash": true` stands for the payment portal
failing (any other exception: the item is retried as the queue says); `"seconds": S` makes the payment take that
long. The output of a paid invoice says how much, and which run paid it. A safe stop ends the robot after the
invoice in hand, exit code 0; with --idle it also ends once no invoice came for that long."""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

from robofleet import sdk

log = logging.getLogger("invoice-worker")


def pay(invoice: dict[str, Any]) -> dict[str, Any]:
    amount = invoice.get("amount")
    if not isinstance(amount, int | float) or amount <= 0:
        raise sdk.BusinessError(f"invoice {invoice.get('number')} has no payable amount: {amount!r}")
    if invoice.get("crash"):
        raise RuntimeError(f"the payment portal crashed on invoice {invoice.get('number')}")
    log.info("paying %s", invoice.get("number"))
    time.sleep(float(invoice.get("seconds", 0)))
    return {"paid": amount, "run": sdk.context().run_id}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queue", default="invoices")
    parser.add_argument("--idle", type=float, default=None, help="Leave after this long without an invoice")
    args = parser.parse_args()
    sdk.install()  # in the main thread, first: a safe stop (SIGTERM) only sets should_stop()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    handled = 0
    for item in sdk.queue(args.queue, idle=args.idle):
        with item:  # completes the item with its output, or fails it with the exception's kind
            item.output = pay(item.payload)
        handled += 1
    log.info("left the queue after %d invoices (%s)", handled, "stop requested" if sdk.should_stop() else "idle")


if __name__ == "__main__":
    main()
