"""What the settings file declares (`[[robots]]`, `[[schedules]]`, `[[queues]]`, `[[sessions]]`…) read into a
domain's create schema, a bad entry named by its section, name and field."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from robofleet.errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)


def read_declared(model: type[Model], item: BaseModel, section: str) -> Model:
    """`item` (an entry of the settings) as `model`; ConfigError "section.name.field: message" when it does not fit."""
    try:
        return model(**item.model_dump())
    except ValidationError as exc:
        first: Any = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "?"
        raise ConfigError(f"{section}.{getattr(item, 'name', '?')}.{where}: {first['msg']}") from None
