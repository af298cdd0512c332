"""The error types services raise; `robofleet.web.errors` turns each into the documented HTTP shape."""

from __future__ import annotations

from typing import Any


class RobofleetError(Exception):
    """Base of every error a caller is meant to see. `code` is stable; `message` is for people."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code


class Invalid(RobofleetError):
    status = 422
    code = "invalid"


class Unauthenticated(RobofleetError):
    status = 401
    code = "unauthenticated"


class Forbidden(RobofleetError):
    status = 403
    code = "forbidden"


class NotFound(RobofleetError):
    status = 404
    code = "not_found"


class Conflict(RobofleetError):
    status = 409
    code = "conflict"


class TooLarge(RobofleetError):
    status = 413
    code = "payload_too_large"


class Locked(RobofleetError):
    """An account locked after repeated failed logins; `retry_after` is in seconds."""

    status = 429
    code = "account_locked"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after


class StoreUnavailable(RobofleetError):
    status = 503
    code = "store_unavailable"


class ConfigError(Exception):
    """A settings file or variable that cannot be used; the message names the key and where it came from."""
