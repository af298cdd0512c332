"""API shapes of robots and runs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator, model_validator

from robofleet.logs.line_formats import BadFormat, checked_format
from robofleet.robots.reasons import Origin
from robofleet.robots.states import RunState
from robofleet.store.text import refuse_nul

RobotName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class RestartPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: Literal["never", "on-failure"] = "never"
    backoff_seconds: float = Field(5.0, ge=0, le=3600)
    give_up_after: int = Field(5, ge=1, le=1000, description="Failures within `window_seconds` that stop restarts")
    window_seconds: float = Field(600.0, gt=0, le=86_400)


def checked_log_format(value: str) -> str:
    try:
        return checked_format(value)
    except BadFormat as exc:
        raise ValueError(str(exc)) from None


class RobotFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    _no_nul = model_validator(mode="before")(refuse_nul)
    agent: str = Field("local", min_length=1, max_length=64)
    argv: list[str] = Field(min_length=1, max_length=200)
    cwd: str | None = Field(None, max_length=1024)
    env: dict[str, str] = Field(default_factory=dict)
    session: str | None = Field(
        None, max_length=64, description="A graphical session on its agent: its runs get its DISPLAY once it is healthy"
    )
    safe_stop_timeout: float = Field(30.0, gt=0, le=3600)
    max_runtime: float | None = Field(None, gt=0, le=7 * 86_400)
    restart: RestartPolicy = Field(default_factory=RestartPolicy)
    max_concurrent: int = Field(1, ge=1, le=100)
    tags: list[str] = Field(default_factory=list, max_length=50)
    description: str = Field("", max_length=2000)
    keep_leftovers: bool = Field(
        False, description="Leave processes a run left behind (setsid grandchildren, orphans) running when it ends"
    )
    log_format: str = Field(
        "auto",
        max_length=300,
        description="How its output lines carry their level: auto (Python logging's and loguru's usual shapes), "
        "plain (every line INFO), or a regular expression with a named group (?P<level>...) matched at each line's "
        "start (a line it does not match continues the record before it)",
    )

    @field_validator("log_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        return checked_log_format(value)


class RobotCreate(RobotFields):
    name: RobotName


class RobotUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    _no_nul = model_validator(mode="before")(refuse_nul)
    agent: str | None = Field(None, min_length=1, max_length=64)
    argv: list[str] | None = Field(None, min_length=1, max_length=200)
    cwd: str | None = Field(None, max_length=1024)
    env: dict[str, str] | None = None
    session: str | None = Field(None, max_length=64, description="The graphical session its runs get (null: none)")
    safe_stop_timeout: float | None = Field(None, gt=0, le=3600)
    max_runtime: float | None = Field(None, gt=0, le=7 * 86_400)
    restart: RestartPolicy | None = None
    max_concurrent: int | None = Field(None, ge=1, le=100)
    tags: list[str] | None = Field(None, max_length=50)
    description: str | None = Field(None, max_length=2000)
    keep_leftovers: bool | None = None
    log_format: str | None = Field(None, max_length=300)

    @field_validator("log_format")
    @classmethod
    def _known_format(cls, value: str | None) -> str | None:
        return checked_log_format(value) if value is not None else None

    # Left out, a field keeps its stored value; null means "none" only where a definition can have none.
    @field_validator(
        "agent",
        "argv",
        "env",
        "safe_stop_timeout",
        "restart",
        "max_concurrent",
        "tags",
        "description",
        "keep_leftovers",
        "log_format",
        mode="before",
    )
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            raise ValueError(f"{info.field_name} cannot be null; leave it out to keep the stored value")
        return value


class RobotOut(RobotFields):
    name: str
    from_config: bool = False
    manual_stop: bool = False
    created_at: datetime


class RunOut(BaseModel):
    id: int
    robot: str
    agent: str
    state: RunState
    pid: int | None
    exit_code: int | None
    error: str | None = None
    manual: bool
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    stop_deadline: datetime | None = Field(None, description="A safe stop asked: the run is killed at this time")
    runtime_deadline: datetime | None = Field(None, description="started_at + the robot's max_runtime")
    leftovers: int | None = Field(None, description="Processes it left behind, ended with it")
    pending_action: Literal["stop", "kill"] | None = Field(
        None,
        description="A stop or kill asked while the run's agent was away: carried out when the agent is back",
    )
    pause_asked_at: datetime | None = Field(
        None, description="A pause was asked and the robot has not reached a checkpoint yet (it is still running)"
    )
    transitions: list[dict[str, Any]] = Field(
        description='Every state change: {"state", "at", "by"}; a "paused" one also says how: '
        '"pause": "cooperative" (holding at a checkpoint) or "frozen" (SIGSTOP), with a "reason" when it fell back; '
        'an end with a reason says it ("reason")'
    )
    origin: Origin = Field(Origin.USER, description="Who or what started it, from requested_by")
    duration_seconds: float | None = Field(
        None, description="From the start of its process to its end, or until now while it lasts"
    )
    exit_meaning: str | None = Field(None, description='What its exit code says, e.g. 137: "killed by SIGKILL"')


class RunFilter(BaseModel):
    """Which runs a list shows: each field left out (or empty) narrows nothing; the runs match every one given."""

    model_config = ConfigDict(extra="forbid")

    robot: RobotName | None = None
    state: list[RunState] = Field(default_factory=list, max_length=len(RunState))
    agent: str | None = Field(None, min_length=1, max_length=64)
    since: datetime | None = Field(None, description="Created at or after this time (with its time zone)")
    until: datetime | None = Field(None, description="Created before this time (with its time zone)")
    origin: list[Origin] = Field(default_factory=list, max_length=len(Origin))
    requested_by: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="Started by this user (in the panel or with any of their tokens) or schedule:<name>",
    )

    @field_validator("since", "until")
    @classmethod
    def _with_zone(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError(f"{info.field_name} needs a time zone, e.g. 2026-01-31T08:00:00Z")
        return value

    @model_validator(mode="after")
    def _in_order(self) -> RunFilter:
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError("until must be later than since")
        return self
