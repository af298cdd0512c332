"""The RDP client of an rdp session: FreeRDP's `xfreerdp` drawing a remote desktop into the session's Xvfb.

The password reaches the client on its standard input (`/from-stdin:force`), which is then closed: never in its
argv, which every local user can read in /proc, nor in a file. Everything else is its argv, built from the spec
alone (`argv`), so a test can read it. The client starts in a process session of its own, like the Xvfb it draws
in, so it outlives the agent; the agent finds it again by its pid and start time (`Client.record`).

Reconnecting is the watchdog's (rdp_keeper.py), not the client's (no `+auto-reconnect`): every drop is seen and
recorded. How a client ended says what to do (`meaning`): a dropped connection is tried again, wrong credentials or
a refused certificate are not (trying again cannot help until the definition changes). The client's own words for
it are read from the new lines of its log (`said`).

Whether the remote desktop shows is a matter of colours (`colours`): a display nobody draws in, or a client that
lost its window, is one colour; xrdp's login-failed dialog about five; a desktop dozens. One colour alone does not
tell a lost window from a remote desktop that is one colour on purpose (a blank screensaver): whether the client's
window is viewable (`window_shown`) does.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from PIL import Image

from robofleet.agents import displays, owned, screens
from robofleet.agents.displays import DisplaySpec, RdpSpec
from robofleet.agents.processes import robot_environment

PAINTED_COLOURS = 20  # more distinct colours than this in a sampled grab: the remote desktop shows
SAMPLE_STEP = 4  # every fourth pixel each way: enough to tell a desktop from a blank or a dialog
WINDOW_SECONDS = 2.0  # xdotool's answer about the client's window, or the colours alone decide
STOP_SECONDS = 2.0  # a client that ignores SIGTERM (after a reconnect it may hang) is killed after this
LOG_LIMIT = 1024 * 1024  # a log past this is started afresh at the next connect
LOG_LINES = 200

# The exits that mean the server logged the session off (ERRINFO_LOGOFF_BY_USER, an RPC-initiated logoff): what a
# logoff waits for. Any other exit while its steps play is a drop.
LOGOFF_EXITS = frozenset({12, 2})
# FreeRDP 2's exit codes (client/X11/xfreerdp.h XF_EXIT_*): what each means, and whether trying again may help.
EXITS: dict[int, tuple[str, bool]] = {
    0: ("the client ended the connection", True),
    1: ("the server disconnected the session", True),
    2: ("the server logged the session off", True),
    3: ("the session was idle too long", True),
    4: ("the logon timed out", True),
    5: ("another connection took the session over", False),
    6: ("the server is out of memory", True),
    7: ("the server denied the connection", False),
    8: ("the server denied the connection (FIPS)", False),
    9: ("the user has no right to log on", False),
    10: ("the server has no license to give", False),
    11: ("the server disconnected the session (by its user)", True),
    12: ("the server ended the connection (logged off, or dropped gracefully)", True),
    128: ("bad client arguments (sessions.rdp.extra_args?)", False),
    129: ("the client ran out of memory", True),
    130: ("the client's protocol failed", True),
    131: ("the connection failed", True),
    132: ("wrong credentials: the server refused the authentication", False),
    133: ("security negotiation failed: the server does not offer the security asked for", False),
    134: ("wrong credentials: the logon failed", False),
    135: ("the account is locked out", False),
    136: ("the server refused the connection (insufficient privileges)", False),
    139: ("the host's name could not be resolved", True),
    140: ("the host's name could not be resolved", True),
    141: ("the connection failed", True),
    142: ("the connection to the server failed (MCS)", True),
    143: ("TLS failed: the server's certificate was refused (its certificate setting does not accept it)", False),
    147: ("the connection failed: refused, unreachable or dropped", True),
    148: ("the password has expired", False),
    149: ("the password must be changed", False),
    150: ("the account is disabled", False),
    151: ("the account has expired", False),
    152: ("the account may not log on now", False),
    153: ("the account may not log on from this machine", False),
    154: ("wrong credentials: the password is wrong", False),
    155: ("access denied", False),
    156: ("the account is restricted", False),
    157: ("the password has expired", False),
    158: ("the password must be changed", False),
    159: ("wrong credentials: none were accepted", False),
}
# What the client says that is worth a reason: its error codes and certificate verdicts, not its backtraces.
TELLING = re.compile(r"ERRCONNECT_|ERRINFO_|certificate|failed to open display|Failed to parse", re.IGNORECASE)
LOG_PREFIX = re.compile(r"^\[[^\]]*\]\s*\[[^\]]*\]\s*\[[A-Z]+\]\[[^\]]*\]\s*-\s*")


class ClientError(Exception):
    """The client could not be started; `permanent` when trying again cannot help (it is not installed)."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


