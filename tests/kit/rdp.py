"""The loopback RDP server of the RDP tests (scripts/rdp-test-server.sh, ../shared/NOTES-rdp.md) and what tests do
to it from the server's side: who its session is (the user's Xorg and openbox), dropping a connection (the
per-connection xrdp child), logging the session off, and reading a file the remote shell wrote.

The server has ONE user, so tests that connect to it take it in turn (`exclusive_server`, a file lock in /tmp
that pytest-xdist's workers share) and leave it with no session (`log_off`)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from tests.kit.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "rdp-test-server.sh"
STATE = Path("/var/lib/robofleet-rdp-test")
HOST, PORT, USER = "127.0.0.1", 3389, "rfrdp"
LOCK = Path("/tmp/robofleet-rdp-tests.lock")
DESKTOP_BLUE = (0x2A, 0x6F, 0x97)  # the session's xsetroot background
LOGOFF_SECONDS = 15.0


@dataclass(frozen=True)
class RdpServer:
    host: str
    port: int
    user: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class ServerSession:
    """The server's session of the test user, told apart by its X server's pid (a new session has a new one)."""

    xorg_pid: int
    openbox_pid: int | None


# The test server's desktop is an xterm running a shell, focused: these steps clear its line (keys sent before may
# have left some there: Ctrl+Alt+Del reaches bash as an escape sequence it half reads) and end the session.
LOGOFF_STEPS = ["key:ctrl+u", "type:openbox --exit", "key:Return"]


def session_body(server: RdpServer, name: str, width: int = 1024, height: int = 768) -> dict[str, object]:
    """POST /api/v1/sessions of an rdp session to the test server on the local agent, logged off by LOGOFF_STEPS."""
    return {
        "name": name,
        "kind": "rdp",
        "host": server.host,
        "port": server.port,
        "username": server.user,
        "password": server.password,
        "certificate": "ignore",  # xrdp's snakeoil certificate
        "width": width,
        "height": height,
        "logoff": LOGOFF_STEPS,
    }


def rdp_server() -> RdpServer:
    """The loopback server, started if it is not up; pytest.skip saying why when it cannot be had (not root, the
    script fails, no xfreerdp)."""
    if os.geteuid() != 0:
        pytest.skip("the RDP tests need root: sesman authenticates through PAM (run them as CI does, as root)")
    if not _listening():
        done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0 or not _listening():
            pytest.skip(f"the loopback RDP server does not start: {(done.stdout + done.stderr).strip()[-400:]}")
    if subprocess.run(["which", "xfreerdp"], capture_output=True, check=False).returncode != 0:
        pytest.skip("xfreerdp is not installed (scripts/rdp-test-server.sh installs freerdp2-x11)")
    return RdpServer(HOST, PORT, USER, (STATE / "password").read_text().strip())


def _listening() -> bool:
    done = subprocess.run(["ss", "-ltn"], capture_output=True, text=True, check=False)
    return f"{HOST}:{PORT} " in done.stdout


@contextlib.contextmanager
def exclusive_server() -> Iterator[None]:
    """Hold the server for the test's duration: its one user's session is the test's alone."""
    with LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _users_processes(name: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "username"]):
        if process.info["username"] == USER and process.info["name"] == name:
            found.append(process)
    return found


def server_session() -> ServerSession | None:
    """The test user's session on the server now, or None when it has none."""
    xorg = _users_processes("Xorg")
    if not xorg:
        return None
    openbox = _users_processes("openbox")
    return ServerSession(xorg[0].pid, openbox[0].pid if openbox else None)


def wait_server_session(timeout: float = 15) -> ServerSession:
    """The test user's session once it exists and runs its window manager."""
    return wait_until(
        lambda: (session := server_session()) is not None and session.openbox_pid is not None and session,
        timeout,
        message="the test user's session on the RDP server",
    )


def connection_child() -> psutil.Process | None:
    """The xrdp process serving the connection now: the child of the xrdp master."""
    xrdps = [p for p in psutil.process_iter(["name", "ppid"]) if p.info["name"] == "xrdp"]
    pids = {p.pid for p in xrdps}
    children = [p for p in xrdps if p.info["ppid"] in pids]
    return children[0] if children else None


def drop_connection(sig: signal.Signals = signal.SIGKILL, timeout: float = 10) -> int:
    """End the connection from the server's side: SIGKILL (abrupt) or SIGTERM (graceful: the client is told it is
    logged off, rc 12) to xrdp's per-connection child; its pid."""
    child = wait_until(connection_child, timeout, message="xrdp's per-connection child")
    child.send_signal(sig)
    with contextlib.suppress(psutil.Error):
        child.wait(timeout)
    return child.pid


def log_off(timeout: float = LOGOFF_SECONDS) -> None:
    """End the test user's session from the server's side (SIGTERM to its openbox) and wait until its X server is
    gone; nothing to do when it has none."""
    session = server_session()
    if session is None:
        return
    for process in _users_processes("openbox"):
        with contextlib.suppress(psutil.Error):
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and psutil.pid_exists(session.xorg_pid):
        time.sleep(0.1)
    if psutil.pid_exists(session.xorg_pid):  # sesman did not end it: its processes are ended here
        for process in psutil.process_iter(["username"]):
            if process.info["username"] == USER:
                with contextlib.suppress(psutil.Error):
                    process.kill()
        wait_until(lambda: not psutil.pid_exists(session.xorg_pid), 10, message="the test user's Xorg to end")


def xfreerdp_pids() -> set[int]:
    """Every xfreerdp running on the machine (a test's teardown checks it left none of its own)."""
    return {p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "xfreerdp"}


def wait_for_file(path: Path, timeout: float = 10) -> str:
    """The content of a file the remote shell writes, once it is there and not empty."""

    def content() -> str:
        with contextlib.suppress(OSError):
            return path.read_text()
        return ""

    return wait_until(content, timeout, interval=0.1, message=f"{path} written by the remote shell")
