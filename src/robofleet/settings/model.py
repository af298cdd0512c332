"""The typed settings tree: one section per domain, every key known, every value checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from robofleet.settings.provenance import Origin


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    public_url: str | None = None
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest request body accepted")
    metrics_public: bool = Field(False, description="Serve /metrics without a token (for scrapers)")


class StoreSettings(Section):
    data_dir: Path = Path("robofleet-data")
    url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite in data_dir")
    connect_timeout: int = Field(5, ge=1, le=120)
    pool_size: int = Field(10, ge=1, le=200)

    def effective_url(self) -> str:
        if self.url:
            return self.url
        return f"sqlite:///{(self.data_dir / 'robofleet.db').resolve()}"

    @field_validator("url")
    @classmethod
    def _known_dialect(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("sqlite", "postgresql+psycopg")):
            raise ValueError("store.url must start with 'sqlite' or 'postgresql+psycopg'")
        return url


class AuthSettings(Section):
    session_lifetime_minutes: int = Field(480, ge=1)
    lockout_threshold: int = Field(5, ge=1, description="Failed logins in a row that lock an account")
    lockout_minutes: int = Field(15, ge=1)
    address_failure_limit: int = Field(
        20, ge=1, description="Failed logins from one address, whatever the usernames, before it waits lockout_minutes"
    )
    cookie_secure: Literal["auto", "always", "never"] = Field(
        "auto", description="auto: Secure over https, with an https public_url, and on loopback hosts"
    )
    initial_admin: str = "admin"


class LogsSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    retention_days: int = Field(30, ge=1, le=36_500)  # a century (a cutoff must stay a date)
    max_rows: int = Field(10_000_000, ge=1000)
    max_message_bytes: int = Field(16_384, ge=256, le=1_048_576, description="Longer messages are truncated")
    max_batch: int = Field(5000, ge=1, le=100_000, description="Most records in one POST /api/v1/logs")
    housekeeping_seconds: float = Field(300, gt=0, description="How often retention runs")
    store_own: bool = Field(True, description="Also keep the orchestrator's own log lines in the store")


class ActivitiesSettings(Section):
    max_concurrent: int = Field(8, ge=1, le=1000)
    max_batch: int = Field(100, ge=1, le=10_000)
    modules: list[str] = Field(default_factory=list, description="Python modules whose register(registry) adds actions")


class AgentsSettings(Section):
    local: bool = True
    grace_seconds: int = Field(60, ge=1)
    heartbeat_seconds: float = Field(
        10, ge=0.1, le=300, description="How often remote agents report; one silent for three of these is offline"
    )
    allowed_roots: list[Path] = Field(default_factory=list)


class QueueingSettings(Section):
    """How work queues behave on this orchestrator (the queues themselves are `[[queues]]`)."""

    max_payload_bytes: int = Field(
        262_144, ge=1024, le=16_777_216, description="Largest item payload or output, as compact JSON"
    )
    max_batch: int = Field(10_000, ge=1, le=100_000, description="Most items in one add")
    max_wait_seconds: float = Field(60, ge=0, le=600, description="Longest long-poll of items/next?wait=")
    lease_check_seconds: float = Field(
        1.0, gt=0, le=60, description="The leader's pass for expired leases (it also comes at the next known expiry)"
    )
    housekeeping_seconds: float = Field(300, gt=0, description="How often retention deletes old finished items")


class SessionConfig(Section):
    """A graphical session declared in the settings file (`[[sessions]]`); the fields of POST /api/v1/sessions."""

    name: str
    agent: str = "local"
    kind: str = "xvfb"
    display: str | None = None
    width: int = 1280
    height: int = 800
    depth: int = 24
    window_manager: bool = False
    restart: str = "always"
    record_seconds: int | None = None  # None: sessions.record_seconds
    enabled: bool = True
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    # kind "rdp": the remote desktop it shows (sessions.schemas checks them).
    host: str | None = None
    port: int = 3389
    username: str | None = None
    password: SecretStr | None = Field(None, description="rdp: the user's password; never shown")
    domain: str = ""
    security: str = "auto"
    certificate: str = "tofu"
    logoff: list[str] | None = None  # None: the Windows steps


class RdpSettings(Section):
    """How agents connect rdp sessions: sent to them with each session (the agents have no settings of their own)."""

    client: str = Field("xfreerdp", min_length=1, description="The RDP client: a path, or a name on the agent's PATH")
    extra_args: list[str] = Field(
        default_factory=list, description="Appended to the client's arguments as given (e.g. /gfx, /network:lan)"
    )
    first_frame_seconds: float = Field(
        20,
        ge=5,
        le=300,
        description="How long a connect may take to paint the remote desktop before it counts as failed (a login "
        "refused shows a dialog, not a desktop)",
    )


class SessionsSettings(Section):
    """How graphical sessions are kept. The sessions themselves are `[[sessions]]` in the file: TOML cannot hold a
    `[sessions]` table and a `[[sessions]]` list at once, so a file that sets these keys too declares its sessions
    as `[[sessions.declared]]` under `[sessions]` (the settings read a bare `[[sessions]]` list as `declared`)."""

    check_seconds: float = Field(
        2, gt=0, le=300, description="How often each session's state is asked of its agent (and the agent checks it)"
    )
    window_manager: list[str] = Field(
        default_factory=lambda: ["openbox"],
        min_length=1,
        description="The command started in an xvfb session whose window_manager is true",
    )
    record_seconds: int = Field(
        0, ge=0, le=120, description="A new session's default: the last N s kept at 1 frame/s for a failed run"
    )
    session_wait_seconds: float = Field(
        15, gt=0, le=300, description="How long a run waits for its session to be healthy before it fails"
    )
    evidence_retention_days: int = Field(
        14, ge=1, le=36_500, description="Failed runs' evidence, and sessions' history, kept this long"
    )
    rdp: RdpSettings = Field(default_factory=RdpSettings)
    declared: list[SessionConfig] = Field(default_factory=list, description="The sessions of the settings file")


class SmtpSettings(Section):
    """The mail server alerts are sent through (a channel of kind email names only its recipients)."""

    host: str | None = Field(None, description="Unset: e-mail channels fail each attempt, saying so")
    port: int = Field(25, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = Field("none", description="starttls: upgrade; ssl: TLS at once")
    user: str | None = None
    password: SecretStr | None = Field(None, description="Never shown: masked in every output")
    from_address: str = "robofleet@localhost"
    timeout_seconds: float = Field(10, gt=0, le=300)


class AlertingSettings(Section):
    """How alerts are detected and delivered (the rules are `[[alerts]]`, the channels `[[alert_channels]]`)."""

    check_seconds: float = Field(5, gt=0, le=3600, description="How often the leader looks for what to alert on")
    max_attempts: int = Field(8, ge=1, le=100, description="Attempts of one delivery before it is given up")
    retry_backoff_seconds: float = Field(30, gt=0, le=86_400, description="Wait before the 2nd attempt, doubled after")
    webhook_timeout_seconds: float = Field(10, gt=0, le=300)
    retention_days: int = Field(90, ge=1, le=36_500, description="Alerts and their delivery log kept this long")
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)


class ConsoleSettings(Section):
    python_enabled: bool = False


class ClientSettings(Section):
    """How the CLI's server commands (`robofleet activity run`) reach an orchestrator."""

    url: str | None = Field(None, description="Default: server.public_url, else http://server.host:server.port")
    token: SecretStr | None = Field(None, description="API token; or pass --token")