@dataclass(frozen=True)
class Ending:
    """How a client ended: why, in words, and whether connecting again may help."""

    reason: str
    retry: bool
    code: int | None


@dataclass
class Client:
    """A running RDP client: ours when `popen` is set (started by this agent process), adopted otherwise."""

    pid: int
    create_time: float | None
    log_path: Path
    log_offset: int  # where its own lines begin in the session's log
    popen: subprocess.Popen[bytes] | None = None

    def record(self) -> dict[str, Any]:
        return {"pid": self.pid, "create_time": self.create_time, "log_offset": self.log_offset}

    @classmethod
    def from_record(cls, record: dict[str, Any], log_path: Path) -> Client:
        return cls(int(record["pid"]), record.get("create_time"), log_path, int(record.get("log_offset") or 0))

    @property
    def alive(self) -> bool:
        return displays.alive(self.pid, self.create_time, self.popen)


def argv(executable: str, spec: DisplaySpec) -> list[str]:
    """The client's command line for `spec`: everything but the password, which goes to its standard input."""
    rdp = spec.rdp
    assert rdp is not None
    host = rdp.host if rdp.port == 3389 else f"{rdp.host}:{rdp.port}"
    line = [executable, f"/v:{host}", f"/u:{rdp.username}"]
    if rdp.domain:
        line.append(f"/d:{rdp.domain}")
    line += ["/from-stdin:force", f"/cert:{rdp.certificate}"]
    if rdp.security != "auto":
        line.append(f"/sec:{rdp.security}")
    line += [f"/size:{spec.width}x{spec.height}", f"/bpp:{spec.depth}", "/log-level:INFO", *rdp.extra_args]
    return line


def executable(rdp: RdpSpec) -> str:
    """The client's path; ClientError (permanent) when there is none."""
    found = shutil.which(rdp.client)
    if found is None:
        raise ClientError(
            f"the RDP client {rdp.client!r} is not installed on this agent's machine (apt install freerdp2-x11, or "
            "set sessions.rdp.client)",
            permanent=True,
        )
    return found


