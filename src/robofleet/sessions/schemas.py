"""API shapes of graphical sessions, their history, the input sent to them and the evidence of failed runs
(DESIGN.md, "Contracts of the domains still to come": the field names are the contract, the others additions), and
the wire shapes of the agent's session commands (the briefs of issues 16 and 17).

An `rdp` session is an Xvfb the agent starts with an RDP client drawing a remote desktop into it: its host, user and
password are its own fields. The password is write-only: taken in, never answered (`has_password` says whether one is
stored), and a change that leaves it out keeps the stored one."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, ValidationInfo, field_validator

# A letter or digit first, as the agent wants it (a name it refuses would fail that session on every sync).
SessionName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
# An X display on the agent's machine: ":N" or ":N.S" (no host: sessions are local to their agent).
Display = Annotated[str, StringConstraints(pattern=r"^:[0-9]{1,4}(\.[0-9]{1,2})?$")]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Kind = Literal["xvfb", "attach", "rdp"]
RestartPolicy = Literal["always", "never"]
Depth = Literal[24, 16, 8]
Button = Literal["left", "right", "middle"]
MAX_TEXT = 10_000
# xdotool key names joined by "+": "ctrl+alt+t", "Return", "Escape", "F5" (the agent checks the names themselves).
KEYS_PATTERN = r"^[A-Za-z0-9_]{1,32}(\+[A-Za-z0-9_]{1,32}){0,5}$"

# ---- rdp -------------------------------------------------------------------------------------------------------
# The host goes into the client's argv as "/v:HOST:PORT": a hostname, an IPv4 address or a bracketed IPv6 one. It
# starts with a letter, a digit or "[", so that nothing in it can read as an option ("-", "/", "+").
Host = Annotated[
    str, StringConstraints(pattern=r"^(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9][A-Za-z0-9_.-]{0,252})$", max_length=255)
]
# User and domain go into argv behind "/u:" and "/d:": no control characters (a line break would end /from-stdin).
Account = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]*$", max_length=256)]
Security = Literal["auto", "rdp", "tls", "nla"]
# ignore: any certificate; tofu: the first one seen, then only it; deny: only one the system trusts; or a pin.
Certificate = Annotated[str, StringConstraints(pattern=r"^(ignore|tofu|deny|fingerprint:sha256:[0-9A-Fa-f]{64})$")]
# A step played into the display to log off: keys pressed (as xdotool names them), text typed, or a pause.
LogoffStep = Annotated[
    str,
    StringConstraints(
        pattern=r"^(key:[A-Za-z0-9_]{1,32}(\+[A-Za-z0-9_]{1,32}){0,5}|type:[^\x00-\x1f\x7f]{1,200}|"
        r"wait:([0-9](\.[0-9]{1,3})?|10(\.0{1,3})?))$"
    ),
]
# The Windows way: Run (Win+R), then the command that ends the session.
WINDOWS_LOGOFF: tuple[str, ...] = ("key:super+r", "wait:1.5", "type:logoff", "key:Return")
DEFAULT_PORT = 3389
# The fields only an rdp session has; the rest of a session's fields are every kind's.
RDP_FIELDS = ("host", "port", "username", "password", "domain", "security", "certificate", "logoff")


class State(StrEnum):
    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    FAILED = "failed"
    STOPPED = "stopped"


class SessionFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent: str = Field("local", min_length=1, max_length=64, description="The agent whose machine holds the display")
    kind: Kind = Field(
        "xvfb",
        description="xvfb: the agent starts and owns a virtual display; attach: an existing one; rdp: an Xvfb with an "
        "RDP client showing a remote desktop in it",
    )
    display: Display | None = Field(
        None,
        description='attach: the display, e.g. ":0" (required); xvfb: a fixed display, else the agent picks one',
        validate_default=True,
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
    host: Host | None = Field(
        None, description="rdp: the server, a hostname, IPv4 or [IPv6] address (required)", validate_default=True
    )
    port: int = Field(DEFAULT_PORT, ge=1, le=65535, description="rdp: the server's port")
    username: Account | None = Field(
        None, min_length=1, description="rdp: the user it logs on as (required)", validate_default=True
    )
    password: SecretStr | None = Field(
        None, description="rdp: the user's password (required; write-only, never answered)", validate_default=True
    )
    domain: Account = Field("", description="rdp: the user's domain (empty: none)")
    security: Security = Field("auto", description="rdp: the protocol's security (auto: as client and server agree)")
    certificate: Certificate = Field(
        "tofu",
        description='rdp: which server certificates the client accepts: "ignore", "tofu" (the first seen), "deny" '
        '(only trusted ones) or "fingerprint:sha256:<64 hex>"',
    )
    logoff: list[LogoffStep] | None = Field(
        None,
        max_length=20,
        description='rdp: the steps played into the display to log off ("key:super+r", "wait:1.5", "type:logoff"); '
        "None: the Windows steps",
    )

    @field_validator("display", "window_manager", "host", "username", "password")
    @classmethod
    def _fits_kind(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("kind")  # absent when the kind itself was refused: that error is the one to say
        if kind is not None and info.field_name is not None:
            problem = kind_problem(kind, info.field_name, value)
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("password")
    @classmethod
    def _one_line(cls, value: SecretStr | None) -> SecretStr | None:
        return check_password(value)


def kind_problem(kind: str, field: str, value: Any) -> str | None:
    """What is wrong with `field` being `value` in a session of `kind` ("field: why"), None when it fits. Checked on
    a new session's fields and on the merged definition of a change (where `password` is whether one is kept)."""
    if field == "display":
        if kind == "attach" and not value:
            return 'display: an attach session names the display it attaches to, e.g. ":0"'
        if kind == "rdp" and value:
            return "display: an rdp session's display is its agent's choice; leave display out"
    if field == "window_manager" and value and kind != "xvfb":
        return "window_manager: only an xvfb session starts a window manager (an rdp session shows the remote one)"
    if field in ("host", "username", "password"):
        if kind == "rdp" and not value:
            what = {"host": "the server it connects to", "username": "the user it logs on as", "password": "a password"}
            return f"{field}: an rdp session needs {what[field]}"
        if kind != "rdp" and value:
            return f"{field}: only an rdp session has a {field}"
    return None


