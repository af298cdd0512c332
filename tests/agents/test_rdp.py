"""RDP sessions on the agent, against the real loopback xrdp (tests/kit/rdp.py): an Xvfb with xfreerdp drawing the
remote desktop, kept connected by the watchdog through every kind of drop, connected, disconnected and logged off
on request; wrong credentials and refusals end `failed` or back off, never in a storm; the password is nowhere."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest
from PIL import Image

from robofleet.agents.display_keeper import stop_recorded
from robofleet.agents.worker import Worker
from tests.agents.conftest import call, refused, screenshot_png, spec, stop_everything
from tests.conftest import wait_until
from tests.kit import rdp as server
from tests.kit.rdp import RdpServer

FIRST_FRAME_SECONDS = 8
RECONNECT_SECONDS = 3.0
timings: dict[str, float] = {}


def rdp_spec(name: str, rdp_server: RdpServer, **rdp: Any) -> dict[str, Any]:
    """An rdp session spec as the orchestrator sends it, to the loopback server."""
    connection = {
        "host": rdp_server.host,
        "port": rdp_server.port,
        "username": rdp_server.user,
        "domain": "",
        "password": rdp_server.password,
        "security": "auto",
        "certificate": "ignore",
        "logoff": ["type:openbox --exit", "key:Return"],
        "client": "xfreerdp",
        "extra_args": [],
        "first_frame_seconds": FIRST_FRAME_SECONDS,
        **rdp,
    }
    return spec(name, kind="rdp", connect=True, rdp=connection)


@pytest.fixture
def rdp_server() -> RdpServer:
    return server.rdp_server()


@pytest.fixture
def exclusive(rdp_server: RdpServer) -> Iterator[RdpServer]:
    """The server, the test's alone (one user: one session); left with no session of the test's."""
    with server.exclusive_server():
        try:
            yield rdp_server
        finally:
            server.log_off()


@pytest.fixture
def rdp_worker(tmp_path: Path) -> Iterator[Worker]:
    """A worker whose displays and RDP clients all end with the test."""
    before = server.xfreerdp_pids()
    worker = Worker(tmp_path / "state")
    try:
        yield worker
    finally:
        stop_everything(worker)
        stop_recorded(tmp_path / "state")
        left = server.xfreerdp_pids() - before
        assert not left, f"RDP clients left running: {left}"


def status(worker: Worker, name: str) -> dict[str, Any]:
    return dict(worker.displays.status(name))


def state_is(worker: Worker, name: str, state: str, timeout: float, **connection: Any) -> dict[str, Any]:
    """The session's status once it is in `state` (and its connection matches what is given)."""

    def reached() -> dict[str, Any] | None:
        now = status(worker, name)
        matches = all(now["connection"][key] == value for key, value in connection.items())
        return now if now["state"] == state and matches else None

    return wait_until(reached, timeout, message=lambda: f"{name} {state} {connection}: {status(worker, name)}")


def connected(worker: Worker, session: dict[str, Any], timeout: float = 15) -> dict[str, Any]:
    """Sync `session` and wait until its remote desktop shows: its status."""
    call(worker, "session.sync", {"sessions": [session]})
    return state_is(worker, session["name"], "healthy", timeout)


def colours(picture: bytes) -> tuple[int, float]:
    """How many colours a picture has, and the share of the desktop's blue in it."""
    image = Image.open(io.BytesIO(picture)).convert("RGB")
    counted = image.getcolors(1 << 20) or []
    blue = sum(count for count, colour in counted if colour == server.DESKTOP_BLUE)
    return len(counted), blue / (image.width * image.height)


def client_pid(worker: Worker, name: str) -> int:
    pid = status(worker, name)["connection"]["client_pid"]
    assert pid is not None
    return int(pid)


def reasons(worker: Worker, name: str) -> list[str]:
    return [event["reason"] or "" for event in status(worker, name)["events"]]


def reconnected(worker: Worker, name: str, old_client: int, since: float) -> float:
    """Seconds from `since` until the session is healthy again with a new client."""
    state_is(worker, name, "healthy", 10)
    wait_until(
        lambda: (now := status(worker, name))["state"] == "healthy" and now["connection"]["client_pid"] != old_client,
        10,
        interval=0.02,
        message=lambda: status(worker, name),
    )
    return time.monotonic() - since


