"""Text the store cannot keep: a NUL character. PostgreSQL text and JSON refuse it, and in a JSON column on SQLite it
would be kept as an escape no other tool expects; so inputs refuse it before any statement, with the field named."""

from __future__ import annotations

from typing import Any

NUL = "\x00"


def nul_at(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (a value or a key) in `value` that holds a NUL, or None."""
    if isinstance(value, str):
        return path or "value" if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and NUL in key:
                return inner.replace(NUL, "\\u0000")
            found = nul_at(item, inner)
            if found is not None:
                return found
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = nul_at(item, f"{path}[{index}]" if path else f"[{index}]")
            if found is not None:
                return found
    return None


def refuse_nul(value: Any) -> Any:
    """A pydantic `mode="before"` model validator: `value` unchanged, or a ValueError naming where a NUL is."""
    found = nul_at(value)
    if found is not None:
        raise ValueError(f"{found} must not contain the NUL character (\\u0000)")
    return value
