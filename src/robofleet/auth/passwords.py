"""Password hashing with argon2id, and the rules a new password must meet."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from robofleet.errors import Invalid

_hasher = PasswordHasher()
MIN_LENGTH = 8
MAX_LENGTH = 1024
# Verifying against this keeps the time of a login for an unknown user like that of a known one.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    check_password_rules(password)
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_password_rules(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise Invalid(f"password must have at least {MIN_LENGTH} characters", details={"field": "password"})
    if len(password) > MAX_LENGTH:
        raise Invalid(f"password must have at most {MAX_LENGTH} characters", details={"field": "password"})


def is_argon2_hash(value: str) -> bool:
    return value.startswith("$argon2")


def random_password() -> str:
    return secrets.token_urlsafe(18)
