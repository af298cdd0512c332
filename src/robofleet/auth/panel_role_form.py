"""The role form of the panel: permissions ticked in a picker grouped by domain (`robots:*` for a whole domain, `*`
for everything), the robot scope as globs and tags; refused, it comes back with every field as entered and each
mistake at its field."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from robofleet.auth.permissions import PERMISSIONS
from robofleet.auth.schemas import RoleCreate, RoleOut, RoleUpdate
from robofleet.errors import RobofleetError
from robofleet.web.errors import describe_validation
from robofleet.web.form_state import EnteredForm, text_of, texts_of

LABELS: dict[str, str] = {
    "name": "Name",
    "description": "Description",
    "permissions": "Permissions",
    "robot_globs": "Only robots named",
    "robot_tags": "Only robots tagged",
}
# Pydantic's wording where it would puzzle an operator.
CLEARER = {
    ("name", "string_pattern_mismatch"): "use 1 to 64 lower-case letters, digits, '_', '.' or '-' (no spaces)",
    ("name", "string_too_short"): "give the role a name",
}


@dataclass(frozen=True)
class PermissionGroup:
    """The permissions of one domain (`robots`), each (name, what it allows), and the wildcard of them all."""

    domain: str
    permissions: tuple[tuple[str, str], ...]

    @property
    def wildcard(self) -> str:
        return f"{self.domain}:*"


def permission_groups() -> list[PermissionGroup]:
    """Every permission, grouped by its domain, in the order permissions.PERMISSIONS lists them."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, description in PERMISSIONS.items():
        groups.setdefault(name.split(":")[0], []).append((name, description))
    return [PermissionGroup(domain, tuple(items)) for domain, items in groups.items()]


class RoleForm(EnteredForm[Any]):
    """What the form shows: name, description, globs and tags as text, permissions as the list of ticked names."""

    labels = LABELS


def blank() -> RoleForm:
    return RoleForm({"name": "", "description": "", "permissions": [], "robot_globs": "", "robot_tags": ""})


def of_role(role: RoleOut) -> RoleForm:
    return RoleForm(
        {
            "name": role.name,
            "description": role.description,
            "permissions": list(role.permissions),
            "robot_globs": " ".join(role.robot_globs),
            "robot_tags": " ".join(role.robot_tags),
        }
    )


def entered(form: FormData, name: str | None = None) -> RoleForm:
    """The posted form as entered; `name` for an edit, whose name is not a field."""
    return RoleForm(
        {
            "name": name if name is not None else text_of(form, "name").strip(),
            "description": text_of(form, "description"),
            "permissions": list(dict.fromkeys(item.strip() for item in texts_of(form, "permissions") if item.strip())),
            "robot_globs": text_of(form, "robot_globs"),
            "robot_tags": text_of(form, "robot_tags"),
        }
    )


def words(value: str) -> list[str]:
    """A box of names split on commas and whitespace."""
    return [part for part in value.replace(",", " ").split() if part]


def to_create(form: RoleForm) -> RoleCreate:
    """RoleCreate of the form; ValidationError as pydantic finds the mistakes."""
    v = form.values
    return RoleCreate(
        name=v["name"],
        description=v["description"],
        permissions=v["permissions"],
        robot_globs=words(v["robot_globs"]),
        robot_tags=words(v["robot_tags"]),
    )


def to_update(form: RoleForm) -> RoleUpdate:
    v = form.values
    return RoleUpdate(
        description=v["description"],
        permissions=v["permissions"],
        robot_globs=words(v["robot_globs"]),
        robot_tags=words(v["robot_tags"]),
    )


def refused(form: RoleForm, exc: ValidationError | RobofleetError) -> RoleForm:
    """The form with the refusal at its fields: pydantic's mistakes by their field, an unknown permission with the
    names meant (the closest known ones), a role of that name already there at the name; anything else above it."""
    if isinstance(exc, ValidationError):
        for error in exc.errors():
            key = str(error["loc"][0]) if error["loc"] else ""
            text = CLEARER.get((key, error["type"]), error["msg"])
            if key in LABELS:
                form.errors.setdefault(key, text)
            else:
                form.message = describe_validation([error])[0]
        return form
    details = exc.details if isinstance(exc.details, dict) else {}
    if details.get("field") == "permissions":
        form.errors["permissions"] = with_suggestions(exc.message, details.get("unknown") or [])
    elif details.get("field") in LABELS:
        form.errors[str(details["field"])] = exc.message
    elif "role" in details and exc.status == 409:
        form.errors["name"] = exc.message
    else:
        form.message = exc.message
    return form


def with_suggestions(message: str, unknown: list[str]) -> str:
    """`message`, and for each unknown permission the known name closest to it, if one is close."""
    known = [*PERMISSIONS, "*", *(f"{group.domain}:*" for group in permission_groups())]
    meant = [f"{name} → {close[0]}" for name in unknown if (close := difflib.get_close_matches(name, known, n=1))]
    return f"{message} (did you mean {', '.join(meant)}?)" if meant else message
