"""What the SDK raises to a robot, and the one exception a robot raises to the SDK (`BusinessError`)."""

from __future__ import annotations

from typing import Any

import httpx


class BusinessError(Exception):
    """Raise it while working on a queue item when the item itself is wrong (an unknown customer, a closed
    account): the item ends `failed` for good, never retried. Any other exception is an application failure,
    retried while the queue's max_retries allow."""


class SdkError(Exception):
    """The base of what the SDK raises."""


class NotInARun(SdkError):
    """The orchestrator's address or the run's token is not in the environment: the robot was started outside
    robofleet (pass `url=` and `token=` to talk to an orchestrator anyway)."""


class OrchestratorUnreachable(SdkError):
    """The orchestrator did not answer for longer than the SDK retries (or a request broke off after it may have
    been acted on, and sending it again could do it twice)."""


class Refused(SdkError):
    """The orchestrator answered with an error: `status` (HTTP), `code` (`not_found`, `lease_lost`, …), `message`
    and `details` as its error body gives them."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    @classmethod
    def of(cls, response: httpx.Response) -> Refused:
        """The refusal an error response carries (its text when the body is not robofleet's error shape)."""
        try:
            error = response.json()["error"]
            return cls(response.status_code, str(error["code"]), str(error["message"]), error.get("details"))
        except (ValueError, KeyError, TypeError):
            return cls(response.status_code, "http_error", response.text[:500])


class ItemRefused(SdkError):
    """`Queue.add` of one item that the queue refused (`reason`: duplicate_reference)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
