"""X displays on an agent's machine: start an Xvfb display (and, if asked, a window manager in it), attach to an
existing one, ask a display whether it answers, and stop what we started.

An Xvfb display is started in a session of its own, like a robot, so it outlives the agent: robots keep running
across agent restarts and their display must too. The agent remembers the pid and start time of what it started
(display_keeper.py) and finds it again by both, so a recycled pid is never taken for ours.

A free display number is Xvfb's own choice (`-displayfd`: it writes the number it bound once it listens, which is
also the moment it is ready). A fixed number already in use is refused before Xvfb is even tried, with who holds
it; Xvfb's own refusal (a race) gives the same answer. Either is permanent: retrying would only fail again.

Whether a display answers is asked over its local socket with the X11 connection setup, which also tells the
screen's size; it never blocks longer than its timeout, where Xlib would hang on a frozen server. A server that
refuses the unauthenticated setup (a user's `:0` with its cookie) is asked again through `xdpyinfo`, which reads
the agent user's XAUTHORITY.

An `rdp` session is an Xvfb display like the others with an RDP client drawing a remote desktop into it
(rdp_client.py, rdp_keeper.py); its spec carries the connection (`RdpSpec`), whose password is the one secret of a
spec: it is never written (`as_dict` leaves it out), never shown (`repr`), and a spec read back from the agent's
files, without it, stands for the same connection as one that has it.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from robofleet.agents import owned, xauth
from robofleet.agents.processes import robot_environment

READY_SECONDS = 10.0  # Xvfb listens in well under a second; a loaded machine gets room
STOP_SECONDS = 3.0
PROBE_SECONDS = 1.0
SOCKET_DIR = Path("/tmp/.X11-unix")  # noqa: S108 (where X servers put their sockets)
DISPLAY_PATTERN = re.compile(r"^(?P<host>[A-Za-z0-9._-]*):(?P<number>\d{1,5})(?:\.(?P<screen>\d{1,3}))?$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
KINDS = ("xvfb", "attach", "rdp")
RESTART_POLICIES = ("always", "never")
DEPTHS = (8, 16, 24)
WIDTHS = (320, 7680)
HEIGHTS = (200, 4320)
MAX_RECORD_SECONDS = 120
# Never an option to the client: a host that starts with one of these would be read as an argument.
HOST_PATTERN = re.compile(r"^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252}))$")
SECURITIES = ("auto", "rdp", "tls", "nla")
CERTIFICATES = ("ignore", "tofu", "deny")
FINGERPRINT_PATTERN = re.compile(r"^fingerprint:sha256:[0-9A-Fa-f]{64}$")
LOGOFF_STEP = re.compile(r"^(?P<kind>key|type|wait):(?P<value>.+)$", re.DOTALL)
MAX_LOGOFF_STEPS = 20
MAX_LOGOFF_WAIT = 10.0
FIRST_FRAME_SECONDS = (1.0, 300.0)
DEFAULT_LOGOFF = ("key:super+r", "wait:1.5", "type:logoff", "key:Return")


class DisplayError(Exception):
    """A display that could not be started or attached; `permanent` when trying again cannot help (a display
    number in use, no Xvfb on this machine), as opposed to a start that failed this time."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


