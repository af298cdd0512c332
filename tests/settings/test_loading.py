"""The settings tree: file, variables, and errors that name the key and where it came from."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from robofleet.errors import ConfigError
from robofleet.settings import load_settings
from robofleet.settings.render import as_toml, masked_tree
from tests.conftest import RunCli


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "robofleet.toml"
    path.write_text(text)
    return path


def test_defaults_need_no_file(tmp_path: Path) -> None:
    settings = load_settings(None, environ={})
    assert settings.server.port == 8080
    assert settings.store.effective_url().startswith("sqlite:///")
    assert settings.store.effective_url().endswith("robofleet-data/robofleet.db")


def test_file_then_variables_win(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nport = 9000\nhost = "0.0.0.0"\n[auth]\nlockout_threshold = 7\n')
    settings = load_settings(path, environ={"ROBOFLEET_SERVER__PORT": "9100"})
    assert settings.server.port == 9100
    assert settings.server.host == "0.0.0.0"
    assert settings.auth.lockout_threshold == 7


def test_config_path_from_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "[logs]\nretention_days = 3\n")
    assert load_settings(None, environ={"ROBOFLEET_CONFIG": str(path)}).logs.retention_days == 3


def test_unknown_key_names_key_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nhost = "127.0.0.1"\nprot = 8080\n')
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})
    message = str(error.value)
    assert "server.prot" in message and str(path) in message and "line 3" in message


def test_wrong_type_names_key_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '\n[auth]\nlockout_minutes = "soon"\n')
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})
    assert "auth.lockout_minutes" in str(error.value) and "line 3" in str(error.value)


def test_unknown_section_and_bad_list_item(tmp_path: Path) -> None:
    path = write(tmp_path, '[[roles]]\nname = "a"\n[[roles]]\nname = "b"\npermisions = []\n[robotz]\nx = 1\n')
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})
    message = str(error.value)
    assert "roles.1.permisions" in message and "line 5" in message
    assert "robotz" in message and "line 6" in message


def test_bad_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(None, environ={"ROBOFLEET_SERVER__PORT": "eighty"})
    assert "ROBOFLEET_SERVER__PORT" in str(error.value)


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "[server\nport = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path, environ={})


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_show_masks_secrets(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[store]\nurl = "postgresql+psycopg://robo:hunter2-secret@db:5432/fleet"\n'
        '[[users]]\nusername = "bot"\npassword_hash = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"\n',
    )
    settings = load_settings(path, environ={})
    rendered = as_toml(settings)
    assert "hunter2-secret" not in rendered and "aGFzaA" not in rendered
    assert tomllib.loads(rendered)["store"]["url"] == "postgresql+psycopg://robo:***@db:5432/fleet"
    assert masked_tree(settings)["users"][0]["password_hash"] == "********"


def test_cli_settings_show_and_its_errors(tmp_path: Path, run_cli: RunCli) -> None:
    good = write(tmp_path, "[server]\nport = 9001\n")
    shown = run_cli("settings", "show", "--config", str(good))
    assert shown.returncode == 0, shown.stderr
    assert tomllib.loads(shown.stdout)["server"]["port"] == 9001
    bad = write(tmp_path, "[server]\nport = -4\n")
    refused = run_cli("settings", "show", "--config", str(bad))
    assert refused.returncode == 2
    assert "server.port" in refused.stderr and "line 2" in refused.stderr
