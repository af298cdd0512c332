"""Access pages of the panel: users, roles, tokens and the audit log. Forms call the same services as the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from robofleet.auth import panel_role_form, roles, tokens, users
from robofleet.auth.api import read_audit
from robofleet.auth.panel_role_form import RoleForm
from robofleet.auth.permissions import PERMISSIONS
from robofleet.auth.principal import Principal
from robofleet.auth.schemas import TokenCreate, UserCreate, UserUpdate
from robofleet.errors import RobofleetError
from robofleet.orchestrator import Orchestrator
from robofleet.web.context import get_context
from robofleet.web.errors import describe_validation
from robofleet.web.forms import form_of, submit
from robofleet.web.security import Require
from robofleet.web.templating import page, redirect

router = APIRouter(prefix="/panel/access", include_in_schema=False)
USERS, ROLES, TOKENS, AUDIT = (
    "/panel/access/users",
    "/panel/access/roles",
    "/panel/access/tokens",
    "/panel/access/audit",
)


def words(value: Any) -> list[str]:
    """Splits a free-text box of names on commas and whitespace."""
    return [part for part in str(value or "").replace(",", " ").split() if part]


@router.get("/users")
def users_page(
    request: Request,
    cursor: str | None = None,
    internal: bool = False,
    principal: Principal = Depends(Require("users:read", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    """The people; the users robofleet made for itself (robot-runs) with `internal`."""
    listed = users.list_users(ctx.store, principal, limit=100, cursor=cursor, internal=internal)
    role_names = (
        [role.name for role in roles.list_roles(ctx.store, principal, limit=500).items]
        if principal.can("roles:read")
        else []
    )
    return page(
        request,
        "access_users.html",
        principal,
        section="access",
        tab="users",
        users=listed.items,
        next_cursor=listed.next_cursor,
        role_names=role_names,
        internal=internal,
    )


@router.post("/users")
async def users_create(
    request: Request,
    principal: Principal = Depends(Require("users:write", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    form = await form_of(request)

    def create() -> None:
        data = UserCreate(
            username=str(form.get("username", "")),
            password=str(form.get("password", "")),
            roles=[str(role) for role in form.getlist("roles")],
        )
        users.create_user(ctx.store, principal, data)

    return await submit(USERS, create, f"User {form.get('username')} created.")


@router.post("/users/{username}")
async def users_update(
    username: str,
    request: Request,
    principal: Principal = Depends(Require("users:write", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    form = await form_of(request)

    def update() -> None:
        if form.get("password"):
            data = UserUpdate(password=str(form.get("password")))
        else:
            data = UserUpdate(
                roles=[str(role) for role in form.getlist("roles")], disabled=form.get("disabled") == "on"
            )
        users.update_user(ctx.store, principal, username, data)

    return await submit(USERS, update, f"User {username} saved.")


@router.post("/users/{username}/delete")
async def users_delete(
    username: str,
    principal: Principal = Depends(Require("users:write", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    return await submit(USERS, lambda: users.delete_user(ctx.store, principal, username), f"User {username} deleted.")


@router.get("/roles")
def roles_page(
    request: Request,
    principal: Principal = Depends(Require("roles:read", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    return _roles_page(request, principal, ctx)


def _roles_page(
    request: Request,
    principal: Principal,
    ctx: Orchestrator,
    *,
    form: RoleForm | None = None,
    editing: dict[str, RoleForm] | None = None,
    status: int = 200,
) -> Response:
    """The roles, the New role form (as entered, when it was refused) and each role's Edit form (`editing`: the
    ones refused, as entered)."""
    listed = roles.list_roles(ctx.store, principal, limit=500)
    return page(
        request,
        "access_roles.html",
        principal,
        status=status,
        section="access",
        tab="roles",
        roles=listed.items,
        permissions=PERMISSIONS,
        groups=panel_role_form.permission_groups(),
        form=form or panel_role_form.blank(),
        editing=editing or {},
        edit_form=panel_role_form.of_role,
    )


@router.post("/roles")
async def roles_create(
    request: Request,
    principal: Principal = Depends(Require("roles:write", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    form = panel_role_form.entered(await form_of(request))

    def create() -> Response:
        try:
            roles.create_role(ctx.store, principal, panel_role_form.to_create(form))
        except ValidationError as exc:
            return _roles_page(request, principal, ctx, form=panel_role_form.refused(form, exc), status=422)
        except RobofleetError as exc:
            return _roles_page(request, principal, ctx, form=panel_role_form.refused(form, exc), status=exc.status)
        return redirect(ROLES, notice=f"Role {form.values['name']} created.")

    return await run_in_threadpool(create)


@router.post("/roles/{name}")
async def roles_update(
    name: str,
    request: Request,
    principal: Principal = Depends(Require("roles:write", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    form = panel_role_form.entered(await form_of(request), name)

    def update() -> Response:
        try:
            roles.update_role(ctx.store, principal, name, panel_role_form.to_update(form))
        except ValidationError as exc:
            editing = {name: panel_role_form.refused(form, exc)}
            return _roles_page(request, principal, ctx, editing=editing, status=422)
        except RobofleetError as exc:
            if exc.status == 404:
                return redirect(ROLES, error=exc.message)
            editing = {name: panel_role_form.refused(form, exc)}
            return _roles_page(request, principal, ctx, editing=editing, status=exc.status)
        return redirect(ROLES, notice=f"Role {name} saved.")

    return await run_in_threadpool(update)


@router.post("/roles/{name}/delete")
async def roles_delete(
    name: str,
    principal: Principal = Depends(Require("roles:write", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    return await submit(ROLES, lambda: roles.delete_role(ctx.store, principal, name), f"Role {name} deleted.")


@router.get("/tokens")
def tokens_page(
    request: Request,
    cursor: str | None = None,
    internal: bool = False,
    principal: Principal = Depends(Require(None, panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    """The tokens people made; the ones of robot runs too with `internal`."""
    return _tokens_page(request, principal, ctx, cursor=cursor, internal=internal)


def _tokens_page(
    request: Request,
    principal: Principal,
    ctx: Orchestrator,
    *,
    cursor: str | None = None,
    created: Any = None,
    status: int = 200,
    internal: bool = False,
) -> Response:
    listed = tokens.list_tokens(ctx.store, principal, limit=100, cursor=cursor, internal=internal)
    usernames = (  # robot-runs cannot be given a token by hand: not offered
        [user.username for user in users.list_users(ctx.store, principal, limit=500, internal=False).items]
        if principal.can("tokens:write") and principal.can("users:read")
        else []
    )
    response = page(
        request,
        "access_tokens.html",
        principal,
        status=status,
        section="access",
        tab="tokens",
        tokens=listed.items,
        next_cursor=listed.next_cursor,
        created=created,
        usernames=usernames,
        permissions=PERMISSIONS,
        internal=internal,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/tokens")
async def tokens_create(
    request: Request,
    principal: Principal = Depends(Require(None, panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    form = await form_of(request)
    try:
        days = str(form.get("expires_in_days") or "").strip()
        data = TokenCreate(
            user=str(form.get("user") or "") or None,
            name=str(form.get("name", "")),
            scopes=words(form.get("scopes")),
            expires_in_days=float(days) if days else None,
            agent=str(form.get("agent") or "").strip() or None,
        )
        created = await run_in_threadpool(tokens.create_token, ctx.store, principal, data)
    except ValueError as exc:
        message = describe_validation(list(exc.errors()))[0] if isinstance(exc, ValidationError) else str(exc)
        return redirect(TOKENS, error=message)
    except RobofleetError as exc:
        return redirect(TOKENS, error=exc.message)
    # Rendered, not redirected: the secret exists only in this response.
    return await run_in_threadpool(_tokens_page, request, principal, ctx, created=created, status=201)


@router.post("/tokens/{token_id}/revoke")
async def tokens_revoke(
    token_id: str, principal: Principal = Depends(Require(None, panel=True)), ctx: Orchestrator = Depends(get_context)
) -> Response:
    return await submit(
        TOKENS, lambda: tokens.revoke_token(ctx.store, principal, token_id), f"Token {token_id} revoked."
    )


@router.get("/audit")
def audit_page(
    request: Request,
    actor: str = "",
    action: str = "",
    target: str = "",
    outcome: str = "",
    since: datetime | None = None,
    cursor: str | None = None,
    internal: bool = False,
    principal: Principal = Depends(Require("audit:read", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    filters = {
        "actor": actor[:128] or None,
        "action": action[:128] or None,
        "target": target[:255] or None,
        "outcome": outcome[:16] or None,
        "since": since,
    }
    listed = read_audit(ctx, limit=100, cursor=cursor, internal=internal, **filters)
    query = {
        key: value
        for key, value in {"actor": actor, "action": action, "target": target, "outcome": outcome}.items()
        if value
    }
    return page(
        request,
        "access_audit.html",
        principal,
        section="access",
        tab="audit",
        records=listed.items,
        next_cursor=listed.next_cursor,
        filters={**query, **({"internal": "true"} if internal else {})},
        internal=internal,
    )
