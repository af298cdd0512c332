"""Source globs: "*" any run of characters, "?" one character, everything else itself, case included; the same
rule on both stores and in the live tail."""

from __future__ import annotations

import functools
import re


def is_glob(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


@functools.lru_cache(maxsize=256)
def glob_pattern(pattern: str) -> re.Pattern[str]:
    parts = (".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def glob_to_like(pattern: str) -> str:
    """For PostgreSQL's LIKE (case-sensitive)."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def glob_to_sqlite(pattern: str) -> str:
    """For SQLite's GLOB (case-sensitive, unlike its LIKE), where "[" opens a set of characters."""
    return pattern.replace("[", "[[]")
