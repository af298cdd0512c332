"""Reads `robofleet.toml` and `ROBOFLEET_*` variables into `Settings`, with errors that point at the source."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from robofleet.errors import ConfigError
from robofleet.settings.model import Settings
from robofleet.settings.provenance import ENV_PREFIX, Origin, find_line, variable_for

CONFIG_ENV = "ROBOFLEET_CONFIG"
DEFAULT_CONFIG = Path("robofleet.toml")


def config_path(explicit: str | Path | None, environ: Mapping[str, str]) -> Path | None:
    """The file to read: `--config`, else ROBOFLEET_CONFIG, else ./robofleet.toml when present."""
    return config_choice(explicit, environ)[0]


def config_choice(explicit: str | Path | None, environ: Mapping[str, str]) -> tuple[Path | None, str]:
    """The file to read, as `config_path` says, and how it was named (or why there is none)."""
    if explicit:
        return Path(explicit), "--config"
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]), CONFIG_ENV
    if DEFAULT_CONFIG.is_file():
        return DEFAULT_CONFIG, f"./{DEFAULT_CONFIG} in the working directory"
    return None, f"no --config, no {CONFIG_ENV}, no ./{DEFAULT_CONFIG} in {Path.cwd()}"


def load_settings(explicit: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build the effective settings; raises ConfigError naming the key, the file and the line."""
    environ = os.environ if environ is None else environ
    path, named_by = config_choice(explicit, environ)
    data: dict[str, Any] = {}
    text = ""
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read settings file {path}: {exc.strerror}") from exc
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    if isinstance(data.get("sessions"), list):
        # `[[sessions]]`: the declared sessions (model.SessionsSettings), as a table here, so that a variable such
        # as ROBOFLEET_SESSIONS__CHECK_SECONDS is merged with them instead of replacing them.
        data["sessions"] = {"declared": data["sessions"]}
    try:
        if environ is os.environ:
            settings = Settings(**data)
        else:
            # Tests pass their own environment; pydantic-settings reads os.environ only.
            saved = dict(os.environ)
            os.environ.clear()
            os.environ.update(environ)
            try:
                settings = Settings(**data)
            finally:
                os.environ.clear()
                os.environ.update(saved)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, path, text, environ)) from None
    variables = frozenset(name for name in environ if name.upper().startswith(ENV_PREFIX))
    settings._origin = Origin(path, named_by, text, data, variables, Path.cwd())
    return settings


def describe_errors(exc: ValidationError, path: Path | None, text: str, environ: Mapping[str, str]) -> str:
    lines = ["invalid settings:"]
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        key = ".".join(loc)
        where = _env_source(loc, environ) or _file_source(loc, path, text) or "default"
        lines.append(f"  {key}: {error['msg']} ({where})")
    return "\n".join(lines)


def _env_source(loc: list[str], environ: Mapping[str, str]) -> str | None:
    name = variable_for(loc, environ)
    return None if name is None else f"environment variable {name}"


def _file_source(loc: list[str], path: Path | None, text: str) -> str | None:
    if path is None:
        return None
    line = find_line(text, loc)
    return f"{path} line {line}" if line else str(path)
