"""A panel form as the page shows it again after a refusal: the values entered, each field's mistake, a message
above the form; the refusal a form's parser raises; and the text of a posted form's fields.

A domain's form subclasses `EnteredForm` and `FormInvalid`, setting `labels`: its field keys and their titles, in
the order of the form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Generic, TypeVar

from starlette.datastructures import FormData

V = TypeVar("V")


@dataclass
class EnteredForm(Generic[V]):
    """What the form shows: the value of each field (`V`: its text, or what a domain keeps for a field) and the
    mistakes found in them."""

    labels: ClassVar[Mapping[str, str]]

    values: dict[str, V]
    errors: dict[str, str] = field(default_factory=dict)
    message: str | None = None

    @property
    def open(self) -> bool:
        """Whether the page shows the form unfolded: it holds a mistake or a message."""
        return bool(self.errors or self.message)

    def problems(self) -> list[tuple[str, str, str]]:
        """(field key, label, message) in the order of the form."""
        return [(key, self.labels.get(key, key), self.errors[key]) for key in self.labels if key in self.errors]


class FormInvalid(Exception):
    """The mistakes a form's parser found, as {field key: message}; its text names each field by its label."""

    labels: ClassVar[Mapping[str, str]]

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{self.labels.get(key, key)}: {text}" for key, text in errors.items()))
        self.errors = errors


def text_of(form: FormData, key: str) -> str:
    """The text posted as `key`; empty when the field was not sent (or is a file)."""
    value = form.get(key)
    return value if isinstance(value, str) else ""


def texts_of(form: FormData, key: str) -> list[str]:
    """Every text posted as `key`: the ticked boxes or selected options of a multi-valued field."""
    return [item for item in form.getlist(key) if isinstance(item, str)]


def number_text(value: float | None) -> str:
    """A stored number as a form shows it: 5 rather than 5.0, empty for none."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(value)