@dataclass(frozen=True)
class RdpSpec:
    """How an rdp session reaches its remote desktop. `password` is None in a spec read back from the agent's own
    files (it is never written): such a spec connects again only once the orchestrator sends the password."""

    host: str
    username: str
    port: int = 3389
    domain: str = ""
    password: str | None = field(default=None, repr=False)
    security: str = "auto"
    certificate: str = "tofu"
    logoff: tuple[str, ...] = DEFAULT_LOGOFF
    client: str = "xfreerdp"
    extra_args: tuple[str, ...] = ()
    first_frame_seconds: float = 20.0

    @classmethod
    def from_args(cls, name: str, raw: Any) -> RdpSpec:
        """The connection in `raw`; ValueError says what is wrong (never what the password is)."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"session {name}: an rdp session needs its connection (rdp: host, username...)")
        host = raw.get("host")
        if not isinstance(host, str) or not HOST_PATTERN.fullmatch(host):
            raise ValueError(f"session {name}: rdp host is a hostname, an IPv4 or an [IPv6] address, not {host!r:.60}")
        port = _integer(raw, "port", 3389)
        if not 1 <= port <= 65535:
            raise ValueError(f"session {name}: rdp port is 1..65535, not {port}")
        username, domain = _text(name, raw, "username"), _text(name, raw, "domain", "")
        if not username:
            raise ValueError(f"session {name}: rdp username is required")
        password = raw.get("password")
        if password is not None and (not isinstance(password, str) or any(c in password for c in "\x00\r\n")):
            raise ValueError(f"session {name}: rdp password is a text without NUL or line breaks")
        security = str(raw.get("security") or "auto")
        if security not in SECURITIES:
            raise ValueError(f"session {name}: rdp security is auto, rdp, tls or nla, not {security[:20]!r}")
        certificate = str(raw.get("certificate") or "tofu")
        if certificate not in CERTIFICATES and not FINGERPRINT_PATTERN.fullmatch(certificate):
            raise ValueError(
                f"session {name}: rdp certificate is ignore, tofu, deny or fingerprint:sha256:<64 hex>, "
                f"not {certificate[:80]!r}"
            )
        logoff = raw.get("logoff")
        logoff = DEFAULT_LOGOFF if logoff is None else _strings(name, logoff, "rdp logoff")
        if len(logoff) > MAX_LOGOFF_STEPS:
            raise ValueError(f"session {name}: rdp logoff has at most {MAX_LOGOFF_STEPS} steps")
        for step in logoff:
            check_logoff_step(name, step)
        client = str(raw.get("client") or "xfreerdp")
        extra = _strings(name, raw.get("extra_args") or [], "rdp extra_args")
        first_frame = raw.get("first_frame_seconds", 20.0)
        if isinstance(first_frame, bool) or not isinstance(first_frame, int | float):
            raise ValueError(f"session {name}: rdp first_frame_seconds is a number of seconds")
        if not FIRST_FRAME_SECONDS[0] <= first_frame <= FIRST_FRAME_SECONDS[1]:
            raise ValueError(f"session {name}: rdp first_frame_seconds is {FIRST_FRAME_SECONDS[0]:g}..300")
        return cls(
            host, username, port, domain, password, security, certificate, logoff, client, extra, float(first_frame)
        )

    def as_dict(self) -> dict[str, Any]:
        """What the agent writes down: everything but the password."""
        return {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "domain": self.domain,
            "security": self.security,
            "certificate": self.certificate,
            "logoff": list(self.logoff),
            "client": self.client,
            "extra_args": list(self.extra_args),
            "first_frame_seconds": self.first_frame_seconds,
        }

    def same_connection(self, other: RdpSpec) -> bool:
        """Whether a client connected as `self` is connected as `other` asks; an unknown password (None, read back
        from the agent's files) is taken for the one the other has."""
        known = self.password is not None and other.password is not None
        return (self.host, self.port, self.username, self.domain, self.security, self.certificate) == (
            other.host,
            other.port,
            other.username,
            other.domain,
            other.security,
            other.certificate,
        ) and (not known or self.password == other.password)


def check_logoff_step(name: str, step: str) -> None:
    """ValueError unless `step` is `key:<keys>`, `type:<text>` or `wait:<seconds, at most 10>`."""
    match = LOGOFF_STEP.fullmatch(step)
    if match is None:
        said = f"key:<keys>, type:<text> or wait:<seconds>, not {step[:60]!r}"
        raise ValueError(f"session {name}: a logoff step is {said}")
    if match["kind"] == "wait":
        try:
            seconds = float(match["value"])
        except ValueError:
            raise ValueError(f"session {name}: wait:<seconds> takes a number, not {match['value'][:20]!r}") from None
        if not 0 <= seconds <= MAX_LOGOFF_WAIT:
            raise ValueError(f"session {name}: a logoff wait is 0..{MAX_LOGOFF_WAIT:g} s")


def _text(name: str, raw: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or len(value) > 256 or any(ord(c) < 32 for c in value):
        raise ValueError(f"session {name}: rdp {key} is a text of at most 256 printable characters")
    return value


def _strings(name: str, value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"session {name}: {what} is a list of strings")
    return tuple(value)


@dataclass(frozen=True)
class DisplaySpec:
    """A session as the orchestrator sends it (`session.sync`): only what the agent needs to keep it."""

    name: str
    kind: str = "xvfb"
    display: str | None = None
    width: int = 1280
    height: int = 800
    depth: int = 24
    window_manager: tuple[str, ...] | None = None
    restart: str = "always"
    record_seconds: int = 0
    connect: bool = True  # an rdp session's client is wanted (false: the display is kept, stopped); others ignore it
    rdp: RdpSpec | None = None

    @classmethod
    def from_args(cls, raw: Mapping[str, Any]) -> DisplaySpec:
        """The spec in `raw`; ValueError says what is wrong with it."""
        name = str(raw["name"])
        if not NAME_PATTERN.fullmatch(name):
            raise ValueError(f"a session name is letters, digits, '.', '_' and '-', not {name[:60]!r}")
        kind = str(raw.get("kind") or "xvfb")
        if kind not in KINDS:
            raise ValueError(f"session {name}: kind is xvfb, attach or rdp, not {kind!r}")
        display = raw.get("display")
        if display is not None:
            display = str(display)
            if not DISPLAY_PATTERN.fullmatch(display):
                raise ValueError(f"session {name}: a display looks like ':1' or 'host:0.0', not {display[:40]!r}")
        if kind == "attach" and display is None:
            raise ValueError(f"session {name}: an attach session names its display (like ':0')")
        if kind != "attach" and display is not None and DISPLAY_PATTERN.fullmatch(display)["host"]:  # type: ignore[index]
            raise ValueError(f"session {name}: an Xvfb display is on this machine (':N'), not {display!r}")
        width, height, depth = _integer(raw, "width", 1280), _integer(raw, "height", 800), _integer(raw, "depth", 24)
        if not WIDTHS[0] <= width <= WIDTHS[1] or not HEIGHTS[0] <= height <= HEIGHTS[1]:
            raise ValueError(f"session {name}: the size is {WIDTHS[0]}..{WIDTHS[1]} x {HEIGHTS[0]}..{HEIGHTS[1]}")
        if depth not in DEPTHS:
            raise ValueError(f"session {name}: depth is 24, 16 or 8, not {depth}")
        manager = raw.get("window_manager")
        if manager is not None:
            if not isinstance(manager, list | tuple) or not manager or not all(isinstance(a, str) for a in manager):
                raise ValueError(f"session {name}: window_manager is a command line (a list of strings) or null")
            manager = tuple(manager)
        restart = str(raw.get("restart") or "always")
        if restart not in RESTART_POLICIES:
            raise ValueError(f"session {name}: restart is always or never, not {restart!r}")
        record = _integer(raw, "record_seconds", 0)
        if not 0 <= record <= MAX_RECORD_SECONDS:
            raise ValueError(f"session {name}: record_seconds is 0..{MAX_RECORD_SECONDS}")
        connect = raw.get("connect", True)
        if not isinstance(connect, bool):
            raise ValueError(f"session {name}: connect is true or false, not {connect!r:.20}")
        rdp = RdpSpec.from_args(name, raw.get("rdp")) if kind == "rdp" else None
        manager = manager if kind == "xvfb" else None  # an rdp display shows the remote desktop, full size: no WM
        return cls(name, kind, display, width, height, depth, manager, restart, record, connect, rdp)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "display": self.display,
            "width": self.width,
            "height": self.height,
            "depth": self.depth,
            "window_manager": list(self.window_manager) if self.window_manager else None,
            "restart": self.restart,
            "record_seconds": self.record_seconds,
            "connect": self.connect,
            "rdp": self.rdp.as_dict() if self.rdp is not None else None,  # without the password
        }

    def same_screen(self, other: DisplaySpec) -> bool:
        """Whether `other` can be drawn in the display that `self` started (an rdp session's client may differ)."""
        return (self.kind, self.display, self.width, self.height, self.depth, self.window_manager) == (
            other.kind,
            other.display,
            other.width,
            other.height,
            other.depth,
            other.window_manager,
        )

    def same_display(self, other: DisplaySpec) -> bool:
        """Whether `other` is kept as it is now: the same display and, for rdp, the same connection (its restart
        policy, recording, connect intent, logoff steps and client settings may differ)."""
        if not self.same_screen(other):
            return False
        if self.rdp is None or other.rdp is None:
            return self.rdp is other.rdp
        return self.rdp.same_connection(other.rdp)


def _integer(raw: Mapping[str, Any], key: str, default: int) -> int:
    value = raw.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} is a whole number, not {value!r}")
    return value