def check_kind(kind: str, values: dict[str, Any]) -> None:
    """ValueError ("field: why") for the first of `values` that does not fit `kind`."""
    for field, value in values.items():
        problem = kind_problem(kind, field, value)
        if problem:
            raise ValueError(problem)


def check_password(value: SecretStr | None) -> SecretStr | None:
    """The client reads the password as one line of its standard input: 1 to 512 characters, no line break."""
    if value is None:
        return None
    secret = value.get_secret_value()
    if not 1 <= len(secret) <= 512:
        raise ValueError("password: 1 to 512 characters")
    if "\n" in secret or "\r" in secret or "\x00" in secret:
        raise ValueError("password: no line breaks or NUL characters (the client reads it as one line)")
    return value


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
    host: Host | None = None
    port: int | None = Field(None, ge=1, le=65535)
    username: Account | None = Field(None, min_length=1)
    password: SecretStr | None = Field(None, description="A new password (left out: the stored one stays)")
    domain: Account | None = None
    security: Security | None = None
    certificate: Certificate | None = None
    logoff: list[LogoffStep] | None = Field(None, max_length=20)

    @field_validator("password")
    @classmethod
    def _one_line(cls, value: SecretStr | None) -> SecretStr | None:
        return check_password(value)

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name != "display":
            raise ValueError(f"{info.field_name} cannot be null; leave it out to keep the stored value")
        return value


class Connection(BaseModel):
    """An rdp session's client as its agent reports it."""

    connects: int = 0
    drops: int = 0
    client_pid: int | None = None
    last_exit: str | None = Field(None, description="Why the client last ended (its exit code's meaning)")


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
    host: str | None = Field(None, description="rdp: the server (None for other kinds)")
    port: int | None = None
    username: str | None = None
    domain: str | None = None
    security: Security | None = None
    certificate: str | None = None
    logoff: list[str] | None = None
    has_password: bool = Field(False, description="rdp: whether a password is stored (it is never shown)")
    connect: bool = Field(
        True, description="rdp: whether it is to be connected (false after a disconnect or a logoff asked)"
    )
    connection: Connection | None = Field(None, description="rdp: its client's connects and drops, as its agent counts")


class LogoffRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wait_seconds: float = Field(20, ge=1, le=120, description="How long the client is given to exit after the steps")


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


class RdpSpec(TypedDict):
    """An rdp session's connection as its agent gets it (the brief of issue 17), with the server's client settings.
    It holds the password: it goes to the agent and nowhere else (no log line, no answer, no stored command)."""

    host: str
    port: int
    username: str
    domain: str
    password: str
    security: str
    certificate: str
    logoff: list[str]
    client: str
    extra_args: list[str]
    first_frame_seconds: float


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
    connect: bool
    rdp: RdpSpec | None


class AgentEvent(TypedDict):
    seq: int
    at: str
    state: str
    reason: str | None


class ConnectionStatus(TypedDict, total=False):
    """An rdp session's client as its agent counts it (`Status.connection`)."""

    connects: int
    drops: int
    client_pid: int | None
    last_exit: str | None


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
    connection: ConnectionStatus  # rdp only
