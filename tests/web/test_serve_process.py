"""`robofleet serve` as a real subprocess on the embedded store: first start, restarts, kill -9, bad settings."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from robofleet.server import GRACEFUL_STOP_SECONDS
from tests.conftest import CliResult, RunCli, ServeProcess, StartServe

pytestmark = pytest.mark.slow


def login(serve: ServeProcess, username: str, password: str) -> httpx.Response:
    return httpx.post(f"{serve.url}/api/v1/auth/login", json={"username": username, "password": password}, timeout=10)


def follow_stream(url: str, headers: dict[str, str], opened: threading.Event) -> str:
    """Reads an SSE stream until the server ends it; `opened` is set once it answered."""
    try:
        with httpx.stream("GET", url, headers=headers, timeout=30) as response:
            assert response.status_code == 200
            opened.set()
            for _ in response.iter_lines():
                pass
    except httpx.HTTPError as exc:  # cut by the server's stop
        return repr(exc)
    return "ended"


def test_embedded_store_first_start_restart_and_kill_9(tmp_path: Path, start_serve: StartServe) -> None:
    site = tmp_path / "site"
    serve = start_serve(site, split_output=True)  # what serve prints for its user (stdout), apart from its log
    assert httpx.get(f"{serve.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{serve.url}/readyz")
    assert ready.status_code == 200 and ready.json()["store"] == "sqlite"
    assert (site / "robofleet-data" / "robofleet.db").is_file()

    password_file = site / "robofleet-data" / "initial-admin-password"
    assert password_file.stat().st_mode & 0o777 == 0o600
    first_bytes, first_mtime = password_file.read_bytes(), password_file.stat().st_mtime_ns
    password = serve.admin_password()
    assert len(password) >= 16
    # Printed once, on stdout, in the banner; never in the log.
    assert serve.stdout().count(password) == 1 and serve.stdout().count("First start") == 1
    assert password not in serve.stderr()

    signed_in = login(serve, "admin", password)
    assert signed_in.status_code == 200 and "robofleet_session" in signed_in.headers["set-cookie"]
    assert login(serve, "admin", password + "x").status_code == 401

    headers = {"Authorization": f"Bearer {serve.token('admin')}"}
    created = httpx.post(
        f"{serve.url}/api/v1/users",
        headers=headers,
        json={"username": "keeper", "password": "keeper-password", "roles": ["viewer"]},
    )
    assert created.status_code == 201, created.text
    assert created.json()["username"] == "keeper" and created.json()["roles"] == ["viewer"]
    kept_logs = httpx.get(f"{serve.url}/api/v1/logs", headers=headers, params={"q": password})
    assert kept_logs.status_code == 200 and kept_logs.json()["items"] == []

    # SIGTERM: a graceful stop (uvicorn re-raises the signal after shutting down, hence -15 or 0), prompt even
    # with a live stream open, as a browser left on the panel holds one.
    with ThreadPoolExecutor(1) as pool:
        opened = threading.Event()
        streaming = pool.submit(follow_stream, f"{serve.url}/api/v1/logs/stream", headers, opened)
        assert opened.wait(10), streaming.result()
        began = time.monotonic()
        assert serve.stop(timeout=30) in (0, -signal.SIGTERM)
        assert time.monotonic() - began < GRACEFUL_STOP_SECONDS + 5
    serve.start(wait="/readyz")
    kept = httpx.get(f"{serve.url}/api/v1/users/keeper", headers=headers)
    assert kept.status_code == 200 and kept.json()["roles"] == ["viewer"]
    assert login(serve, "keeper", "keeper-password").status_code == 200
    assert login(serve, "admin", password).status_code == 200
    assert serve.stdout().count("First start") == 1 and serve.stdout().count(password) == 1
    assert password_file.read_bytes() == first_bytes and password_file.stat().st_mtime_ns == first_mtime
    assert password_file.stat().st_mode & 0o777 == 0o600

    # kill -9 right after the 201s: whatever was acknowledged is durable.
    def create(index: int) -> httpx.Response:
        return httpx.post(
            f"{serve.url}/api/v1/users",
            headers=headers,
            json={"username": f"acked{index}", "password": f"acked-password-{index}"},
            timeout=30,
        )

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(create, range(8)))
    last = create(8)
    assert serve.kill() == -signal.SIGKILL
    acknowledged = [r.json()["username"] for r in [*answers, last] if r.status_code == 201]
    assert len(acknowledged) == 9, [r.text for r in answers]

    serve.start(wait="/readyz")
    for username in ["keeper", *acknowledged]:
        assert httpx.get(f"{serve.url}/api/v1/users/{username}", headers=headers).status_code == 200, username
    assert login(serve, "acked8", "acked-password-8").status_code == 200
    assert serve.stdout().count("First start") == 1
    assert password_file.read_bytes() == first_bytes


def serve_once(run_cli: RunCli, cwd: Path, *args: str, env: dict[str, str] | None = None) -> CliResult:
    """`robofleet [ARGS] serve` with no ROBOFLEET_* variable but `env`, expected to stop before serving."""
    return run_cli(*args, "serve", cwd=cwd, env=env)


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("[server]\nprot = 1\n", "server.prot", 2),
        ('[server]\nhost = "127.0.0.1"\nport = "abc"\n', "server.port", 3),
        ("# site settings\n\n[store]\npool_size = 0\n\n[server]\nport = 8080\n", "store.pool_size", 4),
    ],
)
def test_an_invalid_settings_file_stops_serve_naming_key_file_and_line(
    tmp_path: Path, text: str, key: str, line: int, run_cli: RunCli
) -> None:
    settings = tmp_path / "etc" / "site.toml"
    settings.parent.mkdir()
    settings.write_text(text)
    work = tmp_path / "work"
    work.mkdir()
    for args in (("--config", str(settings)), ()):
        if not args:  # the same mistake in ./robofleet.toml, found without --config
            (work / "robofleet.toml").write_text(text)
        result = serve_once(run_cli, work, *args)
        named = str(settings) if args else "robofleet.toml"
        assert result.returncode == 2, result.stdout + result.stderr
        assert key in result.stderr and f"{named} line {line}" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and "robofleet serving" not in result.stdout
        assert not (work / "robofleet-data").exists()  # stopped before touching the store


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [("ROBOFLEET_SERVER__PROT", "1", "server.prot"), ("ROBOFLEET_SERVER__PORT", "abc", "server.port")],
)
def test_an_invalid_environment_variable_stops_serve_naming_it(
    tmp_path: Path, variable: str, value: str, key: str, run_cli: RunCli
) -> None:
    (tmp_path / "robofleet.toml").write_text("[server]\nport = 8080\n")  # the variable overrides the file
    result = serve_once(run_cli, tmp_path, env={variable: value})
    assert result.returncode == 2, result.stdout + result.stderr
    assert key in result.stderr and variable in result.stderr and "robofleet.toml" not in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "robofleet-data").exists()
