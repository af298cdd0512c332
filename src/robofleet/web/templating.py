"""Jinja2 for the panel: one environment over every domain's `templates/`, and the page helpers."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape

from robofleet import __version__
from robofleet.auth.principal import Principal
from robofleet.domain import NavEntry
from robofleet.domains import navigation, template_packages

FLASH_COOKIE = "robofleet_flash"

# Pages of domains still to come: each stands in the navigation (a "later" page) until its domain brings it.
PLANNED: tuple[NavEntry, ...] = ()
NAVIGATION = navigation(PLANNED)


def navigation_for(principal: Principal | None) -> list[NavEntry]:
    """The entries `principal` may open: a link the user would only meet a 403 behind is not shown."""
    if principal is None:
        return []
    return [entry for entry in NAVIGATION if entry.permission is None or principal.can(entry.permission)]


_environment = Environment(
    loader=ChoiceLoader([PackageLoader(package) for package in ("robofleet.web", *template_packages())]),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.globals.update(navigation_for=navigation_for, version=__version__)
_environment.filters["time"] = lambda value: value.strftime("%Y-%m-%d %H:%M:%S") if value else "—"
_environment.filters["tojson_pretty"] = lambda value: json.dumps(value, indent=2, sort_keys=True)
templates = Jinja2Templates(env=_environment)


def page(
    request: Request, template: str, principal: Principal | None, status: int = 200, **context: Any
) -> HTMLResponse:
    flash = request.cookies.get(FLASH_COOKIE)
    response = templates.TemplateResponse(
        request, template, {"principal": principal, "flash": _read_flash(flash), **context}, status_code=status
    )
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/panel")
    return response


def redirect(url: str, *, notice: str | None = None, error: str | None = None) -> Response:
    """A 303 to `url`, carrying a one-time message shown on the next page."""
    response = RedirectResponse(url, status_code=303)
    if notice or error:
        value = quote(json.dumps({"kind": "error" if error else "notice", "text": error or notice}))
        response.set_cookie(FLASH_COOKIE, value, max_age=60, httponly=True, samesite="strict", path="/panel")
    return response


def _read_flash(raw: str | None) -> dict[str, str] | None:
    if not raw:
        return None
    try:
        value = json.loads(unquote(raw))
    except ValueError:
        return None
    if isinstance(value, dict) and value.get("kind") in ("notice", "error") and isinstance(value.get("text"), str):
        return {"kind": value["kind"], "text": value["text"][:500]}
    return None


def render_error(request: Request, status: int, code: str, message: str) -> Response:
    """The error page, with the navigation of the caller when a guard (`Require`) already knew who it is."""
    principal = getattr(request.state, "principal", None)
    return templates.TemplateResponse(
        request,
        "error.html",
        {
            "principal": principal if isinstance(principal, Principal) else None,
            "status": status,
            "code": code,
            "message": message,
            "flash": None,
        },
        status_code=status,
    )
