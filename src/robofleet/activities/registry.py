"""The action registry: dotted names bound to typed functions and the permission each needs."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from robofleet.auth.permissions import PERMISSIONS
from robofleet.auth.principal import Principal
from robofleet.errors import ConfigError, Forbidden, Invalid

if TYPE_CHECKING:
    from robofleet.orchestrator import Orchestrator

P = TypeVar("P", bound=BaseModel)
ActionFunc = Callable[["ActionContext", Any], Any | Awaitable[Any]]
MASK = "********"


class Params(BaseModel):
    """Base of action parameters: unknown fields are errors, so a typo never silently does nothing."""

    model_config = ConfigDict(extra="forbid")


class NoParams(Params):
    pass


@dataclass(frozen=True)
class ActionContext:
    """What an action receives besides its parameters: who asked, and the running orchestrator."""

    principal: Principal
    app: Orchestrator
    activity_id: int | None = None


@dataclass(frozen=True)
class Action:
    name: str
    func: ActionFunc
    params: type[BaseModel]
    permission: str
    doc: str

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""

    @property
    def has_secrets(self) -> bool:
        return any(_is_secret(field.annotation) for field in self.params.model_fields.values())

    def parse(self, args: dict[str, Any]) -> BaseModel:
        """Validated parameters; Invalid names the action and the bad field."""
        try:
            return self.params.model_validate(args)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "args"
            message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
            details = [
                {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
                for e in exc.errors()
            ]
            raise Invalid(
                f"{self.name}: {field}: {message}", details={"action": self.name, "errors": details}
            ) from None

    def storable_args(self, params: BaseModel) -> dict[str, Any]:
        """The arguments as stored and shown: secrets masked."""
        stored: dict[str, Any] = params.model_dump(mode="json")
        for name, field in self.params.model_fields.items():
            if _is_secret(field.annotation) and stored.get(name) is not None:
                stored[name] = MASK
        return stored


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


class Registry:
    """Actions by name. Domains add theirs with `register`; deployments through `activities.modules`."""

    def __init__(self) -> None:
        self._actions: dict[str, Action] = {}

    def register(
        self, name: str, *, permission: str, params: type[BaseModel] = NoParams
    ) -> Callable[[ActionFunc], ActionFunc]:
        if permission not in PERMISSIONS:
            raise ValueError(f"action {name}: unknown permission {permission!r}")

        def decorate(func: ActionFunc) -> ActionFunc:
            if name in self._actions:
                raise ValueError(f"action {name} is registered twice")
            self._actions[name] = Action(name, func, params, permission, inspect.getdoc(func) or "")
            return func

        return decorate

    def get(self, name: str) -> Action:
        action = self._actions.get(name)
        if action is None:
            raise Invalid(f"no action named {name!r}", details={"action": name}, code="unknown_action")
        return action

    def authorize(self, principal: Principal, name: str) -> Action:
        action = self.get(name)
        if not principal.can(action.permission):
            raise Forbidden(
                f"{principal.username} lacks the permission {action.permission!r} that {name} needs",
                details={"permission": action.permission, "action": name},
            )
        return action

    def search(self, fragment: str = "") -> list[Action]:
        fragment = fragment.lower().strip()
        return [
            action
            for name, action in sorted(self._actions.items())
            if not fragment or fragment in name.lower() or fragment in action.summary.lower()
        ]

    def __contains__(self, name: str) -> bool:
        return name in self._actions

    def __len__(self) -> int:
        return len(self._actions)


def load_modules(registry: Registry, modules: Iterable[str]) -> None:
    """Import each deployment module and call its `register(registry)`; any failure stops the start."""
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise ConfigError(
                f"activities.modules: cannot import {module_name!r}: {type(exc).__name__}: {exc}"
            ) from exc
        register = getattr(module, "register", None)
        if not callable(register):
            raise ConfigError(f"activities.modules: {module_name!r} has no register(registry) function")
        try:
            register(registry)
        except Exception as exc:
            raise ConfigError(
                f"activities.modules: {module_name}.register failed: {type(exc).__name__}: {exc}"
            ) from exc
