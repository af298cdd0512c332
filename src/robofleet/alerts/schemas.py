"""API shapes of alert rules, channels, alerts and the delivery log. A webhook's secret is write-only: no shape
that goes out has it (`has_secret` says whether one is set)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from robofleet.alerts.kinds import ChannelKind, RuleKind, check_glob, check_threshold
from robofleet.store.text import refuse_nul

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+$")
MAX_COOLDOWN = 7 * 86_400.0


def describe_errors(exc: ValidationError) -> str:
    """The first error of a validation as one line, "field: message"."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if any(character in url for character in " \r\n\t"):
        raise ValueError("must not hold spaces or line breaks")
    return url


def check_recipients(recipients: list[str]) -> list[str]:
    for address in recipients:
        if not EMAIL.match(address):
            raise ValueError(f"{address!r} is not an e-mail address")
    return recipients


class RuleFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    _no_nul = model_validator(mode="before")(refuse_nul)

    match: str = Field("*", description="A glob of the subject's name: robot, agent, schedule or queue by the kind")
    threshold: float | None = Field(
        None,
        description="run_too_long: times the median (default 2); agent_offline: seconds (default 60); "
        "queue_past_sla: items (default 1); the other kinds take none",
    )
    cooldown_seconds: float = Field(
        300.0, ge=0, le=MAX_COOLDOWN, description="Events of the same rule and subject within it are counted"
    )
    channels: list[Name] = Field(default_factory=list, max_length=20, description="Channel names to deliver to")
    enabled: bool = True
    description: str = Field("", max_length=2000)

    @field_validator("match")
    @classmethod
    def _glob(cls, value: str) -> str:
        return check_glob(value)


class RuleCreate(RuleFields):
    name: Name
    kind: RuleKind

    @model_validator(mode="after")
    def _threshold(self) -> RuleCreate:
        self.threshold = check_threshold(self.kind, self.threshold)
        return self


class RuleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    _no_nul = model_validator(mode="before")(refuse_nul)

    match: str | None = None
    threshold: float | None = None
    cooldown_seconds: float | None = Field(None, ge=0, le=MAX_COOLDOWN)
    channels: list[Name] | None = Field(None, max_length=20)
    enabled: bool | None = None
    description: str | None = Field(None, max_length=2000)

    @field_validator("match")
    @classmethod
    def _glob(cls, value: str | None) -> str | None:
        return None if value is None else check_glob(value)


class RuleOut(BaseModel):
    name: str
    kind: RuleKind
    match: str
    threshold: float | None
    cooldown_seconds: float
    channels: list[str]
    enabled: bool
    description: str
    from_config: bool
    created_at: datetime
    updated_at: datetime


class ChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    _no_nul = model_validator(mode="before")(refuse_nul)

    name: Name
    kind: ChannelKind
    recipients: list[str] = Field(default_factory=list, max_length=50, description="email: the addresses")
    url: str | None = Field(None, max_length=2048, description="webhook: where the JSON is POSTed")
    secret: SecretStr | None = Field(
        None, description="webhook: the HMAC-SHA256 key (16 characters or more); write-only, never shown"
    )
    enabled: bool = True
    description: str = Field("", max_length=2000)

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        return check_recipients(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not 16 <= len(value.get_secret_value()) <= 256:
            raise ValueError("must be 16 to 256 characters")
        return value

    @model_validator(mode="after")
    def _fits_kind(self) -> ChannelCreate:
        if self.kind == ChannelKind.EMAIL:
            if not self.recipients:
                raise ValueError("an email channel needs recipients")
            if self.url is not None or self.secret is not None:
                raise ValueError("an email channel takes no url or secret")
        else:
            if self.url is None or self.secret is None:
                raise ValueError("a webhook channel needs a url and a secret")
            if self.recipients:
                raise ValueError("a webhook channel takes no recipients")
        return self


class ChannelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    _no_nul = model_validator(mode="before")(refuse_nul)

    recipients: list[str] | None = Field(None, max_length=50)
    url: str | None = Field(None, max_length=2048)
    secret: SecretStr | None = None
    enabled: bool | None = None
    description: str | None = Field(None, max_length=2000)

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_recipients(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not 16 <= len(value.get_secret_value()) <= 256:
            raise ValueError("must be 16 to 256 characters")
        return value


class ChannelOut(BaseModel):
    name: str
    kind: ChannelKind
    recipients: list[str]
    url: str | None
    has_secret: bool
    enabled: bool
    description: str
    from_config: bool
    created_at: datetime
    updated_at: datetime


DeliveryState = Literal["pending", "delivered", "failed"]


class AttemptOut(BaseModel):
    id: int
    delivery_id: int
    alert_id: int
    channel: str
    kind: str
    attempt: int
    at: datetime
    outcome: Literal["delivered", "error"]
    status: str | None
    error: str | None
    seconds: float


class DeliveryOut(BaseModel):
    id: int
    channel: str
    kind: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class AlertOut(BaseModel):
    id: int
    rule: str
    kind: RuleKind
    subject: str
    title: str
    detail: str
    facts: dict[str, Any]
    count: int = Field(description="Events of this rule and subject counted in it (within its cool-down)")
    first_at: datetime
    last_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None


class AlertDetail(AlertOut):
    deliveries: list[DeliveryOut]
    attempts: list[AttemptOut]


class AlertFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: RuleKind | None = None
    rule: str | None = Field(None, max_length=64)
    subject: str | None = Field(None, max_length=256)
    acknowledged: bool | None = None


class AttemptFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str | None = Field(None, max_length=64)
    outcome: Literal["delivered", "error"] | None = None
    alert_id: int | None = None
