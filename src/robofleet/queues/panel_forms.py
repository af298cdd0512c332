"""The queues pages' forms as text and back: the items filter of a queue's page (its query string, the ItemFilter it
asks for, the links that keep it), the New queue form, the ids of the ticked items, and the durations shown."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from pydantic import ValidationError
from starlette.datastructures import FormData

from robofleet.queues.schemas import ItemFilter, QueueCreate
from robofleet.queues.states import ItemState
from robofleet.web import form_state
from robofleet.web.form_state import EnteredForm, text_of, texts_of
from robofleet.web.list_query import (
    PAGE_SIZES,
    FilterInvalid,
    every,
    one,
    page_size,
    paging_pairs,
    span_pairs,
    time_span,
)

# No state ticked: every state but deleted (deleted items only wait for retention; ticked, they show).
SHOWN_BY_DEFAULT = tuple(state for state in ItemState if state is not ItemState.DELETED)
MAX_SELECTED = 10_000  # ItemFilter.ids' own limit


@dataclass
class ItemsQuery:
    """A queue page's items filter as typed, with the paging: what the form shows and the links keep."""

    states: list[str] = field(default_factory=list)
    reference_prefix: str = ""
    within: str = ""
    since: str = ""
    until: str = ""
    limit: int = PAGE_SIZES[0]
    cursor: str = ""

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> ItemsQuery:
        """From a query's parameters (a starlette QueryParams, or a plain mapping of lists or texts)."""
        return cls(
            states=every(params, "state"),
            reference_prefix=one(params, "reference_prefix", 256),
            within=one(params, "within"),
            since=one(params, "since"),
            until=one(params, "until"),
            limit=page_size(params),
            cursor=one(params, "cursor"),
        )

    @property
    def narrowed(self) -> bool:
        """Whether anything but the default (every state but deleted, any time, any reference) is asked."""
        return bool(self.states or self.reference_prefix or self.within)

    def item_filter(self, now: datetime) -> ItemFilter:
        """The ItemFilter the query asks for (no state ticked: every state but deleted); FilterInvalid naming each
        parameter it cannot read."""
        errors: dict[str, str] = {}
        known = {state.value for state in ItemState}
        unknown = [state for state in self.states if state not in known]
        if unknown:
            errors["state"] = f"unknown state {unknown[0]!r} (one of {', '.join(sorted(known))})"
        since, until = time_span(self.within, self.since, self.until, now, errors)
        if errors:
            raise FilterInvalid(errors)
        states = [ItemState(state) for state in self.states] or list(SHOWN_BY_DEFAULT)
        return ItemFilter(state=states, reference_prefix=self.reference_prefix or None, since=since, until=until)

    def pairs(self, *, cursor: bool = False) -> list[tuple[str, str]]:
        """The query's parameters as a link keeps them (no defaults; the cursor only when asked)."""
        found: list[tuple[str, str]] = [("state", state) for state in self.states]
        if self.reference_prefix:
            found.append(("reference_prefix", self.reference_prefix))
        found += span_pairs(self.within, self.since, self.until)
        return found + paging_pairs(self.limit, self.cursor, with_cursor=cursor)

    def query(self, *, cursor: bool = False) -> str:
        return urlencode(self.pairs(cursor=cursor))

    def with_cursor(self, cursor: str) -> str:
        return urlencode([*self.pairs(), ("cursor", cursor)])


def export_query(where: ItemFilter, fmt: str) -> str:
    """The API export's query for the filter the page shows (times as sent, so the export is what was listed)."""
    pairs: list[tuple[str, str]] = [("format", fmt)]
    pairs += [("state", state.value) for state in where.state or ()]
    if where.reference_prefix:
        pairs.append(("reference_prefix", where.reference_prefix))
    pairs += [(key, value.isoformat()) for key, value in (("since", where.since), ("until", where.until)) if value]
    return urlencode(pairs)


def selected_ids(form: FormData) -> list[int]:
    """The ticked items' ids; ValueError when none is ticked, one is not an id or there are too many."""
    ids: list[int] = []
    for text in texts_of(form, "id"):
        try:
            ids.append(int(text))
        except ValueError:
            raise ValueError(f"{text[:40]!r} is not an item id") from None
    if not ids:
        raise ValueError("Tick the items first.")
    if len(ids) > MAX_SELECTED:
        raise ValueError(f"At most {MAX_SELECTED:,} items at once.")
    return sorted(set(ids))


def duration(seconds: float | None) -> str:
    """A span as a person reads it: "120 ms", "4.2 s", "3 min 5 s", "2 h 5 min", "3 d 4 h"; "—" for none."""
    if seconds is None:
        return "—"
    whole = round(seconds)
    if 0 < seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10 and not float(seconds).is_integer():
        return f"{seconds:.1f} s"
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs and minutes < 10 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


# ---- the New queue form -----------------------------------------------------------------------------------------

LABELS = {
    "name": "Name",
    "description": "Description",
    "sla_minutes": "SLA (minutes from add to done)",
    "max_retries": "Max retries",
    "retry_backoff_seconds": "First retry after (seconds)",
    "lease_seconds": "Lease (seconds)",
    "retention_days": "Keep finished items (days)",
    "unique_references": "Unique references",
    "tags": "Tags",
}
NUMBERS = ("sla_minutes", "max_retries", "retry_backoff_seconds", "lease_seconds", "retention_days")


class QueueForm(EnteredForm[str]):
    labels = LABELS


class QueueFormInvalid(form_state.FormInvalid):
    labels = LABELS


def blank_queue_form() -> QueueForm:
    defaults = QueueCreate(name="x")
    values = {key: "" for key in LABELS}
    values.update(
        max_retries=str(defaults.max_retries),
        retry_backoff_seconds=form_state.number_text(defaults.retry_backoff_seconds),
        lease_seconds=form_state.number_text(defaults.lease_seconds),
        retention_days=str(defaults.retention_days),
    )
    return QueueForm(values)


def queue_values(form: FormData) -> dict[str, str]:
    """The New queue form's fields as posted (the checkbox as "on" or "")."""
    return {key: text_of(form, key).strip() for key in LABELS}


def parse_queue_create(values: dict[str, str]) -> QueueCreate:
    """The queue the form describes; QueueFormInvalid naming each field it cannot take."""
    data: dict[str, Any] = {"name": values["name"], "description": values["description"]}
    errors: dict[str, str] = {}
    for key in NUMBERS:
        text = values[key]
        if not text:
            continue
        try:
            number = float(text)
        except ValueError:
            errors[key] = f"{text[:40]!r} is not a number"
            continue
        data[key] = number if key in ("retry_backoff_seconds", "lease_seconds") else _whole(number, key, errors)
    data["unique_references"] = values["unique_references"] in ("on", "true", "1")
    data["tags"] = [tag.strip() for tag in values["tags"].replace(",", " ").split() if tag.strip()]
    if errors:
        raise QueueFormInvalid(errors)
    try:
        return QueueCreate.model_validate(data)
    except ValidationError as exc:
        found: dict[str, str] = {}
        for error in exc.errors():
            key = str(error["loc"][0]) if error["loc"] else "name"
            found.setdefault(key if key in LABELS else "name", str(error["msg"]))
        raise QueueFormInvalid(found) from None


def _whole(number: float, key: str, errors: dict[str, str]) -> int:
    if not number.is_integer():
        errors[key] = "must be a whole number"
    return int(number)