def start(spec: DisplaySpec, display: str, log_path: Path) -> Client:
    """A client of `spec` drawing into `display`, its password written to its standard input and closed, its
    output appended to `log_path` (0600); ClientError when it cannot be started."""
    rdp = spec.rdp
    assert rdp is not None and rdp.password is not None
    line = argv(executable(rdp), spec)
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
    with contextlib.suppress(OSError):
        if log_path.stat().st_size > LOG_LIMIT:
            flags |= os.O_TRUNC
    descriptor = os.open(log_path, flags, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        offset = os.lseek(descriptor, 0, os.SEEK_END)
        popen = owned.popen(
            line,
            stdin=subprocess.PIPE,
            stdout=descriptor,
            stderr=descriptor,
            start_new_session=True,  # outlives the agent, as its display does
            env=robot_environment(os.environ, {"DISPLAY": display}),
        )
    except OSError as exc:
        raise ClientError(f"cannot start the RDP client {rdp.client!r}: {exc.strerror}") from exc
    finally:
        os.close(descriptor)
    assert popen.stdin is not None
    try:
        popen.stdin.write(rdp.password.encode() + b"\n")
        popen.stdin.close()
    except OSError:  # it exited already: its exit says why
        with contextlib.suppress(OSError):
            popen.stdin.close()
    create_time: float | None = None
    with contextlib.suppress(psutil.Error):
        create_time = psutil.Process(popen.pid).create_time()
    return Client(popen.pid, create_time, log_path, offset, popen)


def stop(client: Client) -> None:
    """SIGTERM, then SIGKILL after STOP_SECONDS: a client that reconnected may ignore SIGTERM."""
    displays.stop_process(client.pid, client.create_time, client.popen, grace=STOP_SECONDS)


def ending(client: Client) -> Ending:
    """How a client that is no longer alive ended: its exit code's meaning and what it said last."""
    code = client.popen.returncode if client.popen is not None else None
    said = last_words(client)
    if code is None:
        reason, retry = f"the RDP client (pid {client.pid}) is gone", True
    elif code < 0:
        reason, retry = f"the RDP client was killed by signal {-code}", True
    else:
        meaning, retry = EXITS.get(code, (f"the RDP client exited with {code}", True))
        reason = meaning if code not in EXITS else f"{meaning} (exit {code})"
    return Ending(f"{reason}: {said}" if said else reason, retry, code)


def logged_off(client: Client, ending: Ending) -> bool:
    """Whether `ending` means the server logged the client's session off (LOGOFF_EXITS); an adopted client's exit
    cannot be read (it is not this process's child): taken for one, as nothing tells otherwise."""
    return ending.code in LOGOFF_EXITS or (ending.code is None and client.popen is None)


def last_words(client: Client) -> str:
    """The last telling line the client wrote to its log since it started, without its prefix."""
    with contextlib.suppress(OSError), client.log_path.open("rb") as log:
        size = log.seek(0, os.SEEK_END)
        start_at = max(client.log_offset, size - 64 * 1024)
        if start_at > size:  # the log began anew
            start_at = 0
        log.seek(start_at)
        lines = log.read().decode(errors="replace").splitlines()[-LOG_LINES:]
        telling = [LOG_PREFIX.sub("", line).strip() for line in lines if TELLING.search(line)]
        telling = [line for line in telling if line and not line.startswith("@")]
        return telling[-1][:300] if telling else ""
    return ""


def colours(display: str, limit: int = PAINTED_COLOURS, timeout: float = screens.GRAB_SECONDS) -> int:
    """How many distinct colours a sample of `display`'s screen has (limit + 1 when more than `limit`);
    ScreenError when it cannot be grabbed."""
    taken = screens.grab(display, timeout)
    image = taken.image()
    sample = image.resize(
        (max(1, taken.width // SAMPLE_STEP), max(1, taken.height // SAMPLE_STEP)), Image.Resampling.NEAREST
    )
    found = sample.getcolors(limit)
    return limit + 1 if found is None else len(found)


def painted(display: str) -> bool:
    """Whether `display` shows a remote desktop: more than PAINTED_COLOURS colours."""
    return colours(display) > PAINTED_COLOURS


def window_shown(display: str, pid: int) -> bool | None:
    """Whether the client `pid` has a viewable window in `display` (xdotool finds windows by their _NET_WM_PID);
    None when that cannot be told (no xdotool, the display does not answer)."""
    executable = shutil.which("xdotool")
    if executable is None:
        return None
    try:
        done = owned.run(
            [executable, "search", "--onlyvisible", "--pid", str(pid)],
            env={**os.environ, "DISPLAY": display},
            stdin=subprocess.DEVNULL,
            timeout=WINDOW_SECONDS,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode == 0 and done.stdout.split():
        return True
    # xdotool says nothing and exits 1 when no window matches; anything on stderr is a failure to ask.
    return False if done.returncode == 1 and not done.stderr.strip() else None
