"""An item's lease kept alive while the robot works on it: a thread of its own extends the lease every third of its
length, by the queue's lease time again, so a robot may work on an item for as long as it needs while a robot that
dies (its keeper with it) gives the item back within one lease time.

An extend the orchestrator refuses with 409 means the lease is lost (it expired while the orchestrator or the
network was away, or an operator deleted the item): the keeper stops, says why, and the robot's report on the item
will be refused the same way. While the orchestrator is away the keeper tries again every RETRY_SECONDS."""

from __future__ import annotations

import logging
import threading

from robofleet.sdk.connection import Connection
from robofleet.sdk.errors import OrchestratorUnreachable, Refused

log = logging.getLogger("robofleet.sdk")

SHORTEST_PERIOD = 0.1
RETRY_SECONDS = 0.5


class LeaseKeeper:
    def __init__(self, connection: Connection, path: str, lease_id: str, lease_seconds: float) -> None:
        """Keeps the lease `lease_id` of the item at `path` (…/items/{id}) alive once started; `lease_seconds` is
        how long the queue leases an item, and how far each extend reaches."""
        self.connection = connection
        self.path = path
        self.lease_id = lease_id
        self.lease_seconds = lease_seconds
        self.extended = 0
        self.lost: str | None = None  # why the lease was lost, once the orchestrator said so
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"robofleet-lease {path}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """No extend after this returns (one in flight is waited for, at most the connection's timeout)."""
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        period = max(SHORTEST_PERIOD, self.lease_seconds / 3)
        timeout = max(1.0, min(self.connection.timeout, period))
        wait = period
        while not self._stopped.wait(wait):
            try:
                response = self.connection.request(
                    "POST",
                    f"{self.path}/extend",
                    json={"lease_id": self.lease_id, "seconds": self.lease_seconds},
                    timeout=timeout,
                    retry_for=0,  # this loop is the retry, so that stop() is never kept waiting by a backoff
                )
            except OrchestratorUnreachable:
                wait = RETRY_SECONDS
                continue
            if response.status_code == 200:
                self.extended += 1
                wait = period
            elif response.status_code == 409:
                self.lost = Refused.of(response).message
                log.warning("lease lost on %s: %s", self.path, self.lost)
                return
            elif response.status_code >= 500 or response.status_code == 429:
                wait = RETRY_SECONDS
            else:
                log.warning("could not extend the lease of %s: %s", self.path, Refused.of(response))
                return
