"""HTTP routes of access control: parse, check the permission, call the service, shape the answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import and_, not_
from starlette.concurrency import run_in_threadpool

from robofleet.auth import audit, roles, sessions, tokens, users
from robofleet.auth.models import AuditRecord
from robofleet.auth.permissions import PERMISSIONS
from robofleet.auth.principal import Principal
from robofleet.auth.schemas import (
    AuditOut,
    LoginInput,
    MeOut,
    RoleCreate,
    RoleOut,
    RoleUpdate,
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserCreate,
    UserOut,
    UserUpdate,
)
from robofleet.auth.sessions import COOKIE_NAME
from robofleet.orchestrator import Orchestrator
from robofleet.store.pagination import Page, paginate
from robofleet.web.context import get_context
from robofleet.web.cookies import clear_session_cookie, set_session_cookie
from robofleet.web.deps import Cursor, Limit
from robofleet.web.schemas import PageOut
from robofleet.web.security import PUBLIC, Require, client_ip

router = APIRouter(prefix="/api/v1")


@router.get("/users", tags=["users"])
def list_users(
    principal: Principal = Depends(Require("users:read")),
    ctx: Orchestrator = Depends(get_context),
    limit: Limit = 100,
    cursor: Cursor = None,
    internal: bool = Query(True, description="Include the users robofleet made for itself (robot-runs)"),
) -> PageOut[UserOut]:
    return PageOut.of(users.list_users(ctx.store, principal, limit=limit, cursor=cursor, internal=internal))


@router.post("/users", status_code=201, tags=["users"])
def create_user(
    data: UserCreate, principal: Principal = Depends(Require("users:write")), ctx: Orchestrator = Depends(get_context)
) -> UserOut:
    return users.create_user(ctx.store, principal, data)


@router.get("/users/{username}", tags=["users"])
def get_user(
    username: str, principal: Principal = Depends(Require("users:read")), ctx: Orchestrator = Depends(get_context)
) -> UserOut:
    return users.get_user(ctx.store, principal, username)


@router.patch("/users/{username}", tags=["users"])
def update_user(
    username: str,
    data: UserUpdate,
    principal: Principal = Depends(Require("users:write")),
    ctx: Orchestrator = Depends(get_context),
) -> UserOut:
    return users.update_user(ctx.store, principal, username, data)


@router.delete("/users/{username}", status_code=204, tags=["users"])
def delete_user(
    username: str, principal: Principal = Depends(Require("users:write")), ctx: Orchestrator = Depends(get_context)
) -> Response:
    users.delete_user(ctx.store, principal, username)
    return Response(status_code=204)


@router.get("/roles", tags=["roles"])
def list_roles(
    principal: Principal = Depends(Require("roles:read")),
    ctx: Orchestrator = Depends(get_context),
    limit: Limit = 100,
    cursor: Cursor = None,
) -> PageOut[RoleOut]:
    return PageOut.of(roles.list_roles(ctx.store, principal, limit=limit, cursor=cursor))


@router.post("/roles", status_code=201, tags=["roles"])
def create_role(
    data: RoleCreate, principal: Principal = Depends(Require("roles:write")), ctx: Orchestrator = Depends(get_context)
) -> RoleOut:
    return roles.create_role(ctx.store, principal, data)


@router.get("/roles/{name}", tags=["roles"])
def get_role(
    name: str, principal: Principal = Depends(Require("roles:read")), ctx: Orchestrator = Depends(get_context)
) -> RoleOut:
    return roles.get_role(ctx.store, principal, name)


@router.patch("/roles/{name}", tags=["roles"])
def update_role(
    name: str,
    data: RoleUpdate,
    principal: Principal = Depends(Require("roles:write")),
    ctx: Orchestrator = Depends(get_context),
) -> RoleOut:
    return roles.update_role(ctx.store, principal, name, data)


@router.delete("/roles/{name}", status_code=204, tags=["roles"])
def delete_role(
    name: str, principal: Principal = Depends(Require("roles:write")), ctx: Orchestrator = Depends(get_context)
) -> Response:
    roles.delete_role(ctx.store, principal, name)
    return Response(status_code=204)


@router.get("/tokens", tags=["tokens"])
def list_tokens(
    principal: Principal = Depends(Require(None)),
    ctx: Orchestrator = Depends(get_context),
    user: str | None = Query(None, max_length=64),
    limit: Limit = 100,
    cursor: Cursor = None,
    internal: bool = Query(True, description="Include the tokens robofleet made for robot runs (one per run)"),
) -> PageOut[TokenOut]:
    """Every token for holders of `tokens:read`; the caller's own tokens otherwise."""
    return PageOut.of(
        tokens.list_tokens(ctx.store, principal, user=user, limit=limit, cursor=cursor, internal=internal)
    )


