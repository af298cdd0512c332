"""The `robofleet` command: serve, migrate, settings, users and tokens. Store commands act on the store that
the same settings name, so run from the folder of `serve` they find the same `./robofleet-data`."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from sqlalchemy.exc import SQLAlchemyError

from robofleet.activities import cli as activity_cli
from robofleet.errors import ConfigError, RobofleetError
from robofleet.logs import cli as logs_cli
from robofleet.queues import cli as queue_cli
from robofleet.robots import cli as runs_cli
from robofleet.schedules import cli as schedule_cli
from robofleet.sessions import cli as session_cli
from robofleet.settings import Settings, load_settings
from robofleet.store import Store

T = TypeVar("T")

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Orchestrate a fleet of software robots.")
user_app = typer.Typer(no_args_is_help=True, help="Manage users.")
token_app = typer.Typer(no_args_is_help=True, help="Manage API tokens.")
settings_app = typer.Typer(no_args_is_help=True, help="Inspect the settings.")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(settings_app, name="settings")
app.add_typer(activity_cli.app, name="activity")
app.add_typer(schedule_cli.app, name="schedule")
app.add_typer(queue_cli.app, name="queue")
app.add_typer(session_cli.app, name="session")
app.command("logs")(logs_cli.logs)
app.command("runs")(runs_cli.runs)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Settings file (default: $ROBOFLEET_CONFIG or ./robofleet.toml)")
]


class State:
    config: Path | None = None


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"robofleet: {message}", err=True)
    raise typer.Exit(code)


def settings() -> Settings:
    try:
        return load_settings(State.config)
    except ConfigError as exc:
        fail(str(exc), 2)


def open_store() -> Store:
    """The store named by the settings, migrated and with its built-in roles."""
    from robofleet.auth.bootstrap import ensure_builtin_roles
    from robofleet.store.migrate import upgrade

    store = Store(settings().store)
    try:
        upgrade(store.engine)
        ensure_builtin_roles(store)
    except (SQLAlchemyError, RobofleetError) as exc:
        fail(
            f"cannot open the store {store.engine.url.render_as_string(hide_password=True)}: "
            f"{str(getattr(exc, 'orig', exc)).strip()}"
        )
    return store


def read_password(password_stdin: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            fail("no password on standard input")
        return line
    if not sys.stdin.isatty():
        fail("give the password on standard input with --password-stdin")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@app.callback()
def root(ctx: typer.Context, config: ConfigOption = None) -> None:
    State.config = config
    ctx.obj = settings  # domain sub-commands load the settings through this, lazily


@app.command()
def serve(config: ConfigOption = None) -> None:
    """Start the orchestrator: migrate the store, then serve the API and the panel."""
    from robofleet.server import run

    State.config = config or State.config
    effective = settings()
    try:
        run(effective, State.config)
    except ConfigError as exc:
        fail(str(exc), 2)


AGENT_TOKEN_ENV = "ROBOFLEET_AGENT_TOKEN"


@app.command()
def agent(
    server: Annotated[str, typer.Option("--server", help="Orchestrator URL, e.g. https://rpa.example")],
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            help=f"A file (mode 0600) holding the agent's token; or set {AGENT_TOKEN_ENV}. The token is made with "
            "`robofleet token create --user <agent user> --agent <name>`",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help=f"The token itself: every local user sees it in ps; prefer --token-file or {AGENT_TOKEN_ENV}",
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Agent name, the one its token is bound to (default: this host's)")
    ] = None,
    state_dir: Annotated[Path, typer.Option("--state-dir", help="Where runs are tracked")] = Path("robofleet-agent"),
    allowed_root: Annotated[list[Path] | None, typer.Option("--allowed-root", help="Folder files may move in")] = None,
) -> None:
    """Run an agent: connect out to the orchestrator and run robots on this machine."""
    import asyncio
    import logging
    import os
    import socket

    from robofleet.agents.client import AgentClient

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Read, then removed from the environment: the robots this agent starts inherit it.
    secret = agent_token(token_file, token, os.environ.pop(AGENT_TOKEN_ENV, None))
    client = AgentClient(server, secret, name or socket.gethostname(), state_dir, allowed_root or [])
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(client.run_forever())


def agent_token(token_file: Path | None, token: str | None, from_environment: str | None) -> str:
    """The agent's token from exactly one of --token-file, --token and the environment; exits with a message
    when none or several are given, or the file cannot be read."""
    given = [source for source, value in (("--token-file", token_file), ("--token", token)) if value is not None]
    if len(given) > 1:
        fail("give the token one way: --token-file or --token")
    if token_file is not None:
        try:
            mode = token_file.stat().st_mode
            secret = token_file.read_text().strip()
        except OSError as exc:
            fail(f"cannot read the token file {token_file}: {exc.strerror}")
        # As ssh does with a key: a token others can read is a token others have.
        if mode & 0o077:
            fail(f"the token file {token_file} is open to other users (mode {mode & 0o777:o}): chmod 600 it")
    else:
        if token is not None:
            typer.echo(
                "robofleet: warning: --token shows the token to every local user (ps); use --token-file", err=True
            )
        secret = (token if token is not None else from_environment or "").strip()
    if not secret:
        fail(f"no token: give --token-file PATH or set {AGENT_TOKEN_ENV}")
    return secret


@app.command()
def migrate(config: ConfigOption = None) -> None:
    """Apply pending store migrations."""
    from robofleet.store.migrate import current_revision, upgrade

    State.config = config or State.config
    store = Store(settings().store)
    try:
        upgrade(store.engine)
        typer.echo(f"store at revision {current_revision(store.engine)}")
    except SQLAlchemyError as exc:
        fail(f"migration failed: {str(getattr(exc, 'orig', exc)).strip()}")


@settings_app.command("show")
def settings_show(config: ConfigOption = None) -> None:
    """Print the effective settings as TOML, secrets masked."""
    from robofleet.settings.render import as_toml

    State.config = config or State.config
    typer.echo(as_toml(settings()), nl=False)


def run_service(action: Callable[[], T]) -> T:
    try:
        return action()
    except RobofleetError as exc:
        fail(exc.message, 1)


@user_app.command("create")
def user_create(
    username: str,
    role: Annotated[list[str] | None, typer.Option("--role", "-r", help="Role to give; repeatable")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
    disabled: bool = False,
) -> None:
    """Create a user."""
    from pydantic import ValidationError

    from robofleet.auth.principal import cli_principal
    from robofleet.auth.schemas import UserCreate
    from robofleet.auth.users import create_user

    store = open_store()
    password = read_password(password_stdin)
    try:
        data = UserCreate(username=username, password=password, roles=role or [], disabled=disabled)
    except ValidationError as exc:
        fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
    user = run_service(lambda: create_user(store, cli_principal(), data))
    typer.echo(f"created user {user.username} with roles: {', '.join(user.roles) or 'none'}")


@user_app.command("list")
def user_list() -> None:
    """List users."""
    from robofleet.auth.principal import cli_principal
    from robofleet.auth.users import list_users

    store = open_store()
    cursor: str | None = None
    typer.echo(f"{'USERNAME':24} {'ROLES':30} STATUS")
    while True:
        after = cursor
        page = run_service(lambda: list_users(store, cli_principal(), limit=500, cursor=after))  # noqa: B023
        for user in page.items:
            status = "disabled" if user.disabled else "active"
            typer.echo(f"{user.username:24} {','.join(user.roles):30} {status}")
        cursor = page.next_cursor
        if not cursor:
            break


@user_app.command("set-password")
def user_set_password(
    username: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
) -> None:
    """Set a user's password; clears a lockout and ends the user's panel sessions."""
    from robofleet.auth.principal import cli_principal
    from robofleet.auth.schemas import UserUpdate
    from robofleet.auth.users import update_user

    store = open_store()
    password = read_password(password_stdin)
    if len(password) < 8:
        fail("password must have at least 8 characters")
    run_service(lambda: update_user(store, cli_principal(), username, UserUpdate(password=password)))
    typer.echo(f"password of {username} changed")


@user_app.command("disable")
def user_disable(username: str) -> None:
    """Disable a user: logins, sessions and tokens stop working."""
    _set_disabled(username, True)


@user_app.command("enable")
def user_enable(username: str) -> None:
    """Enable a disabled user."""
    _set_disabled(username, False)


def _set_disabled(username: str, disabled: bool) -> None:
    from robofleet.auth.principal import cli_principal
    from robofleet.auth.schemas import UserUpdate
    from robofleet.auth.users import update_user

    store = open_store()
    run_service(lambda: update_user(store, cli_principal(), username, UserUpdate(disabled=disabled)))
    typer.echo(f"{username} {'disabled' if disabled else 'enabled'}")


@user_app.command("hash")
def user_hash(
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
) -> None:
    """Print the argon2 hash of a password, for `password_hash` of a user declared in the settings file."""
    from robofleet.auth.passwords import hash_password

    password = read_password(password_stdin)
    typer.echo(run_service(lambda: hash_password(password)))


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option("--user", "-u", help="Owner of the token")],
    name: Annotated[str, typer.Option(help="What the token is for")] = "",
    scope: Annotated[list[str] | None, typer.Option("--scope", help="Permission to keep; repeatable")] = None,
    expires_in_days: Annotated[float | None, typer.Option(help="Lifetime in days (default: no expiry)")] = None,
    agent: Annotated[
        str | None, typer.Option(help="The agent name this token connects as (the name then belongs to the user)")
    ] = None,
) -> None:
    """Create an API token; its secret is printed alone on the last line."""
    from pydantic import ValidationError

    from robofleet.auth.principal import cli_principal
    from robofleet.auth.schemas import TokenCreate
    from robofleet.auth.tokens import create_token

    store = open_store()
    try:
        data = TokenCreate(
            user=user, name=name, scopes=scope or [], expires_in_days=expires_in_days, agent=agent or None
        )
    except ValidationError as exc:
        fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
    created = run_service(lambda: create_token(store, cli_principal(), data))
    expiry = created.expires_at.isoformat() if created.expires_at else "never"
    typer.echo(f"token {created.id} for {created.user}, expires {expiry}; shown once:")
    typer.echo(created.token)


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    """Revoke a token by its id."""
    from robofleet.auth.principal import cli_principal
    from robofleet.auth.tokens import revoke_token

    store = open_store()
    run_service(lambda: revoke_token(store, cli_principal(), token_id))
    typer.echo(f"token {token_id} revoked")


@token_app.command("list")
def token_list(user: Annotated[str | None, typer.Option("--user", "-u")] = None) -> None:
    """List tokens (never their secrets)."""
    from robofleet.auth.principal import cli_principal
    from robofleet.auth.tokens import list_tokens

    store = open_store()
    page = run_service(lambda: list_tokens(store, cli_principal(), user=user, limit=500))
    typer.echo(f"{'ID':14} {'USER':20} {'NAME':20} {'EXPIRES':26} STATE")
    for token in page.items:
        state = "revoked" if token.revoked_at else "active"
        expires = token.expires_at.isoformat(timespec="seconds") if token.expires_at else "never"
        typer.echo(f"{token.id:14} {token.user:20} {token.name:20} {expires:26} {state}")


def main() -> None:
    app(prog_name="robofleet")
