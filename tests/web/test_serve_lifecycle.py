"""`robofleet serve` started as a new user starts it: first start, login, restarts, crashes, bad settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.serve import ServeProcess

pytestmark = pytest.mark.slow


def test_first_start_login_and_restarts_keep_everything(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path).start(wait="/readyz")
    try:
        assert httpx.get(f"{serve.url}/healthz").json() == {"status": "ok"}
        password_file = tmp_path / "robofleet-data" / "initial-admin-password"
        assert oct(password_file.stat().st_mode & 0o777) == "0o600"
        password = serve.admin_password()
        assert serve.output().count(password) == 1  # printed once, in the banner
        login = httpx.post(f"{serve.url}/api/v1/auth/login", json={"username": "admin", "password": password})
        assert login.status_code == 200 and "robofleet_session" in login.headers["set-cookie"]
        headers = {"Authorization": f"Bearer {serve.token()}"}
        created = httpx.post(
            f"{serve.url}/api/v1/users",
            headers=headers,
            json={"username": "keeper", "password": "keeper-password", "roles": ["viewer"]},
        )
        assert created.status_code == 201

        # SIGTERM: uvicorn shuts down gracefully, then re-raises the signal, so the status says SIGTERM.
        assert serve.stop() in (0, -15)
        serve.start(wait="/readyz")
        assert httpx.get(f"{serve.url}/api/v1/users/keeper", headers=headers).json()["roles"] == ["viewer"]
        assert serve.output().count("First start") == 1 and serve.admin_password() == password

        crashed = httpx.post(
            f"{serve.url}/api/v1/users",
            headers=headers,
            json={"username": "acknowledged", "password": "acknowledged-pw"},
        )
        assert crashed.status_code == 201
        serve.kill()  # kill -9 right after the 201: what was acknowledged must be there
        serve.start(wait="/readyz")
        assert httpx.get(f"{serve.url}/api/v1/users/acknowledged", headers=headers).status_code == 200
        relogin = httpx.post(
            f"{serve.url}/api/v1/auth/login", json={"username": "keeper", "password": "keeper-password"}
        )
        assert relogin.status_code == 200
    finally:
        serve.stop()


@pytest.mark.parametrize(
    ("settings_text", "env", "mentioned"),
    [
        ("[server]\nhost = '127.0.0.1'\nprot = 8080\n", {}, ["server.prot", "robofleet.toml line 3"]),
        ("[server]\nport = 'abc'\n", {}, ["server.port", "robofleet.toml line 2"]),
        ("", {"ROBOFLEET_SERVER__PROT": "1"}, ["server.prot", "ROBOFLEET_SERVER__PROT"]),
    ],
)
def test_bad_settings_stop_the_start_with_a_clear_message(
    tmp_path: Path, settings_text: str, env: dict[str, str], mentioned: list[str]
) -> None:
    (tmp_path / "robofleet.toml").write_text(settings_text)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ROBOFLEET_")}
    result = subprocess.run(
        [sys.executable, "-m", "robofleet", "serve"],
        cwd=tmp_path,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    for text in mentioned:
        assert text in result.stderr, result.stderr
