"""The effective settings over HTTP and in the panel, secrets masked."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from robofleet.auth.principal import Principal
from robofleet.orchestrator import Orchestrator
from robofleet.settings.render import as_toml, masked_tree
from robofleet.web.context import get_context
from robofleet.web.security import Require
from robofleet.web.templating import page

router = APIRouter()


@router.get("/api/v1/settings", tags=["settings"])
def read_settings(
    _: Principal = Depends(Require("settings:read")), ctx: Orchestrator = Depends(get_context)
) -> dict[str, Any]:
    return masked_tree(ctx.settings)


@router.get("/panel/settings", include_in_schema=False)
def settings_page(
    request: Request,
    principal: Principal = Depends(Require("settings:read", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    origin = ctx.settings._origin
    return page(
        request,
        "settings.html",
        principal,
        section="settings",
        toml=as_toml(ctx.settings),
        read_from=origin.describe() if origin else "settings built in code: defaults",
        show_command=origin.show_command() if origin else None,
    )
