"""API shapes of graphical sessions, their history, the input sent to them and the evidence of failed runs
(DESIGN.md, "Contracts of the domains still to come": the field names are the contract, the others additions), and
the wire shapes of the agent's session commands (the brief of issue 16)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator, model_validator

# A letter or digit first, as the agent wants it (a name it refuses would fail that session on every sync).
SessionName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
# An X display on the agent's machine: ":N" or ":N.S" (no host: sessions are local to their agent).
Display = Annotated[str, StringConstraints(pattern=r"^:[0-9]{1,4}(\.[0-9]{1,2})?$")]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Kind = Literal["xvfb", "attach"]
RestartPolicy = Literal["always", "never"]
Depth = Literal[24, 16, 8]
Button = Literal["left", "right", "middle"]
MAX_TEXT = 10_000
# xdotool key names joined by "+": "ctrl+alt+t", "Return", "Escape", "F5" (the agent checks the names themselves).
KEYS_PATTERN = r"^[A-Za-z0-9_]{1,32}(\+[A-Za-z0-9_]{1,32}){0,5}$"


class State(StrEnum):
    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    FAILED = "failed"
    STOPPED = "stopped"


class SessionFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent: str = Field("local", min_length=1, max_length=64, description="The agent whose machine holds the display")
    kind: Kind = Field("xvfb", description="xvfb: the agent starts and owns a virtual display; attach: an existing one")
    display: Display | None = Field(
        None, description='attach: the display, e.g. ":0" (required); xvfb: a fixed display, else the agent picks one'
    )
    width: int = Field(1280, ge=320, le=7680)
    height: int = Field(800, ge=200, le=4320)
    depth: Depth = 24
    window_manager: bool = Field(False, description="xvfb only: start sessions.window_manager in it")
    restart: RestartPolicy = Field("always", description="What the agent's watchdog does when the display dies")
    record_seconds: int | None = Field(
        None, ge=0, le=120, description="A failed run keeps its last N s at 1 frame/s (default sessions.record_seconds)"
    )
    enabled: bool = Field(True, description="A disabled session is not kept by its agent")
    description: str = Field("", max_length=2000)
    tags: list[Tag] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _kind_fits(self) -> SessionFields:
        check_kind(self.kind, self.display, self.window_manager)
        return self


def check_kind(kind: str, display: str | None, window_manager: bool) -> None:
    """ValueError when the fields do not fit the kind (also for a change, checked on the merged definition)."""
    if kind == "attach" and not display:
        raise ValueError('display: an attach session names the display it attaches to, e.g. ":0"')
    if kind == "attach" and window_manager:
        raise ValueError("window_manager: only an xvfb session starts a window manager")


class SessionCreate(SessionFields):
    name: SessionName


class SessionUpdate(BaseModel):
    """Left out, a field keeps its stored value; `display` may be cleared with null."""

    model_config = ConfigDict(extra="forbid")
    agent: str | None = Field(None, min_length=1, max_length=64)
    kind: Kind | None = None
    display: Display | None = None
    width: int | None = Field(None, ge=320, le=7680)
    height: int | None = Field(None, ge=200, le=4320)
    depth: Depth | None = None
    window_manager: bool | None = None
    restart: RestartPolicy | None = None
    record_seconds: int | None = Field(None, ge=0, le=120)
    enabled: bool | None = None
    description: str | None = Field(None, max_length=2000)
    tags: list[Tag] | None = Field(None, max_length=50)

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name != "display":
            raise ValueError(f"{info.field_name} cannot be null; leave it out to keep the stored value")
        return value


class SessionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    name: str
    agent: str
    kind: Kind
    display: str | None
    width: int
    height: int
    depth: int
    window_manager: bool
    restart: RestartPolicy
    record_seconds: int
    enabled: bool
    description: str
    tags: list[str]
    from_config: bool
    state: State
    state_reason: str | None = Field(description="Why it is not healthy (or how it became so)")
    actual_display: str | None = Field(description="The display its robots get as DISPLAY")
    pid: int | None = Field(description="Its X server's process id, when the agent started it")
    screen_width: int | None = Field(None, description="The screen's width as its agent found it (None: not yet)")
    screen_height: int | None = Field(None, description="The screen's height as its agent found it")
    restarts: int = Field(description="Restarts by the watchdog or on request, as its agent counts them")
    state_since: datetime
    last_healthy_at: datetime | None
    created_at: datetime
    updated_at: datetime


class SessionEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: datetime
    state: State
    reason: str | None
    source: str = Field(description="agent:NAME (its watchdog), server, or who asked (a restart)")


class Click(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: int = Field(ge=0, description="Pixels from the left of the screen")
    y: int = Field(ge=0, description="Pixels from the top of the screen")
    button: Button = "left"
    double: bool = False


class TypeText(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=MAX_TEXT)


class Keys(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keys: str = Field(pattern=KEYS_PATTERN, description='A key combination as xdotool names it: "ctrl+alt+t", "Return"')


class Scroll(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: int = Field(ge=0)
    y: int = Field(ge=0)
    amount: int = Field(ge=-50, le=50, description="Wheel clicks: positive scrolls down, negative up")

    @field_validator("amount")
    @classmethod
    def _some(cls, value: int) -> int:
        if value == 0:
            raise ValueError("amount: scroll at least one click (positive down, negative up)")
        return value


class Done(BaseModel):
    done: bool = True


ImageFormat = Literal["png", "jpeg", "webp"]
CONTENT_TYPES: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


class ShotRequest(BaseModel):
    """How a screenshot is asked for (the route's query, an action's params)."""

    model_config = ConfigDict(extra="forbid")
    format: ImageFormat = "png"
    quality: int = Field(80, ge=1, le=95, description="jpeg and webp")
    scale: float | None = Field(None, gt=0, le=1, description="A fraction of the screen's size")
    max_width: int | None = Field(None, ge=16, le=7680, description="Scaled down to at most this width")


class Screenshot(BaseModel):
    etag: str
    unchanged: bool
    content_type: str
    data: bytes | None = Field(None, description="The image (None when unchanged)")
    width: int
    height: int
    screen_width: int
    screen_height: int


class ProcessFacts(BaseModel):
    pid: int
    ppid: int | None = None
    name: str | None = None
    cmdline: list[str] = Field(default_factory=list)
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    status: str | None = None


class OutputLine(BaseModel):
    stream: str
    text: str


class EvidenceOut(BaseModel):
    run_id: int
    robot: str
    agent: str
    captured_at: datetime
    stored_at: datetime
    exit: dict[str, Any] = Field(description="How the run's process ended, as its agent reported it")
    processes: list[ProcessFacts] = Field(description="The run's process tree as it was last seen")
    output: list[OutputLine] | None = Field(description="Its last lines of output (None: the caller lacks logs:read)")
    screenshot_url: str | None = Field(
        description="Its session's screen at the end (None: no session, or the caller lacks sessions:read)"
    )
    recording_url: str | None = Field(description="Its last seconds at 1 frame/s, an animated WebP")
    recording_frames: int | None = None
    notes: list[str] = Field(
        default_factory=list, description="What was not kept of it and why (an image over the size cap)"
    )


# ---- the agent's commands (the brief of issue 16) -------------------------------------------------------------


class Spec(TypedDict):
    """A session as `session.sync` and `process.start` send it to its agent."""

    name: str
    kind: str
    display: str | None
    width: int
    height: int
    depth: int
    window_manager: list[str] | None
    restart: str
    record_seconds: int


class AgentEvent(TypedDict):
    seq: int
    at: str
    state: str
    reason: str | None


class Status(TypedDict, total=False):
    """A session as its agent reports it (`session.sync`'s answer, `session.restart`'s)."""

    name: str
    state: str
    display: str | None
    pid: int | None
    restarts: int
    reason: str | None
    since: str
    screen_width: int | None
    screen_height: int | None
    events: list[AgentEvent]
