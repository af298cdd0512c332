"""API shapes of access control; inputs forbid unknown fields so a typo is an error, not a no-op."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from robofleet.store.text import refuse_nul

Username = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]
# An agent's name: it appears in paths (/agents/{name}) and log sources (agent:<name>), so no '/' and no spaces.
AgentName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
RoleName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.-]{1,64}$")]
Password = Annotated[str, Field(min_length=8, max_length=1024)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")

    _no_nul = model_validator(mode="before")(refuse_nul)


class UserCreate(Input):
    username: Username
    password: Password
    roles: list[RoleName] = Field(default_factory=list, max_length=50)
    disabled: bool = False


class UserUpdate(Input):
    password: Password | None = None
    roles: list[RoleName] | None = Field(None, max_length=50)
    disabled: bool | None = None


class UserOut(BaseModel):
    username: str
    roles: list[str]
    disabled: bool
    locked_until: datetime | None = None
    from_config: bool = False
    created_at: datetime


class RoleCreate(Input):
    name: RoleName
    description: str = Field("", max_length=1000)
    permissions: list[str] = Field(default_factory=list, max_length=200)
    robot_globs: list[str] = Field(default_factory=list, max_length=200)
    robot_tags: list[str] = Field(default_factory=list, max_length=200)


class RoleUpdate(Input):
    description: str | None = Field(None, max_length=1000)
    permissions: list[str] | None = Field(None, max_length=200)
    robot_globs: list[str] | None = Field(None, max_length=200)
    robot_tags: list[str] | None = Field(None, max_length=200)


class RoleOut(BaseModel):
    name: str
    description: str
    permissions: list[str]
    robot_globs: list[str]
    robot_tags: list[str]
    builtin: bool
    from_config: bool


class TokenCreate(Input):
    user: Username | None = Field(None, description="Owner; default: the caller")
    name: str = Field("", max_length=128)
    scopes: list[str] = Field(default_factory=list, max_length=200, description="Empty: all of the owner's")
    expires_in_days: float | None = Field(None, gt=0, le=3650)
    expires_at: datetime | None = None
    agent: AgentName | None = Field(
        None, description="The one agent name this token connects as; the name then belongs to the token's user"
    )


class TokenOut(BaseModel):
    id: str
    user: str
    name: str
    scopes: list[str]
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime
    created_by: str
    agent: str | None = None


class TokenCreated(TokenOut):
    token: str = Field(description="The secret itself, shown this once")


class LoginInput(Input):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class MeOut(BaseModel):
    username: str
    roles: list[str]
    permissions: list[str]
    via: str
    csrf_token: str | None = None


class AuditOut(BaseModel):
    id: int
    time: datetime
    actor: str
    action: str
    target: str
    source_ip: str
    outcome: str
    details: dict[str, Any]