class RobotConfig(Section):
    """A robot declared in the settings file; the fields of POST /api/v1/robots."""

    name: str
    argv: list[str]
    agent: str = "local"
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    session: str | None = None
    safe_stop_timeout: float = 30.0
    max_runtime: float | None = None
    restart: dict[str, Any] = Field(default_factory=dict)
    max_concurrent: int = 1
    tags: list[str] = Field(default_factory=list)
    description: str = ""
    keep_leftovers: bool = False
    log_format: str = "auto"  # auto, plain, or a regex with a group (?P<level>...): robots.schemas checks it


class ScheduleConfig(Section):
    """A schedule declared in the settings file; the fields of POST /api/v1/schedules."""

    name: str
    target: dict[str, Any]
    trigger: dict[str, Any]
    timezone: str = "UTC"
    calendars: list[str] = Field(default_factory=list)
    enabled: bool = True
    misfire: dict[str, Any] = Field(default_factory=dict)
    overlap: str = "skip"
    jitter_seconds: float = 0.0
    description: str = ""
    tags: list[str] = Field(default_factory=list)


class CalendarConfig(Section):
    """A calendar of excluded days declared in the settings file; the fields of POST /api/v1/calendars."""

    name: str
    dates: list[str] = Field(default_factory=list)
    holidays: list[dict[str, Any]] = Field(default_factory=list)
    description: str = ""