@dataclass
class Display:
    """A display in use by a session: its X server (ours when `pid` is set) and its window manager, if any."""

    display: str
    pid: int | None = None
    create_time: float | None = None
    wm_pid: int | None = None
    wm_create_time: float | None = None
    popen: subprocess.Popen[bytes] | None = None  # ours in this agent process: reaped through it
    wm_popen: subprocess.Popen[bytes] | None = None
    cookie: str | None = None  # the Xvfb's MIT-MAGIC-COOKIE-1 (xauth.py); None: an attached display, or no xauth

    def record(self) -> dict[str, Any]:
        return {
            "display": self.display,
            "pid": self.pid,
            "create_time": self.create_time,
            "wm_pid": self.wm_pid,
            "wm_create_time": self.wm_create_time,
            "cookie": self.cookie,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Display:
        return cls(
            str(record["display"]),
            record.get("pid"),
            record.get("create_time"),
            record.get("wm_pid"),
            record.get("wm_create_time"),
            cookie=record.get("cookie"),
        )

    @property
    def server_alive(self) -> bool:
        return self.pid is None or alive(self.pid, self.create_time, self.popen)

    @property
    def manager_alive(self) -> bool:
        return self.wm_pid is None or alive(self.wm_pid, self.wm_create_time, self.wm_popen)


@dataclass(frozen=True)
class Screen:
    """A healthy session's display and the size of its screen, for a grab or an input."""

    name: str
    display: str
    width: int
    height: int


@dataclass(frozen=True)
class Probe:
    """What a display said when asked: whether it answers, and its screen's size when it does."""

    answers: bool
    width: int | None = None
    height: int | None = None
    reason: str | None = None


# ---- starting and stopping ---------------------------------------------------------------------------------


def start_xvfb(
    spec: DisplaySpec,
    log_path: Path,
    ready_seconds: float = READY_SECONDS,
    started: Callable[[Display], None] | None = None,
) -> Display:
    """An Xvfb display for `spec`, listening, in a session of its own; DisplayError when it cannot be had.
    `started` is told of the process as soon as it exists, before it is ready (its display then is `spec.display`
    or ""), so that the caller may record it."""
    executable = shutil.which("Xvfb")
    if executable is None:
        raise DisplayError("Xvfb is not installed on this agent's machine (apt install xvfb)", permanent=True)
    if spec.display is not None:
        holder = in_use(spec.display)
        if holder is not None:
            raise DisplayError(holder, permanent=True)
    screen = f"{spec.width}x{spec.height}x{spec.depth}"
    cookie = xauth.new_cookie() if xauth.available() else None
    read_end, write_end = os.pipe()
    argv = [executable, *([spec.display] if spec.display else []), "-displayfd", str(write_end)]
    argv += ["-screen", "0", screen, "-nolisten", "tcp", "-noreset"]
    if cookie is not None:
        server_auth = log_path.with_name(f"{spec.name}.auth")
        xauth.server_file(server_auth, cookie)
        argv += ["-auth", str(server_auth)]
    try:
        with log_path.open("ab") as log:
            popen = owned.popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=[write_end],
                start_new_session=True,  # outlives the agent, as the robots drawing in it do
                env=robot_environment(os.environ, {}),
            )
    except OSError as exc:
        os.close(read_end)
        raise DisplayError(f"cannot start Xvfb: {exc.strerror}") from exc
    finally:
        os.close(write_end)
    create_time: float | None = None
    with contextlib.suppress(psutil.Error):  # one that is gone already: its exit is read below
        create_time = psutil.Process(popen.pid).create_time()
    try:
        if started is not None:
            started(Display(spec.display or "", popen.pid, create_time, popen=popen, cookie=cookie))
        number = _read_display_number(read_end, popen, ready_seconds)
    except BaseException:
        stop_process(popen.pid, create_time, popen, grace=0.0)
        raise
    finally:
        os.close(read_end)
    if number is None:
        code = popen.poll()
        if code is None:
            stop_process(popen.pid, None, popen)
            raise DisplayError(f"Xvfb did not get ready within {ready_seconds:g} s")
        said = _last_error(log_path)
        if spec.display is not None and "already" in said.lower():
            raise DisplayError(f"display {spec.display} is in use: {said}", permanent=True)
        raise DisplayError(f"Xvfb exited with {code} before it listened: {said or 'it said nothing'}")
    if cookie is not None:
        xauth.grant(f":{number}", cookie)
    return Display(f":{number}", popen.pid, create_time, popen=popen, cookie=cookie)


