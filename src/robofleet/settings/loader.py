"""Reads `robofleet.toml` and `ROBOFLEET_*` variables into `Settings`, with errors that point at the source."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from robofleet.errors import ConfigError
from robofleet.settings.model import Settings

CONFIG_ENV = "ROBOFLEET_CONFIG"
DEFAULT_CONFIG = Path("robofleet.toml")


def config_path(explicit: str | Path | None, environ: Mapping[str, str]) -> Path | None:
    """The file to read: `--config`, else ROBOFLEET_CONFIG, else ./robofleet.toml when present."""
    if explicit:
        return Path(explicit)
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def load_settings(explicit: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build the effective settings; raises ConfigError naming the key, the file and the line."""
    environ = os.environ if environ is None else environ
    path = config_path(explicit, environ)
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
    try:
        if environ is os.environ:
            return Settings(**data)
        # Tests pass their own environment; pydantic-settings reads os.environ only.
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(environ)
        try:
            return Settings(**data)
        finally:
            os.environ.clear()
            os.environ.update(saved)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, path, text, environ)) from None


def describe_errors(exc: ValidationError, path: Path | None, text: str, environ: Mapping[str, str]) -> str:
    lines = ["invalid settings:"]
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        key = ".".join(loc)
        where = _env_source(loc, environ) or _file_source(loc, path, text) or "default"
        lines.append(f"  {key}: {error['msg']} ({where})")
    return "\n".join(lines)


def _env_source(loc: list[str], environ: Mapping[str, str]) -> str | None:
    for depth in range(len(loc), 0, -1):
        name = "ROBOFLEET_" + "__".join(loc[:depth]).upper()
        if any(key.upper() == name for key in environ):
            return f"environment variable {name}"
    return None


def _file_source(loc: list[str], path: Path | None, text: str) -> str | None:
    if path is None:
        return None
    line = find_line(text, loc)
    return f"{path} line {line}" if line else str(path)


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-]+)\s*\]\]?")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


def find_line(text: str, loc: list[str]) -> int | None:
    """Best-effort line number of a key such as ['server', 'port'] or ['roles', '1', 'name']."""
    table: list[str] = []
    array_counts: dict[str, int] = {}
    best: int | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(raw)
        if header:
            name = header.group(2)
            if header.group(1) == "[[":
                array_counts[name] = array_counts.get(name, -1) + 1
                table = [*name.split("."), str(array_counts[name])]
            else:
                table = name.split(".")
            if table == loc[: len(table)] and len(table) == len(loc):
                best = number
            continue
        key = _KEY.match(raw)
        if not key:
            continue
        full = [*table, *key.group(1).split(".")]
        if full == loc[: len(full)] and (best is None or len(full) >= 1):
            if full == loc:
                return number
            best = best or number
    return best