class QueueConfig(Section):
    """A queue declared in the settings file; the fields of POST /api/v1/queues."""

    name: str
    description: str = ""
    max_retries: int = 3
    retry_backoff_seconds: float = 30.0
    lease_seconds: float = 300.0
    unique_references: bool = False
    sla_minutes: int | None = None
    retention_days: int = 30
    tags: list[str] = Field(default_factory=list)


class AlertRuleConfig(Section):
    """An alert rule declared in the settings file; the fields of POST /api/v1/alerts/rules."""

    name: str
    kind: str
    match: str = "*"
    threshold: float | None = None
    cooldown_seconds: float = 300.0
    channels: list[str] = Field(default_factory=list)
    enabled: bool = True
    description: str = ""


class AlertChannelConfig(Section):
    """An alert channel declared in the settings file; the fields of POST /api/v1/alerts/channels."""

    name: str
    kind: str
    recipients: list[str] = Field(default_factory=list)
    url: str | None = None
    secret: SecretStr | None = Field(None, description="The webhook's HMAC key; never shown")
    enabled: bool = True
    description: str = ""


class RoleConfig(Section):
    name: str
    description: str = ""
    permissions: list[str] = Field(default_factory=list)
    robot_globs: list[str] = Field(default_factory=list)
    robot_tags: list[str] = Field(default_factory=list)


class UserConfig(Section):
    username: str
    roles: list[str] = Field(default_factory=list)
    password_hash: SecretStr | None = Field(None, description="argon2 hash, e.g. from `robofleet user hash`")
    disabled: bool = False


class Settings(BaseSettings):
    """Built once at start and passed to whatever needs it; nothing else reads files or the environment."""

    model_config = SettingsConfigDict(
        env_prefix="ROBOFLEET_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    server: ServerSettings = Field(default_factory=ServerSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    logs: LogsSettings = Field(default_factory=LogsSettings)
    activities: ActivitiesSettings = Field(default_factory=ActivitiesSettings)
    agents: AgentsSettings = Field(default_factory=AgentsSettings)
    queueing: QueueingSettings = Field(default_factory=QueueingSettings)
    alerting: AlertingSettings = Field(default_factory=AlertingSettings)
    sessions: SessionsSettings = Field(default_factory=SessionsSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    client: ClientSettings = Field(default_factory=ClientSettings)
    roles: list[RoleConfig] = Field(default_factory=list)
    robots: list[RobotConfig] = Field(default_factory=list)
    schedules: list[ScheduleConfig] = Field(default_factory=list)
    calendars: list[CalendarConfig] = Field(default_factory=list)
    queues: list[QueueConfig] = Field(default_factory=list)
    alerts: list[AlertRuleConfig] = Field(default_factory=list)
    alert_channels: list[AlertChannelConfig] = Field(default_factory=list)
    users: list[UserConfig] = Field(default_factory=list)

    @field_validator("sessions", mode="before")
    @classmethod
    def _sessions_list(cls, value: Any) -> Any:
        # `[[sessions]]` in the file: the declared sessions, the keys at their defaults (see SessionsSettings).
        return {"declared": value} if isinstance(value, list) else value

    # Where they were read from (settings/provenance.py), set by the loader; None for settings built in code.
    _origin: Origin | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's content arrives as init kwargs; variables must win over it.
        return (env_settings, init_settings)
