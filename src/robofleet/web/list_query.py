"""What the panel's filtered lists (a queue's items, the runs) share in their query strings: the page sizes, the
"added/created within" time span and its typed times, reading the parameters, and the link's paging parameters."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

PAGE_SIZES = (50, 100, 500)
# A span back from now (kept relative in a link: the page shows the last hour whenever it is opened), or "between"
# the typed times.
WITHIN: dict[str, tuple[str, timedelta | None]] = {
    "": ("any time", None),
    "15m": ("in the last 15 minutes", timedelta(minutes=15)),
    "1h": ("in the last hour", timedelta(hours=1)),
    "24h": ("in the last 24 hours", timedelta(hours=24)),
    "7d": ("in the last 7 days", timedelta(days=7)),
    "between": ("between…", None),
}


class FilterInvalid(ValueError):
    """A filter the query cannot mean: {parameter: message}."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{key}: {text}" for key, text in errors.items()))
        self.errors = errors


def parse_moment(text: str) -> datetime:
    """A typed time: ISO 8601 with or without an offset ("2026-12-06T08:00", "2026-12-06 08:00:30+01:00") or a
    date; without an offset it is UTC, as the panel shows times. ValueError when it is none of those."""
    cleaned = text.strip().replace(" ", "T", 1)
    if cleaned.endswith(("z", "Z")):
        cleaned = cleaned[:-1] + "+00:00"
    moment = datetime.fromisoformat(cleaned)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def every(params: Mapping[str, Any], key: str) -> list[str]:
    """The parameter's values, stripped, empty ones left out (a starlette QueryParams, or a plain mapping of lists
    or texts)."""
    getlist = getattr(params, "getlist", None)
    if getlist is not None:
        values = [str(value) for value in getlist(key)]
    else:
        value = params.get(key)
        values = [] if value is None else [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
    return [value.strip() for value in values if value.strip()]


def one(params: Mapping[str, Any], key: str, size: int = 200) -> str:
    """The parameter's first value, cut to `size` characters ("" when absent)."""
    found = every(params, key)
    return found[0][:size] if found else ""


def page_size(params: Mapping[str, Any]) -> int:
    """The asked page size when it is one of PAGE_SIZES, else the first."""
    try:
        limit = int(one(params, "limit") or PAGE_SIZES[0])
    except ValueError:
        return PAGE_SIZES[0]
    return limit if limit in PAGE_SIZES else PAGE_SIZES[0]


def time_span(
    within: str, since: str, until: str, now: datetime, errors: dict[str, str]
) -> tuple[datetime | None, datetime | None]:
    """(since, until) that `within` (and, for "between", the typed times) means at `now`; what it cannot read is
    added to `errors` by parameter."""
    if within not in WITHIN:
        errors["within"] = f"unknown time span {within!r}"
        return None, None
    span = WITHIN[within][1]
    if span is not None:
        return now - span, None
    if within != "between":
        return None, None
    start, end = _moment("since", since, errors), _moment("until", until, errors)
    if start is not None and end is not None and end <= start:
        errors["until"] = "must be later than Since"
    return start, end


def _moment(key: str, text: str, errors: dict[str, str]) -> datetime | None:
    if not text:
        return None
    try:
        return parse_moment(text)
    except ValueError:
        errors[key] = f"{text!r} is not a time: type 2026-12-06 08:00 (UTC) or an ISO time with its offset"
        return None


def span_pairs(within: str, since: str, until: str) -> list[tuple[str, str]]:
    """The time span's parameters as a link keeps them."""
    if not within:
        return []
    found = [("within", within)]
    if within == "between":
        found += [(key, value) for key, value in (("since", since), ("until", until)) if value]
    return found


def paging_pairs(limit: int, cursor: str, *, with_cursor: bool) -> list[tuple[str, str]]:
    """The page size (when not the default) and the cursor (only when asked) as a link keeps them."""
    found = [("limit", str(limit))] if limit != PAGE_SIZES[0] else []
    if with_cursor and cursor:
        found.append(("cursor", cursor))
    return found
