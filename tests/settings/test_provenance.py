"""Where each setting comes from, said the same way by `robofleet settings show` and the panel's Settings page (issue
15, defect 8): the file read (or that none was) on top, and after each value its source: an environment variable,
the file and line, or the default. The page names the command that prints the same, so the two can be compared
(under `make serve` the server reads examples/demo.toml, which a bare `robofleet settings show` does not)."""

from __future__ import annotations

import html
import re
import tomllib
from pathlib import Path

import pytest

from tests.conftest import RunCli, StartServe

CONFIG = """[server]
host = "127.0.0.1"

[agents]
grace_seconds = 45

[[robots]]
name = "tidy"
argv = ["true"]
env = { DB_PASSWORD = "hunter2-db-secret" }

[[sessions]]
name = "desk"
width = 1024
"""


def settings_file(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fleet.toml"
    path.write_text(CONFIG)
    return path


def inside(page: str, pattern: str) -> str:
    found = re.search(pattern, page, re.S)
    assert found is not None, pattern
    return html.unescape(found[1])


def test_settings_show_says_where_each_value_comes_from(tmp_path: Path, run_cli: RunCli) -> None:
    path = settings_file(tmp_path / "etc")
    shown = run_cli("settings", "show", "--config", str(path), env={"ROBOFLEET_SERVER__PORT": "18700"})
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"# settings file {path} (from --config)")
    assert "port = 18700  # environment variable ROBOFLEET_SERVER__PORT" in shown.stdout
    assert f'host = "127.0.0.1"  # {path} line 2' in shown.stdout
    assert f"grace_seconds = 45  # {path} line 5" in shown.stdout
    assert "heartbeat_seconds = 10.0  # default" in shown.stdout
    assert f"[[robots]]  # {path} line 7" in shown.stdout
    # A list the loader moves under its section's settings says the file's line all the same, once, for the list.
    assert f"[[sessions.declared]]  # {path} line 12" in shown.stdout
    assert "width = 1024\n" in shown.stdout and "record_seconds = 0  # default" in shown.stdout
    assert "hunter2-db-secret" not in shown.stdout  # masked as before
    assert tomllib.loads(shown.stdout)["server"]["port"] == 18700  # still TOML


def test_settings_show_without_a_file_says_so(tmp_path: Path, run_cli: RunCli) -> None:
    shown = run_cli("settings", "show", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    first = shown.stdout.splitlines()[0]
    assert first.startswith("# no settings file") and str(tmp_path) in first and "robofleet.toml" in first
    assert "port = 8080  # default" in shown.stdout


@pytest.mark.slow
def test_the_settings_page_shows_the_same_and_names_the_command(
    tmp_path: Path, start_serve: StartServe, run_cli: RunCli
) -> None:
    path = settings_file(tmp_path / "etc")
    serve = start_serve(env={"ROBOFLEET_CONFIG": str(path)})
    page = serve.api().get("/panel/settings")
    assert page.status_code == 200
    origin = inside(page.text, r'<p class="muted" id="settings-origin">(.*?)</p>')
    assert f"settings file {path} (from ROBOFLEET_CONFIG)" in " ".join(origin.split())
    command = inside(page.text, r'<code id="settings-command">(.*?)</code>')
    assert command == f"robofleet settings show --config {path}"
    shown_on_page = inside(page.text, r'<pre class="code" id="settings-toml">(.*?)</pre>')
    assert f"port = {serve.port}  # environment variable ROBOFLEET_SERVER__PORT" in shown_on_page

    # The command it names, run from elsewhere with the server's variables, prints the same values and sources.
    variables = {"ROBOFLEET_SERVER__PORT": str(serve.port)}
    printed = run_cli(*command.split()[1:], cwd=tmp_path, env=variables)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.splitlines()[1:] == shown_on_page.splitlines()[1:]
