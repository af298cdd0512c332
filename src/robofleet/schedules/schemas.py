"""API shapes of schedules, their fires and calendars (DESIGN.md, "Contracts of the domains still to come")."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from robofleet.schedules.models import Outcome

ScheduleName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
CalendarName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
MisfirePolicy = Literal["skip", "run_once"]
Overlap = Literal["skip", "queue", "parallel"]
# Path segments of /schedules/… that are no schedule: a schedule may not take these names.
RESERVED_NAMES = frozenset({"calendar", "calendars", "timeline", "rows", "preview"})


class Target(BaseModel):
    """The activity a fire submits: an action and its args (checked against the action's parameters)."""

    model_config = ConfigDict(extra="forbid")
    action: str = Field(min_length=1, max_length=128)
    args: dict[str, Any] = Field(default_factory=dict)


class Misfire(BaseModel):
    """What happens to fires that fell due while no engine ran: a fire later than `grace_seconds` is skipped
    (`skip`), or all of those missed become one fire (`run_once`). Never one fire per missed slot."""

    model_config = ConfigDict(extra="forbid")
    policy: MisfirePolicy = "skip"
    grace_seconds: float = Field(60.0, ge=0, le=7 * 86_400)


class ScheduleFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: Target
    trigger: dict[str, Any] = Field(description='{"kind": "cron"|"interval"|"once"|"window"|"run_event", ...}')
    timezone: str = Field("UTC", min_length=1, max_length=64, description="IANA zone the trigger is read in")
    calendars: list[CalendarName] = Field(default_factory=list, max_length=20)
    enabled: bool = True
    misfire: Misfire = Field(default_factory=Misfire)
    overlap: Overlap = Field("skip", description="For robots.start targets: when the robot already has a run")
    jitter_seconds: float = Field(0.0, ge=0, le=3600)
    description: str = Field("", max_length=2000)
    tags: list[str] = Field(default_factory=list, max_length=50)


class ScheduleCreate(ScheduleFields):
    name: ScheduleName

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_NAMES:
            raise ValueError(f"{name!r} is a reserved name")
        return name


class ScheduleUpdate(BaseModel):
    """Left out, a field keeps its stored value."""

    model_config = ConfigDict(extra="forbid")
    target: Target | None = None
    trigger: dict[str, Any] | None = None
    timezone: str | None = Field(None, min_length=1, max_length=64)
    calendars: list[CalendarName] | None = Field(None, max_length=20)
    enabled: bool | None = None
    misfire: Misfire | None = None
    overlap: Overlap | None = None
    jitter_seconds: float | None = Field(None, ge=0, le=3600)
    description: str | None = Field(None, max_length=2000)
    tags: list[str] | None = Field(None, max_length=50)

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            raise ValueError(f"{info.field_name} cannot be null; leave it out to keep the stored value")
        return value


class LastFire(BaseModel):
    planned_at: datetime
    fired_at: datetime
    outcome: Outcome
    lateness_seconds: float


class ScheduleOut(ScheduleFields):
    name: str
    next_fire_at: datetime | None = Field(description="The next fire the engine will act on (jitter included)")
    paused: bool
    broken: str | None = Field(None, description="Why it fires nothing (its target is gone); null when healthy")
    owner: str = Field(description="Whose rights its fires run with: its last writer's")
    from_config: bool
    window_end: datetime | None = Field(None, description="Inside its window: when the robot's runs are stopped")
    last_fire: LastFire | None = None
    created_at: datetime
    updated_at: datetime


class FireOut(BaseModel):
    id: int
    schedule: str
    planned_at: datetime
    fired_at: datetime
    action: str
    activity_id: int | None
    outcome: Outcome
    error: str | None
    missed: int = Field(0, description="Planned fires this one stands for besides its own (misfires coalesced)")


class Preview(BaseModel):
    fires: list[datetime]


class TriggerPreview(BaseModel):
    """A trigger not saved (yet), to see when it would fire."""

    model_config = ConfigDict(extra="forbid")
    trigger: dict[str, Any] = Field(description='{"kind": "cron"|"interval"|"once"|"window"|"run_event", ...}')
    timezone: str = Field("UTC", min_length=1, max_length=64)
    calendars: list[CalendarName] = Field(default_factory=list, max_length=20)
    count: int = Field(20, ge=1, le=500)


class PlannedFire(BaseModel):
    schedule: str
    at: datetime
    action: str


class Planned(BaseModel):
    fires: list[PlannedFire]
    truncated: bool = Field(description="More fires fall in the range than were listed")


class Holidays(BaseModel):
    model_config = ConfigDict(extra="forbid")
    country: str = Field(min_length=2, max_length=3)
    subdiv: str | None = Field(None, max_length=16)


class CalendarFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dates: list[date] = Field(default_factory=list, max_length=10_000)
    holidays: list[Holidays] = Field(default_factory=list, max_length=20)
    description: str = Field("", max_length=2000)


class CalendarCreate(CalendarFields):
    name: CalendarName


class CalendarUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dates: list[date] | None = Field(None, max_length=10_000)
    holidays: list[Holidays] | None = Field(None, max_length=20)
    description: str | None = Field(None, max_length=2000)


class CalendarOut(CalendarFields):
    name: str
    from_config: bool
    created_at: datetime
