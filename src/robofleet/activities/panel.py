"""The debug console of the panel: find an action, fill its form (or raw JSON), run it, watch it live."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from robofleet.activities.console import run_python
from robofleet.activities.registry import Registry
from robofleet.activities.schemas import ActivityIn
from robofleet.auth.principal import Principal
from robofleet.errors import Invalid, RobofleetError
from robofleet.orchestrator import Orchestrator
from robofleet.web.context import get_context
from robofleet.web.deps import processor_of
from robofleet.web.security import Require
from robofleet.web.templating import page, templates

router = APIRouter(include_in_schema=False)


def fields_of(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Form fields from a JSON schema: the kind of input each property gets, and what it says about itself."""
    required = set(schema.get("required", []))
    fields = []
    for name, spec in schema.get("properties", {}).items():
        kinds = {option.get("type") for option in spec.get("anyOf", [spec])} - {"null"}
        kind = kinds.pop() if len(kinds) == 1 else "json"
        if spec.get("format") == "password" or spec.get("writeOnly"):
            kind = "password"
        elif kind not in ("string", "integer", "number", "boolean"):
            kind = "json"
        default = spec.get("default")
        fields.append(
            {
                "name": name,
                "kind": kind,
                "required": name in required,
                "description": spec.get("description", ""),
                "default": "" if default is None else (json.dumps(default) if kind == "json" else default),
            }
        )
    return fields


def args_from_form(fields: list[dict[str, Any]], form: Any) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for field in fields:
        name, kind = field["name"], field["kind"]
        if kind == "boolean":
            args[name] = form.get(name) == "on"
            continue
        raw = str(form.get(name, "")).strip() if kind != "password" else str(form.get(name, ""))
        if raw == "":
            continue
        if kind == "integer":
            try:
                args[name] = int(raw)
            except ValueError:
                raise Invalid(f"{name}: not a whole number", details={"field": name}) from None
        elif kind == "number":
            try:
                args[name] = float(raw)
            except ValueError:
                raise Invalid(f"{name}: not a number", details={"field": name}) from None
        elif kind == "json":
            try:
                args[name] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise Invalid(f"{name}: not valid JSON ({exc.msg})", details={"field": name}) from None
        else:
            args[name] = raw
    return args


@router.get("/panel/console")
def console_page(
    request: Request,
    tab: str = "actions",
    principal: Principal = Depends(Require("activities:read", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    registry: Registry = request.app.state.registry
    python = ctx.settings.console.python_enabled and principal.can("console:execute")
    return page(
        request,
        "console.html",
        principal,
        section="console",
        actions=registry.search(),
        tab="python" if tab == "python" and python else "actions",
        python_available=python,
    )


@router.get("/panel/console/form/{name}")
def action_form(
    name: str, request: Request, principal: Principal = Depends(Require("activities:read", panel=True))
) -> Response:
    registry: Registry = request.app.state.registry
    action = registry.get(name)
    return templates.TemplateResponse(
        request,
        "console_form.html",
        {
            "principal": principal,
            "action": action,
            "fields": fields_of(action.params.model_json_schema()),
            "allowed": principal.can(action.permission) and principal.can("activities:run"),
        },
    )


@router.post("/panel/console/run")
async def run_action(
    request: Request,
    principal: Principal = Depends(Require("activities:run", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    form = await request.form()
    registry: Registry = request.app.state.registry
    try:
        action = registry.get(str(form.get("action", "")))
        if form.get("raw") == "on":
            try:
                args = json.loads(str(form.get("raw_args") or "{}"))
            except json.JSONDecodeError as exc:
                raise Invalid(f"the raw arguments are not valid JSON ({exc.msg})") from None
            if not isinstance(args, dict):
                raise Invalid("the raw arguments must be a JSON object")
        else:
            args = args_from_form(fields_of(action.params.model_json_schema()), form)
        mode = "async" if form.get("mode") == "async" else "sync"
        submitted = await processor_of(ctx).submit(
            principal, [ActivityIn(action=action.name, args=args, mode=mode)], batch=False
        )
    except RobofleetError as exc:
        return templates.TemplateResponse(
            request, "console_result.html", {"activity": None, "error": exc.message}, status_code=exc.status
        )
    return templates.TemplateResponse(
        request, "console_result.html", {"activity": submitted[0].model_dump(mode="json"), "error": None}
    )


class PythonInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=100_000)


@router.post("/api/v1/console/python", tags=["console"], include_in_schema=True)
def python_api(
    data: PythonInput,
    principal: Principal = Depends(Require("console:execute")),
    ctx: Orchestrator = Depends(get_context),
) -> dict[str, Any]:
    """Evaluate Python inside the orchestrator (only when `console.python_enabled`); audited in full."""
    return run_python(ctx, principal, data.code)


@router.post("/panel/console/python")
async def python_panel(
    request: Request,
    principal: Principal = Depends(Require("console:execute", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    form = await request.form()
    code = str(form.get("code", ""))[:100_000]
    try:
        outcome = await run_in_threadpool(run_python, ctx, principal, code)
    except RobofleetError as exc:
        outcome = {"output": "", "result": None, "error": exc.message}
    return templates.TemplateResponse(request, "console_python_result.html", {"code": code, **outcome})