def in_background(worker: Worker, name: str, args: dict[str, Any]) -> Future[dict[str, Any]]:
    """A command run in a thread of its own (as the agent runs commands): its outcome, later."""
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(worker.execute, uuid.uuid4().hex, name, args)
    finally:
        pool.shutdown(wait=False)


def type_remotely(worker: Worker, name: str, line: str) -> None:
    """A command line typed into the remote desktop's shell (its xterm has the focus)."""
    call(worker, "session.input", {"name": name, "kind": "type", "text": line})
    call(worker, "session.input", {"name": name, "kind": "key", "keys": "Return"})


class Relay:
    """A TCP relay to the RDP server that can stop passing connections on: those it takes then hear nothing, as
    from a server that accepts and gives no session."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.forwarding = True
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                taken, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(taken)
            if not self.forwarding:
                continue  # held open, never answered
            upstream = socket.create_connection(self.target)
            self.sockets.append(upstream)
            threading.Thread(target=self._pump, args=(taken, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, taken), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        for each in [self.listener, *self.sockets]:
            each.close()


def test_the_remote_desktop_shows_takes_typing_and_the_password_is_nowhere(
    exclusive: RdpServer, rdp_worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    began = time.monotonic()
    first = connected(rdp_worker, rdp_spec("desk", exclusive))
    timings["connect → painted (s)"] = time.monotonic() - began
    assert first["connection"]["connects"] == 1 and first["connection"]["drops"] == 0
    assert (first["screen_width"], first["screen_height"]) == (800, 600)
    count, blue = colours(screenshot_png(rdp_worker, "desk"))
    assert count > 20 and blue > 0.2, (count, blue)
    session = server.wait_server_session()

    marker = Path(f"/tmp/rf-rdp-{uuid.uuid4().hex[:12]}")
    try:
        call(rdp_worker, "session.input", {"name": "desk", "kind": "type", "text": f"echo MARKER-$((6*7)) > {marker}"})
        call(rdp_worker, "session.input", {"name": "desk", "kind": "key", "keys": "Return"})
        assert server.wait_for_file(marker).strip() == "MARKER-42"
        assert marker.owner() == exclusive.user
    finally:
        marker.unlink(missing_ok=True)

    password = exclusive.password
    folder = rdp_worker.displays.folder.parent
    for path in folder.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    assert (rdp_worker.displays.folder / "desk.rdp.log").stat().st_mode & 0o777 == 0o600
    for process in psutil.process_iter(["cmdline"]):
        assert not any(password in part for part in process.info["cmdline"] or []), process
    assert all(password not in record.getMessage() for record in caplog.records)
    assert password not in repr(rdp_worker.displays.sessions["desk"].spec)
    assert server.server_session() == session


def test_a_killed_client_is_reconnected_to_the_same_server_session_within_3_s(
    exclusive: RdpServer, rdp_worker: Worker
) -> None:
    connected(rdp_worker, rdp_spec("kept", exclusive))
    session = server.wait_server_session()
    old = client_pid(rdp_worker, "kept")
    killed = time.monotonic()
    os.kill(old, signal.SIGKILL)
    took = reconnected(rdp_worker, "kept", old, killed)
    timings["reconnect after kill -9 of the client (s)"] = took
    assert took < RECONNECT_SECONDS, took
    assert server.server_session() == session  # the same Xorg: the same server session
    now = status(rdp_worker, "kept")
    assert now["connection"]["connects"] == 2 and now["connection"]["drops"] == 1
    assert any(
        reason.startswith("dropped: the RDP client was killed by signal 9") for reason in reasons(rdp_worker, "kept")
    )
    assert now["connection"]["last_exit"].startswith("the RDP client was killed by signal 9")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["abrupt", "graceful"])
def test_a_connection_the_server_drops_comes_back_to_the_same_session(
    exclusive: RdpServer, rdp_worker: Worker, sig: signal.Signals
) -> None:
    connected(rdp_worker, rdp_spec("dropped", exclusive))
    session = server.wait_server_session()
    old = client_pid(rdp_worker, "dropped")
    dropped = time.monotonic()
    server.drop_connection(sig)
    took = reconnected(rdp_worker, "dropped", old, dropped)
    timings[f"reconnect after a server-side {sig.name} (s)"] = took
    assert took < RECONNECT_SECONDS + 1, took
    assert server.server_session() == session
    said = [reason for reason in reasons(rdp_worker, "dropped") if reason.startswith("dropped:")]
    assert said, reasons(rdp_worker, "dropped")
    if sig == signal.SIGTERM:
        assert "(exit 12)" in said[0], said


def test_a_one_colour_screen_is_a_drop_only_when_the_clients_window_is_gone(
    exclusive: RdpServer, rdp_worker: Worker
) -> None:
    rdp_worker.displays.check_seconds = 0.5
    first = connected(rdp_worker, rdp_spec("blank", exclusive))
    session = server.wait_server_session()
    old = client_pid(rdp_worker, "blank")
    # The client runs on but its window is gone from the display: what a hung client or a lost window looks like.
    env = {**os.environ, "DISPLAY": first["display"]}
    windows = subprocess.run(
        ["xdotool", "search", "--pid", str(old)], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    for window in windows:
        subprocess.run(["xdotool", "windowunmap", window], env=env, check=False)
    blanked = time.monotonic()
    took = reconnected(rdp_worker, "blank", old, blanked)
    timings["reconnect after a one-colour screen, check every 0.5 s (s)"] = took
    assert any(reason.startswith("dropped: the screen was one colour") for reason in reasons(rdp_worker, "blank"))
    assert server.server_session() == session and status(rdp_worker, "blank")["connection"]["drops"] == 1

    # A remote desktop one colour on purpose (its only window hidden: what a blank screensaver shows) while the
    # client's window is there: not a drop.
    new = client_pid(rdp_worker, "blank")
    type_remotely(rdp_worker, "blank", "xdotool windowunmap $WINDOWID")
    wait_until(
        lambda: colours(screenshot_png(rdp_worker, "blank"))[0] == 1, 10, message="the remote desktop one colour"
    )
    time.sleep(2.5)  # five checks
    now = status(rdp_worker, "blank")
    assert now["state"] == "healthy" and now["connection"]["client_pid"] == new, now
    assert now["connection"]["drops"] == 1 and now["connection"]["connects"] == 2, now


def test_a_logoff_ends_the_server_session_and_the_next_connect_makes_a_new_one(
    exclusive: RdpServer, rdp_worker: Worker
) -> None:
    connected(rdp_worker, rdp_spec("leaving", exclusive))
    session = server.wait_server_session()
    logged_off = call(rdp_worker, "session.logoff", {"name": "leaving", "wait_seconds": 15})
    assert logged_off["state"] == "stopped" and logged_off["reason"] == "logged off"
    assert logged_off["connection"]["client_pid"] is None
    assert rdp_worker.displays.sessions["leaving"].spec.connect is False
    wait_until(lambda: not psutil.pid_exists(session.xorg_pid), 15, message="the logged-off session's Xorg to end")
    time.sleep(0.5)
    assert status(rdp_worker, "leaving")["state"] == "stopped"  # not reconnected behind the operator's back
    assert refused(rdp_worker, "session.logoff", {"name": "leaving"})["code"] == "unhealthy"

    assert call(rdp_worker, "session.connect", {"name": "leaving"})["state"] == "starting"
    state_is(rdp_worker, "leaving", "healthy", 15)
    assert server.wait_server_session().xorg_pid != session.xorg_pid


def test_a_logoff_under_way_is_left_alone_and_only_a_logoffs_exit_counts(
    exclusive: RdpServer, rdp_worker: Worker
) -> None:
    session = rdp_spec("racing", exclusive, logoff=["wait:2"])  # steps that do not log off: the client stays
    connected(rdp_worker, session)
    server_session = server.wait_server_session()
    old = client_pid(rdp_worker, "racing")

    # While the steps play: commands on the connection are refused, and the orchestrator's syncs (it sends the
    # session connected meanwhile, or anything else) leave the client alone.
    logoff = in_background(rdp_worker, "session.logoff", {"name": "racing", "wait_seconds": 2.5})
    wait_until(lambda: rdp_worker.displays.sessions["racing"].link.logging_off, 5, message="the logoff to begin")  # type: ignore[union-attr]
    for command in ("session.connect", "session.disconnect", "session.restart", "session.logoff"):
        problem = refused(rdp_worker, command, {"name": "racing"})
        assert problem["code"] == "busy" and "a logoff is under way" in problem["message"], (command, problem)
    call(rdp_worker, "session.sync", {"sessions": [session]})
    call(rdp_worker, "session.sync", {"sessions": [session | {"connect": False}]})
    assert client_pid(rdp_worker, "racing") == old and status(rdp_worker, "racing")["state"] == "healthy"
    outcome = logoff.result(10)
    assert not outcome["ok"] and outcome["error"]["code"] == "logoff_failed", outcome
    assert "still connected" in outcome["error"]["message"], outcome
    assert client_pid(rdp_worker, "racing") == old and server.server_session() == server_session

    # The client ends during the steps, but not by a logoff (killed here; a network drop alike): a drop, said so
    # and reconnected, not "logged off".
    call(rdp_worker, "session.sync", {"sessions": [session]})  # what the orchestrator sends again
    logoff = in_background(rdp_worker, "session.logoff", {"name": "racing", "wait_seconds": 5})
    wait_until(lambda: rdp_worker.displays.sessions["racing"].link.logging_off, 5, message="the logoff to begin")  # type: ignore[union-attr]
    killed = time.monotonic()
    os.kill(old, signal.SIGKILL)
    outcome = logoff.result(10)
    assert not outcome["ok"] and outcome["error"]["code"] == "logoff_failed", outcome
    assert "not by a logoff" in outcome["error"]["message"], outcome
    assert "killed by signal 9" in outcome["error"]["message"], outcome
    reconnected(rdp_worker, "racing", old, killed)
    now = status(rdp_worker, "racing")
    assert now["connection"]["drops"] == 1 and rdp_worker.displays.sessions["racing"].spec.connect, now
    assert server.server_session() == server_session

    # Something else ends the client meanwhile (here the session is removed): an interrupted logoff, not a false
    # "still connected".
    logoff = in_background(rdp_worker, "session.logoff", {"name": "racing", "wait_seconds": 5})
    wait_until(lambda: rdp_worker.displays.sessions["racing"].link.logging_off, 5, message="the logoff to begin")  # type: ignore[union-attr]
    call(rdp_worker, "session.sync", {"sessions": []})
    outcome = logoff.result(10)
    assert not outcome["ok"] and outcome["error"]["code"] == "logoff_interrupted", outcome


def test_a_disconnect_keeps_the_server_session_and_a_connect_returns_to_it(
    exclusive: RdpServer, rdp_worker: Worker
) -> None:
    connected(rdp_worker, rdp_spec("paused", exclusive))
    session = server.wait_server_session()
    old = client_pid(rdp_worker, "paused")
    # Connected already: a connect asked leaves it as it is (no new client, no new connect).
    again = call(rdp_worker, "session.connect", {"name": "paused"})
    assert again["state"] == "healthy" and again["connection"]["client_pid"] == old, again
    assert again["connection"]["connects"] == 1, again
    off = call(rdp_worker, "session.disconnect", {"name": "paused"})
    assert off["state"] == "stopped" and off["reason"] == "disconnected on request; the server session stays"
    assert not psutil.pid_exists(old) or psutil.Process(old).status() == psutil.STATUS_ZOMBIE
    time.sleep(1)
    assert psutil.pid_exists(session.xorg_pid) and status(rdp_worker, "paused")["state"] == "stopped"
    assert refused(rdp_worker, "session.screenshot", {"name": "paused"})["code"] == "unhealthy"
    # The orchestrator's next sync says the stored intent: the same, so it stays disconnected.
    stays = call(
        rdp_worker, "session.sync", {"sessions": [rdp_spec("paused", exclusive, connect=False) | {"connect": False}]}
    )
    assert stays["sessions"][0]["state"] == "stopped"
    call(rdp_worker, "session.connect", {"name": "paused"})
    state_is(rdp_worker, "paused", "healthy", 15, connects=2)
    assert server.server_session() == session


def test_a_wrong_password_fails_without_a_loop_and_new_credentials_connect(
    exclusive: RdpServer, rdp_worker: Worker
) -> None:
    began = time.monotonic()
    call(rdp_worker, "session.sync", {"sessions": [rdp_spec("wrong", exclusive, password="not-the-password")]})
    failed = state_is(rdp_worker, "wrong", "failed", FIRST_FRAME_SECONDS + 4)
    assert time.monotonic() - began < FIRST_FRAME_SECONDS + 3
    assert "wrong credentials" in failed["reason"] and f"within {FIRST_FRAME_SECONDS} s" in failed["reason"]
    time.sleep(1.5)
    again = status(rdp_worker, "wrong")
    assert again["state"] == "failed" and again["connection"]["connects"] == 1  # one client, no loop
    assert again["connection"]["client_pid"] is None
    # New credentials: connected without being asked.
    state = connected(rdp_worker, rdp_spec("wrong", exclusive))
    assert state["connection"]["connects"] == 2


def test_a_refused_certificate_fails_naming_the_certificate(exclusive: RdpServer, rdp_worker: Worker) -> None:
    call(rdp_worker, "session.sync", {"sessions": [rdp_spec("strict", exclusive, certificate="deny")]})
    failed = state_is(rdp_worker, "strict", "failed", 10)
    assert "certificate" in failed["reason"] and failed["connection"]["connects"] == 1, failed


def test_a_refused_port_backs_off_and_a_missing_client_fails(rdp_server: RdpServer, rdp_worker: Worker) -> None:
    closed = rdp_spec("closed", rdp_server, port=3)  # nothing listens there
    missing = rdp_spec("missing", rdp_server, client="no-such-rdp-client")
    call(rdp_worker, "session.sync", {"sessions": [closed, missing]})
    failed = state_is(rdp_worker, "missing", "failed", 10)
    assert "no-such-rdp-client" in failed["reason"] and "not installed" in failed["reason"]
    state_is(rdp_worker, "closed", "unhealthy", 10)
    time.sleep(5)
    now = status(rdp_worker, "closed")
    # At once, then after 1, 2, 4 s: about five in 5 s where a storm would have made dozens.
    assert now["state"] in ("unhealthy", "starting") and 2 <= now["connection"]["connects"] <= 6, now
    assert "the connection failed" in (now["connection"]["last_exit"] or ""), now


def plain_is_healthy(worker: Worker, name: str) -> None:
    """Wait until a session of another kind than rdp is healthy: it has no connection."""
    wait_until(lambda: status(worker, name)["state"] == "healthy", 10, message=lambda: status(worker, name))
    assert status(worker, name)["connection"] is None


def test_a_session_that_becomes_rdp_connects_and_its_log_goes_with_it(
    rdp_server: RdpServer, rdp_worker: Worker
) -> None:
    call(rdp_worker, "session.sync", {"sessions": [spec("turning")]})
    plain_is_healthy(rdp_worker, "turning")
    # Now an rdp session (to a port nothing listens on: its client is started, and fails, at once).
    call(rdp_worker, "session.sync", {"sessions": [rdp_spec("turning", rdp_server, port=3)]})
    wait_until(
        lambda: ((status(rdp_worker, "turning")["connection"] or {}).get("connects") or 0) >= 1,
        10,
        message=lambda: status(rdp_worker, "turning"),
    )
    assert status(rdp_worker, "turning")["state"] != "healthy"  # not a bare Xvfb said healthy
    log_path = rdp_worker.displays.folder / "turning.rdp.log"
    assert log_path.exists()
    # And back: no connection, no client.
    client = rdp_worker.displays.sessions["turning"].link.client  # type: ignore[union-attr]
    call(rdp_worker, "session.sync", {"sessions": [spec("turning")]})
    plain_is_healthy(rdp_worker, "turning")
    assert client is None or not client.alive
    # Removed by a sync: its client's log goes with it.
    call(rdp_worker, "session.sync", {"sessions": []})
    assert not log_path.exists()


def test_waiting_for_the_password_after_an_agent_restart_is_said_once_and_stop_recorded_takes_the_log(
    rdp_server: RdpServer, rdp_worker: Worker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    call(rdp_worker, "session.sync", {"sessions": [rdp_spec("waiting", rdp_server, port=3)]})
    log_path = rdp_worker.displays.folder / "waiting.rdp.log"
    wait_until(log_path.exists, 10, message="the client's log")
    rdp_worker.close()  # its spec is written without the password
    later = Worker(tmp_path / "state")
    try:
        caplog.set_level(logging.INFO)
        later.start()
        waiting = wait_until(
            lambda: (now := status(later, "waiting"))["state"] == "unhealthy" and "password" in now["reason"] and now,
            10,
            message=lambda: status(later, "waiting"),
        )
        connects = waiting["connection"]["connects"]
        time.sleep(2)  # eight ticks
        said = [r for r in caplog.records if "password is not known" in r.getMessage() and r.levelno >= logging.WARNING]
        assert len(said) <= 1, [r.getMessage() for r in said]
        # The sync that brings the password connects it at once.
        call(later, "session.sync", {"sessions": [rdp_spec("waiting", rdp_server, port=3)]})
        wait_until(
            lambda: status(later, "waiting")["connection"]["connects"] > connects,
            3,
            message=lambda: status(later, "waiting"),
        )
    finally:
        later.displays.stop()
        stop_recorded(tmp_path / "state")
    rdp_worker.displays.sessions.clear()  # ended above: the fixture has nothing left to stop
    assert not log_path.exists()


def test_a_reconnect_that_shows_no_desktop_in_time_backs_off_and_is_not_wrong_credentials(
    exclusive: RdpServer, rdp_worker: Worker
) -> None:
    relay = Relay(exclusive.host, exclusive.port)
    try:
        session = rdp_spec("slow", exclusive, port=relay.port, first_frame_seconds=4)
        connected(rdp_worker, session)
        old = client_pid(rdp_worker, "slow")
        relay.forwarding = False  # the next connection hears nothing: no desktop shows
        os.kill(old, signal.SIGKILL)
        wait_until(
            lambda: (
                (now := status(rdp_worker, "slow"))["state"] == "unhealthy"
                and (now["reason"] or "").startswith("no remote desktop yet")
            ),
            12,
            message=lambda: status(rdp_worker, "slow"),
        )
        relay.forwarding = True
        state_is(rdp_worker, "slow", "healthy", 15)
        states = [event["state"] for event in status(rdp_worker, "slow")["events"]]
        assert "failed" not in states, status(rdp_worker, "slow")["events"]
    finally:
        relay.close()


def test_a_new_agent_adopts_the_running_client_without_reconnecting(
    exclusive: RdpServer, rdp_worker: Worker, tmp_path: Path
) -> None:
    connected(rdp_worker, rdp_spec("adopted", exclusive))
    old = client_pid(rdp_worker, "adopted")
    rdp_worker.close()  # the agent ends; its displays and clients stay up
    assert psutil.pid_exists(old)
    later = Worker(tmp_path / "state")
    try:
        later.start()
        now = state_is(later, "adopted", "healthy", 10)
        assert now["connection"]["client_pid"] == old and now["connection"]["connects"] == 1
        assert any("adopted the RDP client" in (event["reason"] or "") for event in now["events"])
        # The orchestrator's sync (with the password) keeps it as it is.
        again = call(later, "session.sync", {"sessions": [rdp_spec("adopted", exclusive)]})["sessions"][0]
        assert again["connection"]["client_pid"] == old and again["connection"]["connects"] == 1
    finally:
        later.displays.stop()
        stop_recorded(tmp_path / "state")
    rdp_worker.displays.sessions.clear()  # ended above: the fixture has nothing left to stop


ROBOT = """
import json, sys
from robofleet import sdk
state = sdk.session_state()
with open(sys.argv[1], "w") as out:
    json.dump([state.name, state.state, state.healthy] if state else None, out)