@router.post("/tokens", status_code=201, tags=["tokens"])
def create_token(
    data: TokenCreate, principal: Principal = Depends(Require(None)), ctx: Orchestrator = Depends(get_context)
) -> TokenCreated:
    """A token for the caller, or, with `tokens:write`, for any user. The secret is in `token`, once."""
    return tokens.create_token(ctx.store, principal, data)


@router.delete("/tokens/{token_id}", tags=["tokens"])
def revoke_token(
    token_id: str, principal: Principal = Depends(Require(None)), ctx: Orchestrator = Depends(get_context)
) -> TokenOut:
    """Revoke one of the caller's tokens, or, with `tokens:write`, anyone's."""
    return tokens.revoke_token(ctx.store, principal, token_id)


@router.get("/audit", tags=["audit"])
def list_audit(
    principal: Principal = Depends(Require("audit:read")),
    ctx: Orchestrator = Depends(get_context),
    actor: str | None = Query(None, max_length=128),
    action: str | None = Query(None, max_length=128),
    target: str | None = Query(None, max_length=255),
    outcome: str | None = Query(None, max_length=16),
    since: datetime | None = None,
    until: datetime | None = None,
    internal: bool = Query(True, description="Include the records of run tokens made and revoked for each run"),
    limit: Limit = 100,
    cursor: Cursor = None,
) -> PageOut[AuditOut]:
    """Newest first."""
    return PageOut.of(
        read_audit(
            ctx,
            actor=actor,
            action=action,
            target=target,
            outcome=outcome,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
            internal=internal,
        )
    )


# The records of each run's own token, made and revoked by the robots service (acting as the system "robots"): two a
# run, which the audit page leaves out unless asked.
RUN_TOKEN_RECORDS = and_(AuditRecord.actor == "robots", AuditRecord.action.in_(("token.create", "token.revoke")))


def read_audit(
    ctx: Orchestrator, *, limit: int, cursor: str | None, internal: bool = True, **filters: Any
) -> Page[AuditOut]:
    """Audit records, newest first, matching `filters` (audit.query); without `internal`, RUN_TOKEN_RECORDS left
    out."""
    stmt = audit.query(**filters)
    if not internal:
        stmt = stmt.where(not_(RUN_TOKEN_RECORDS))
    with ctx.store.transaction() as db:
        page = paginate(
            db,
            stmt,
            AuditRecord.id,
            limit=limit,
            cursor=cursor,
            descending=True,
        )
        return Page([AuditOut.model_validate(row, from_attributes=True) for row in page.items], page.next_cursor)


@router.post("/auth/login", dependencies=[Depends(PUBLIC)], tags=["auth"])
async def login(
    data: LoginInput, request: Request, response: Response, ctx: Orchestrator = Depends(get_context)
) -> MeOut:
    """Opens a panel session (cookie) and answers with the CSRF token that mutating requests must send."""
    session = await run_in_threadpool(
        sessions.login, ctx.store, ctx.settings.auth, data.username, data.password, client_ip(request)
    )
    set_session_cookie(response, session, ctx.settings, request)
    return me_of(session.principal)


@router.post("/auth/logout", tags=["auth"])
def logout(
    request: Request,
    response: Response,
    principal: Principal = Depends(Require(None)),
    ctx: Orchestrator = Depends(get_context),
) -> dict[str, str]:
    sessions.logout(ctx.store, principal, request.cookies.get(COOKIE_NAME) if principal.via == "session" else None)
    clear_session_cookie(response)
    return {"status": "logged out"}


@router.get("/me", tags=["auth"])
def me(principal: Principal = Depends(Require(None)), ctx: Orchestrator = Depends(get_context)) -> MeOut:
    return me_of(principal)


def me_of(principal: Principal) -> MeOut:
    held = [name for name in PERMISSIONS if principal.can(name)]
    return MeOut(
        username=principal.username,
        roles=list(principal.roles),
        permissions=held,
        via=principal.via,
        csrf_token=principal.csrf_token,
    )
