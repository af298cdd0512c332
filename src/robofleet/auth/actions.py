"""Access-control operations as actions: the same service functions the REST routes call."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr

from robofleet.activities.registry import ActionContext, Params, Registry
from robofleet.auth import roles, tokens, users
from robofleet.auth.schemas import RoleCreate, RoleName, RoleUpdate, UserCreate, Username, UserUpdate


class PageParams(Params):
    limit: int = Field(100, ge=1, le=500)
    cursor: str | None = None


class UsernameParams(Params):
    username: Username


class UserCreateParams(Params):
    username: Username
    password: SecretStr
    roles: list[RoleName] = Field(default_factory=list)
    disabled: bool = False


class UserUpdateParams(Params):
    username: Username
    password: SecretStr | None = None
    roles: list[RoleName] | None = None
    disabled: bool | None = None


class RoleNameParams(Params):
    name: RoleName


class RoleUpdateParams(RoleUpdate):
    name: RoleName


class TokenListParams(PageParams):
    user: Username | None = None


class TokenIdParams(Params):
    id: str = Field(min_length=1, max_length=32)


def page_dict(page: Any) -> dict[str, Any]:
    return {"items": [item.model_dump(mode="json") for item in page.items], "next_cursor": page.next_cursor}


def register(registry: Registry) -> None:
    @registry.register("users.list", permission="users:read", params=PageParams)
    def list_users(ctx: ActionContext, params: PageParams) -> dict[str, Any]:
        """List users, a page at a time."""
        return page_dict(users.list_users(ctx.app.store, ctx.principal, limit=params.limit, cursor=params.cursor))

    @registry.register("users.get", permission="users:read", params=UsernameParams)
    def get_user(ctx: ActionContext, params: UsernameParams) -> dict[str, Any]:
        """One user by name."""
        return users.get_user(ctx.app.store, ctx.principal, params.username).model_dump(mode="json")

    @registry.register("users.create", permission="users:write", params=UserCreateParams)
    def create_user(ctx: ActionContext, params: UserCreateParams) -> dict[str, Any]:
        """Create a user. The password is never stored with the activity."""
        data = UserCreate(
            username=params.username,
            password=params.password.get_secret_value(),
            roles=params.roles,
            disabled=params.disabled,
        )
        return users.create_user(ctx.app.store, ctx.principal, data).model_dump(mode="json")

    @registry.register("users.update", permission="users:write", params=UserUpdateParams)
    def update_user(ctx: ActionContext, params: UserUpdateParams) -> dict[str, Any]:
        """Change a user's roles, password or disabled flag."""
        changes = params.model_dump(exclude_unset=True, exclude={"username", "password"})
        if params.password is not None:
            changes["password"] = params.password.get_secret_value()
        data = UserUpdate(**changes)
        return users.update_user(ctx.app.store, ctx.principal, params.username, data).model_dump(mode="json")

    @registry.register("users.delete", permission="users:write", params=UsernameParams)
    def delete_user(ctx: ActionContext, params: UsernameParams) -> dict[str, str]:
        """Delete a user."""
        users.delete_user(ctx.app.store, ctx.principal, params.username)
        return {"deleted": params.username}

    @registry.register("roles.list", permission="roles:read", params=PageParams)
    def list_roles(ctx: ActionContext, params: PageParams) -> dict[str, Any]:
        """List roles with their permissions."""
        return page_dict(roles.list_roles(ctx.app.store, ctx.principal, limit=params.limit, cursor=params.cursor))

    @registry.register("roles.get", permission="roles:read", params=RoleNameParams)
    def get_role(ctx: ActionContext, params: RoleNameParams) -> dict[str, Any]:
        """One role by name."""
        return roles.get_role(ctx.app.store, ctx.principal, params.name).model_dump(mode="json")

    @registry.register("roles.create", permission="roles:write", params=RoleCreate)
    def create_role(ctx: ActionContext, params: RoleCreate) -> dict[str, Any]:
        """Create a role of permissions, optionally scoped to robot name globs or tags."""
        return roles.create_role(ctx.app.store, ctx.principal, params).model_dump(mode="json")

    @registry.register("roles.update", permission="roles:write", params=RoleUpdateParams)
    def update_role(ctx: ActionContext, params: RoleUpdateParams) -> dict[str, Any]:
        """Change a custom role."""
        data = RoleUpdate(**params.model_dump(exclude_unset=True, exclude={"name"}))
        return roles.update_role(ctx.app.store, ctx.principal, params.name, data).model_dump(mode="json")

    @registry.register("roles.delete", permission="roles:write", params=RoleNameParams)
    def delete_role(ctx: ActionContext, params: RoleNameParams) -> dict[str, str]:
        """Delete a custom role nobody holds."""
        roles.delete_role(ctx.app.store, ctx.principal, params.name)
        return {"deleted": params.name}

    # tokens.create is deliberately not an action: its secret would be stored in the activity's result.
    @registry.register("tokens.list", permission="tokens:read", params=TokenListParams)
    def list_tokens(ctx: ActionContext, params: TokenListParams) -> dict[str, Any]:
        """List API tokens (never their secrets)."""
        page = tokens.list_tokens(
            ctx.app.store, ctx.principal, user=params.user, limit=params.limit, cursor=params.cursor
        )
        return page_dict(page)

    @registry.register("tokens.revoke", permission="tokens:write", params=TokenIdParams)
    def revoke_token(ctx: ActionContext, params: TokenIdParams) -> dict[str, Any]:
        """Revoke an API token by id."""
        return tokens.revoke_token(ctx.app.store, ctx.principal, params.id).model_dump(mode="json")
