"""The SDK's way to the orchestrator: its address and the run's token from the environment the agent gives each run
(ROBOFLEET_URL, ROBOFLEET_TOKEN), one `httpx.Client` reused for every request (a lease keeper thread shares it),
and retries with a short backoff while the orchestrator is away: restarting, or its store unavailable. A restart
of `robofleet serve` must never kill a robot; the robot's run outlives it and its requests wait for it."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any

import httpx

from robofleet.sdk.errors import NotInARun, OrchestratorUnreachable

log = logging.getLogger("robofleet.sdk")

URL_ENV = "ROBOFLEET_URL"
TOKEN_ENV = "ROBOFLEET_TOKEN"
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 2.0
AWAY = 503  # robofleet's answer while its store is unavailable or not ready yet: nothing was done
GATEWAY = frozenset({502, 504})  # a proxy's: the orchestrator may or may not have acted
# Nothing of the request reached the orchestrator: sending it again cannot do anything twice.
UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class Resend(StrEnum):
    """When a request whose answer was lost may be sent again."""

    ALWAYS = "always"  # leasing (an item leased to a lost answer comes back when its lease runs out); reports,
    # which the lease fences (a report sent twice is answered 409 the second time)
    IF_UNSENT = "if_unsent"  # adds: sent twice, the items would be added twice


class Connection:
    def __init__(
        self, url: str | None = None, token: str | None = None, *, timeout: float = 10.0, retry_for: float = 60.0
    ) -> None:
        """`url` and `token` default to the run's ROBOFLEET_URL and ROBOFLEET_TOKEN; NotInARun names the one
        missing. Requests are retried for up to `retry_for` seconds while the orchestrator is away."""
        url = url or os.environ.get(URL_ENV)
        token = token or os.environ.get(TOKEN_ENV)
        for value, name, what in ((url, URL_ENV, "address"), (token, TOKEN_ENV, "run token")):
            if not value:
                raise NotInARun(
                    f"{name} is not set: robofleet.sdk finds the orchestrator's {what} in the environment robofleet "
                    f"gives each run of a robot. Start the robot from robofleet, or pass url= and token= (an API "
                    f"token with queues:work) to reach an orchestrator from elsewhere"
                )
        assert url is not None and token is not None
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retry_for = retry_for
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
        self._away = False  # said once when the orchestrator goes away, once when it is back
        _quiet_transport_lines()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
        resend: Resend = Resend.ALWAYS,
        retry_for: float | None = None,
    ) -> httpx.Response:
        """The orchestrator's answer, whatever its status, but for 503 (its store away), retried with it, as is a
        request that could not be sent or (`Resend.ALWAYS`) whose answer was lost, for `retry_for` seconds (the
        connection's by default). OrchestratorUnreachable past that, or at once when a request that is not to be
        resent broke off after it may have reached the orchestrator."""
        give_up_at = time.monotonic() + (self.retry_for if retry_for is None else retry_for)
        backoff = FIRST_BACKOFF
        while True:
            try:
                with _sending():
                    response = self.http.request(
                        method, path, json=json, params=params, timeout=self.timeout if timeout is None else timeout
                    )
            except httpx.TransportError as exc:
                why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if resend == Resend.IF_UNSENT and not isinstance(exc, UNSENT):
                    raise OrchestratorUnreachable(
                        f"{method} {path} broke off ({why}); not sent again, as the orchestrator may have acted on it"
                    ) from exc
            else:
                if response.status_code != AWAY and (response.status_code not in GATEWAY or resend == Resend.IF_UNSENT):
                    self._back()
                    return response
                why = f"HTTP {response.status_code}"
            self._gone(why)
            left = give_up_at - time.monotonic()
            if left <= 0:
                raise OrchestratorUnreachable(f"the orchestrator at {self.url} is unreachable ({why})")
            time.sleep(min(backoff, left))
            backoff = min(backoff * 2, MAX_BACKOFF)

    def close(self) -> None:
        self.http.close()

    def _gone(self, why: str) -> None:
        if not self._away:
            self._away = True
            log.warning("the orchestrator at %s is unreachable (%s); retrying", self.url, why)

    def _back(self) -> None:
        if self._away:
            self._away = False
            log.info("the orchestrator at %s answers again", self.url)


_default: Connection | None = None
_default_lock = threading.Lock()


def default_connection() -> Connection:
    """The process's connection to the orchestrator of its run, made at the first call and shared by every queue
    made without `url=`/`token=`. NotInARun outside a robofleet run."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Connection()
        return _default


def _forget_default() -> None:
    # A forked child must not share the parent's sockets: it makes its own connection when it needs one.
    global _default, _default_lock
    _default = None
    _default_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_default)

# httpx narrates each request at INFO: a worker long-polling twice a second would fill its run's output with them.
_local = threading.local()


@contextmanager
def _sending() -> Iterator[None]:
    _local.sending = True
    try:
        yield
    finally:
        _local.sending = False


def _not_ours(_record: logging.LogRecord) -> bool:
    return not getattr(_local, "sending", False)


def _quiet_transport_lines() -> None:
    logger = logging.getLogger("httpx")
    if _not_ours not in logger.filters:
        logger.addFilter(_not_ours)