def _read_display_number(descriptor: int, popen: subprocess.Popen[bytes], timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    said = b""
    while b"\n" not in said:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        readable, _, _ = select.select([descriptor], [], [], min(remaining, 0.1))
        if readable:
            chunk = os.read(descriptor, 64)
            if not chunk:  # Xvfb closed it: it exited
                return None
            said += chunk
        elif popen.poll() is not None:
            return None
    return int(said.split(b"\n")[0])


def _last_error(log_path: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines()[-12:]]
        fatal = [line for line in lines if line and line != "(EE)" and "Fatal server error" not in line]
        return " ".join(fatal[-3:]).replace("(EE) ", "")[:400]
    return ""


def start_window_manager(display: Display, argv: Sequence[str], log_path: Path) -> None:
    """Start the window manager `argv` in `display` (noted in it); DisplayError when it cannot start."""
    executable = shutil.which(argv[0])
    if executable is None:
        raise DisplayError(f"the window manager {argv[0]!r} is not installed on this agent's machine", permanent=True)
    try:
        with log_path.open("ab") as log:
            popen = owned.popen(
                [executable, *argv[1:]],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                env=robot_environment(os.environ, {"DISPLAY": display.display}),
            )
    except OSError as exc:
        raise DisplayError(f"cannot start the window manager {argv[0]!r}: {exc.strerror}") from exc
    display.wm_pid, display.wm_popen = popen.pid, popen
    display.wm_create_time = psutil.Process(popen.pid).create_time()


def stop(display: Display, *, hung: bool = False) -> None:
    """End what we started for `display` (its window manager, then its X server); an attached display's server is
    not ours and stays. A `hung` server is killed at once: it would not act on SIGTERM, and waiting for it holds
    its session."""
    if display.wm_pid is not None:
        stop_process(display.wm_pid, display.wm_create_time, display.wm_popen)
    if display.pid is not None:
        stop_process(display.pid, display.create_time, display.popen, grace=0.0 if hung else STOP_SECONDS)
    if display.cookie is not None and display.display:
        xauth.revoke(display.display)


def stop_process(
    pid: int, create_time: float | None, popen: subprocess.Popen[bytes] | None = None, *, grace: float = STOP_SECONDS
) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds (at once when 0); a pid that is no longer the process we started
    is left alone."""
    try:
        process = psutil.Process(pid)
        if create_time is not None and process.create_time() != create_time:
            return
        if grace > 0:
            process.send_signal(signal.SIGTERM)
        _, living = psutil.wait_procs([process], timeout=grace) if grace > 0 else ([], [process])
        for left in living:
            left.kill()
        psutil.wait_procs(living, timeout=STOP_SECONDS)
    except psutil.NoSuchProcess:
        pass
    if popen is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(STOP_SECONDS)


def alive(pid: int, create_time: float | None, popen: subprocess.Popen[bytes] | None = None) -> bool:
    if popen is not None and popen.poll() is not None:  # also reaps it: no zombie of ours is left
        return False
    try:
        process = psutil.Process(pid)
        if create_time is not None and process.create_time() != create_time:
            return False
        if process.status() != psutil.STATUS_ZOMBIE:
            return True
    except psutil.NoSuchProcess:
        return False
    if popen is not None:
        # It died between the poll above and the look at its status: reaped here, so that its exit status is
        # read (a killed RDP client otherwise read as "gone", its signal unknown).
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=1)
    return False


def exit_reason(pid: int, popen: subprocess.Popen[bytes] | None) -> str:
    """How a process of ours that is no longer alive ended, as far as we can tell."""
    code = popen.returncode if popen is not None else None
    if code is None:
        return f"pid {pid} is gone"
    return f"killed by signal {-code}" if code < 0 else f"exited with {code}"


def in_use(display: str) -> str | None:
    """Why the local display number `display` cannot be had (who holds it), or None when it is free."""
    number = display_number(display)
    if number is None:
        return None
    lock = Path(f"/tmp/.X{number}-lock")  # noqa: S108 (where X servers put their locks)
    with contextlib.suppress(OSError, ValueError):
        holder = int(lock.read_text().strip())
        if psutil.pid_exists(holder):
            with contextlib.suppress(psutil.Error):
                name = psutil.Process(holder).name()
                return f"display {display} is in use: {name} (pid {holder}) holds it"
            return f"display {display} is in use: pid {holder} holds it"
    try:
        _setup(number, PROBE_SECONDS)
    except _Refused:  # it answers, if only to refuse a client without its cookie
        return f"display {display} is in use: an X server answers there"
    except (OSError, ValueError, struct.error):
        return None
    return f"display {display} is in use: an X server answers there"


# ---- asking a display ----------------------------------------------------------------------------------------


def display_number(display: str) -> int | None:
    """The number of a local display (":N" or ":N.S"); None for one on another host."""
    match = DISPLAY_PATTERN.fullmatch(display)
    if match is None or match["host"] not in ("", "unix"):
        return None
    return int(match["number"])


def probe(display: str, timeout: float = PROBE_SECONDS, cookie: str | None = None) -> Probe:
    """Whether the X server of `display` answers, within `timeout` seconds, with its first screen's size; `cookie`:
    the MIT-MAGIC-COOKIE-1 it wants (one the agent started)."""
    number = display_number(display)
    if number is None:
        return _xdpyinfo(display, timeout)
    try:
        width, height = _setup(number, timeout, cookie)
    except _Refused:
        return _xdpyinfo(display, timeout)
    except (OSError, ValueError, struct.error) as exc:
        return Probe(False, reason=f"display {display} does not answer: {exc or type(exc).__name__}")
    return Probe(True, width, height)


class _Refused(Exception):
    pass


def _setup(number: int, timeout: float, cookie: str | None = None) -> tuple[int, int]:
    """The X11 connection setup over the display's local socket: the root screen's width and height."""
    name, data = (b"MIT-MAGIC-COOKIE-1", bytes.fromhex(cookie)) if cookie else (b"", b"")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(timeout)
        path = SOCKET_DIR / f"X{number}"
        connection.connect(str(path) if path.exists() else f"\0{path}")  # else Linux's abstract socket
        # Little-endian, protocol 11.0, the cookie if any (name and data each padded to 4 bytes).
        connection.sendall(
            b"l\x00" + struct.pack("<HHHH2x", 11, 0, len(name), len(data)) + _padded(name) + _padded(data)
        )
        head = _receive(connection, 8)
        data = _receive(connection, struct.unpack_from("<H", head, 6)[0] * 4)
    if head[0] != 1:
        raise _Refused(data[: head[1]].decode(errors="replace"))
    vendor_length, screens, formats = struct.unpack_from("<H", data, 16)[0], data[20], data[21]
    if screens < 1:
        raise ValueError("the server has no screen")
    screen = 32 + (vendor_length + 3) // 4 * 4 + 8 * formats
    width, height = struct.unpack_from("<HH", data, screen + 20)
    return int(width), int(height)


def _padded(part: bytes) -> bytes:
    return part + b"\x00" * (-len(part) % 4)


def _receive(connection: socket.socket, size: int) -> bytes:
    received = b""
    while len(received) < size:
        chunk = connection.recv(size - len(received))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        received += chunk
    return received


def _xdpyinfo(display: str, timeout: float) -> Probe:
    executable = shutil.which("xdpyinfo")
    if executable is None:
        return Probe(False, reason=f"display {display} refuses this agent and xdpyinfo is not installed")
    try:
        done = owned.run([executable, "-display", display], timeout=timeout + 2, env={**os.environ, "DISPLAY": display})
    except subprocess.TimeoutExpired:
        return Probe(False, reason=f"display {display} does not answer (xdpyinfo timed out)")
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        return Probe(False, reason=f"display {display} does not answer: {(said or ['xdpyinfo failed'])[-1][:300]}")
    size = re.search(rb"dimensions:\s+(\d+)x(\d+) pixels", done.stdout)
    if size is None:
        return Probe(True)
    return Probe(True, int(size[1]), int(size[2]))