"""


def robot_sees(worker: Worker, run_id: str, session: dict[str, Any], out: Path) -> Any:
    """What the SDK told a robot started in `session` about it."""
    argv = [sys.executable, "-c", ROBOT, str(out)]
    call(worker, "process.start", {"run_id": run_id, "argv": argv, "session": session, "env": {}})
    return json.loads(wait_until(lambda: out.exists() and out.read_text(), 15, message="the robot's answer"))


def test_a_robot_in_the_session_reads_its_state(exclusive: RdpServer, rdp_worker: Worker, tmp_path: Path) -> None:
    session = rdp_spec("robots", exclusive)
    connected(rdp_worker, session)
    assert robot_sees(rdp_worker, "901", session, tmp_path / "first.json") == ["robots", "healthy", True]
    path = rdp_worker.displays.state_path("robots")
    call(rdp_worker, "session.disconnect", {"name": "robots"})
    record = json.loads(path.read_text())
    assert record["state"] == "stopped" and record["reason"].startswith("disconnected on request")
    done = subprocess.run(
        [sys.executable, "-c", ROBOT, str(tmp_path / "second.json")],
        env={**os.environ, "ROBOFLEET_SESSION": "robots", "ROBOFLEET_SESSION_STATE": str(path)},
        check=True,
    )
    assert done.returncode == 0
    assert json.loads((tmp_path / "second.json").read_text()) == ["robots", "stopped", False]
    outside = subprocess.run(
        [sys.executable, "-c", ROBOT, str(tmp_path / "none.json")],
        env=os.environ | {"ROBOFLEET_SESSION": ""},
        check=True,
    )
    assert outside.returncode == 0 and json.loads((tmp_path / "none.json").read_text()) is None


def test_zz_timings() -> None:
    """Prints what the tests above measured (pytest -s shows it)."""
    for what, seconds in timings.items():
        print(f"{what}: {seconds:.2f}")
