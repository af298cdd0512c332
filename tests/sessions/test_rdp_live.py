"""RDP sessions for real, from the outside: a `robofleet serve` whose local agent connects an rdp session to the
loopback xrdp (tests/kit/rdp.py), driven only through the HTTP API as a user would: the remote desktop in a
screenshot, typing reaching the remote shell, a robot told of a drop through `sdk.session_state()` and its run's log,
disconnect and connect back to the same server session, log off and a new one, a wrong password failing once and
new credentials connecting, the intent surviving a `kill -9` of serve, and the password in no answer, log record,
audit record, activity, agent file or process list.

One server and one rdp session for the module (its tests run in order); the RDP server is the module's alone."""

from __future__ import annotations

import io
import json
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from PIL import Image

from tests.conftest import ServeProcess, StartServe, wait_until
from tests.kit.rdp import (
    DESKTOP_BLUE,
    RdpServer,
    exclusive_server,
    log_off,
    rdp_server,
    server_session,
    session_body,
    wait_for_file,
    wait_server_session,
)

pytestmark = pytest.mark.slow
NAME = "remote"
WIDTH, HEIGHT = 1024, 768
FIRST_FRAME_SECONDS = 8
WATCHER = textwrap.dedent(
    """
    import json, sys, time
    from robofleet.sdk import session_state
    with open(sys.argv[1], "a") as out:
        while True:
            state = session_state()
            out.write(json.dumps(None if state is None else [state.state, state.reason]) + "\\n")
            out.flush()
            time.sleep(0.1)
    """
)


@dataclass
class Remote:
    serve: ServeProcess
    api: httpx.Client
    server: RdpServer
    workdir: Path


def session(api: httpx.Client) -> dict[str, Any]:
    answer = api.get(f"/api/v1/sessions/{NAME}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def reaches(api: httpx.Client, state: str, timeout: float = 20) -> dict[str, Any]:
    return wait_until(
        lambda: (found := session(api))["state"] == state and found,
        timeout,
        interval=0.1,
        message=lambda: f"session {NAME} {state}: {session(api)}",
    )


def colours_and_blue(api: httpx.Client) -> tuple[int, float]:
    shot = api.get(f"/api/v1/sessions/{NAME}/screenshot")
    assert shot.status_code == 200, shot.text
    image = Image.open(io.BytesIO(shot.content)).convert("RGB")
    assert image.size == (WIDTH, HEIGHT)
    counted = image.getcolors(maxcolors=1 << 20) or []
    blue = sum(count for count, colour in counted if colour == DESKTOP_BLUE)
    return len(counted), blue / (WIDTH * HEIGHT)


@pytest.fixture(scope="module")
def remote(start_module_serve: StartServe, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    server = rdp_server()
    with exclusive_server():
        log_off()  # whatever an earlier test left: this module starts from no server session
        serve = start_module_serve(
            env={
                "ROBOFLEET_SESSIONS__CHECK_SECONDS": "0.5",
                "ROBOFLEET_SESSIONS__SESSION_WAIT_SECONDS": "20",
                "ROBOFLEET_SESSIONS__RDP__FIRST_FRAME_SECONDS": str(FIRST_FRAME_SECONDS),
            }
        )
        with serve.api() as api:
            made = api.post("/api/v1/sessions", json=session_body(server, NAME, WIDTH, HEIGHT))
            assert made.status_code == 201, made.text
            assert "password" not in made.json() and made.json()["has_password"] is True
            try:
                yield Remote(serve, api, server, tmp_path_factory.mktemp("rdp-live"))
            finally:
                api.post(f"/api/v1/sessions/{NAME}/disconnect")
                log_off()


def test_the_remote_desktop_is_painted_and_seen_in_a_screenshot(remote: Remote) -> None:
    found = reaches(remote.api, "healthy", 30)
    assert found["kind"] == "rdp" and found["connection"]["connects"] >= 1 and found["connect"] is True
    wait_server_session()
    many, blue = wait_until(
        lambda: (seen := colours_and_blue(remote.api))[0] > 20 and seen[1] > 0.2 and seen, 15, interval=0.3
    )
    assert many > 20 and blue > 0.2  # the remote desktop's own blue, with the xterm's text on its pale yellow


def test_typed_text_runs_in_the_remote_shell(remote: Remote) -> None:
    reaches(remote.api, "healthy")
    marker = Path(f"/tmp/rf-rdp-live-{uuid.uuid4().hex[:8]}")  # the remote user writes it: a place both see
    try:
        typed = remote.api.post(f"/api/v1/sessions/{NAME}/type", json={"text": f"echo MARKER-$((6*7)) > {marker}"})
        assert typed.status_code == 200, typed.text
        assert remote.api.post(f"/api/v1/sessions/{NAME}/key", json={"keys": "Return"}).status_code == 200
        assert wait_for_file(marker).strip() == "MARKER-42"
        assert marker.owner() == remote.server.user  # written on the server's side, by its user
    finally:
        marker.unlink(missing_ok=True)


def test_a_robot_in_the_session_starts_connected_and_is_told_of_a_drop(remote: Remote) -> None:
    api = remote.api
    reaches(api, "healthy")
    seen = remote.workdir / "states.jsonl"
    script = remote.workdir / "watcher.py"
    script.write_text(WATCHER)
    robot = {"name": "rdp-watcher", "argv": [sys.executable, str(script), str(seen)], "session": NAME}
    assert api.post("/api/v1/robots", json=robot).status_code == 201
    started = api.post("/api/v1/robots/rdp-watcher/start")
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]
    try:
        wait_until(lambda: seen.exists() and seen.read_text().strip(), 20, message="the watcher's first line")
        first = json.loads(seen.read_text().splitlines()[0])
        assert first[0] == "healthy"  # a robot naming an rdp session starts once it is connected
        connection = session(api)["connection"]
        psutil.Process(connection["client_pid"]).kill()  # the drop
        wait_until(
            lambda: (now := session(api))["state"] == "healthy" and now["connection"]["drops"] > connection["drops"],
            15,
            message=lambda: str(session(api)),
        )
        # Recorded with its reason: the agent read the client's own exit (the orphan reaper of serve's embedded
        # agent leaves the processes the keeper waits for alone).
        events = api.get(f"/api/v1/sessions/{NAME}/events", params={"limit": 20}).json()["items"]
        assert any("killed by signal 9" in (event["reason"] or "") for event in events), events

        def told() -> bool:
            states = [json.loads(line) for line in seen.read_text().splitlines()]
            return any(state and state[0] != "healthy" for state in states) and states[-1][0] == "healthy"

        wait_until(told, 10, message=lambda: seen.read_text()[-2000:])

        def logged() -> bool:
            records = api.get("/api/v1/logs", params={"run_id": run_id, "limit": 200}).json()["items"]
            return any(f"session {NAME} is unhealthy under this run" in record["message"] for record in records)

        wait_until(logged, 15, message="the run's log says its session dropped")
    finally:
        api.post("/api/v1/robots/rdp-watcher/kill")


def test_disconnect_keeps_the_server_session_and_connect_returns_to_it(remote: Remote) -> None:
    api = remote.api
    reaches(api, "healthy")
    before = wait_server_session()
    answer = api.post(f"/api/v1/sessions/{NAME}/disconnect")
    assert answer.status_code == 200, answer.text
    stopped = reaches(api, "stopped")
    assert stopped["connect"] is False and "server session stays" in (stopped["state_reason"] or "")
    time.sleep(1.5)  # several checks: nothing reconnects a session asked to stay disconnected
    assert session(api)["state"] == "stopped" and server_session() == before
    assert api.post(f"/api/v1/sessions/{NAME}/connect").status_code == 200
    reaches(api, "healthy")
    assert server_session() == before  # the same server session: same X server, same window manager


def test_the_intent_survives_a_kill_of_serve(remote: Remote) -> None:
    api, serve = remote.api, remote.serve
    reaches(api, "healthy")
    before = wait_server_session()
    client = session(api)["connection"]["client_pid"]
    serve.kill()
    serve.start(wait="/readyz")
    healthy = reaches(api, "healthy")
    # The agent adopted its running client: no reconnect, the same client and server session.
    assert healthy["connection"]["client_pid"] == client and server_session() == before
    assert api.post(f"/api/v1/sessions/{NAME}/disconnect").status_code == 200
    reaches(api, "stopped")
    serve.kill()
    serve.start(wait="/readyz")
    time.sleep(2)  # a few syncs of the restarted serve
    assert session(api)["state"] == "stopped" and session(api)["connect"] is False
    assert api.post(f"/api/v1/sessions/{NAME}/connect").status_code == 200
    reaches(api, "healthy")


def test_log_off_ends_the_server_session_and_the_next_connect_makes_a_new_one(remote: Remote) -> None:
    api = remote.api
    reaches(api, "healthy")
    before = wait_server_session()
    answer = api.post(f"/api/v1/sessions/{NAME}/logoff", json={"wait_seconds": 30})
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "stopped" and answer.json()["connect"] is False
    wait_until(lambda: not psutil.pid_exists(before.xorg_pid), 20, message="the server session to end")
    assert api.post(f"/api/v1/sessions/{NAME}/connect").status_code == 200
    reaches(api, "healthy", 30)
    after = wait_server_session()
    assert after.xorg_pid != before.xorg_pid


def test_a_wrong_password_fails_once_and_new_credentials_connect(remote: Remote) -> None:
    api = remote.api
    reaches(api, "healthy")
    changed = api.patch(f"/api/v1/sessions/{NAME}", json={"password": "not-" + remote.server.password})
    assert changed.status_code == 200, changed.text
    failed = reaches(api, "failed", FIRST_FRAME_SECONDS + 15)
    assert "wrong credentials" in (failed["state_reason"] or "")
    connects = failed["connection"]["connects"]
    time.sleep(3)  # no retry storm: a failed session waits for new credentials
    assert session(api)["state"] == "failed" and session(api)["connection"]["connects"] == connects
    assert api.patch(f"/api/v1/sessions/{NAME}", json={"password": remote.server.password}).status_code == 200
    reaches(api, "healthy", 30)


def test_the_password_is_in_no_answer_log_audit_activity_file_or_process(remote: Remote) -> None:
    api, serve, secret = remote.api, remote.serve, remote.server.password
    reaches(api, "healthy")
    for process in psutil.process_iter(["cmdline"]):
        assert secret not in " ".join(process.info["cmdline"] or []), process
    answers = [
        api.get(f"/api/v1/sessions/{NAME}").text,
        api.get("/api/v1/sessions").text,
        api.get(f"/api/v1/sessions/{NAME}/events", params={"limit": 500}).text,
        api.get("/api/v1/audit", params={"limit": 500}).text,
        api.get("/api/v1/activities", params={"limit": 500}).text,
        api.get("/api/v1/logs", params={"limit": 1000}).text,
        api.get("/api/v1/logs", params={"q": secret}).text,
    ]
    for answer in answers:
        assert secret not in answer
    assert secret not in serve.output()
    for path in serve.agent_state_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
