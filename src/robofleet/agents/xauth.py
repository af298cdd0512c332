"""Who may connect to the displays an agent starts: the holders of their MIT-MAGIC-COOKIE-1, nobody else.

An Xvfb without `-auth` lets every local user read the robots' screens and type into them. Each Xvfb the agent
starts gets a random cookie, written for the server alone to a file of its own (`-auth FILE`: the server takes the
cookies of that file whatever display they are written for), and for the clients to the agent's Xauthority file
(`state_dir/sessions/Xauthority`, mode 0600 in a 0700 folder) under the display's number. The agent's process points
XAUTHORITY at that file, so its screen grabs (Xlib in this process), xdotool, the window managers and the robots
(which inherit the agent's environment) connect; the entries of the agent's own Xauthority are merged into it once,
so attached displays (a logged-in user's `:0`) still let the agent in.

xauth does the file format (Debian's `xauth`); an agent without it starts its displays without access control, and
says so once.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from pathlib import Path

from robofleet.agents import owned

log = logging.getLogger(__name__)
FILE_NAME = "Xauthority"
PROTOCOL = "MIT-MAGIC-COOKIE-1"
XAUTH_SECONDS = 5.0
_warned: list[bool] = [False]


def available() -> bool:
    """Whether xauth is installed; said once when it is not."""
    if shutil.which("xauth") is not None:
        return True
    if not _warned[0]:
        _warned[0] = True
        log.warning("xauth is not installed: the agent's displays accept any local client (apt install xauth)")
    return False


def prepare(folder: Path) -> Path | None:
    """The agent's Xauthority file in `folder` (made 0600, with the entries of the Xauthority it was started with),
    and this process's XAUTHORITY set to it; None without xauth."""
    if not available():
        return None
    path = folder / FILE_NAME
    inherited = Path(os.environ.get("XAUTHORITY") or Path.home() / ".Xauthority")
    if not path.exists():
        path.touch(mode=0o600)
        if inherited.is_file() and inherited.resolve() != path.resolve():
            _xauth(path, "merge", str(inherited))
    os.environ["XAUTHORITY"] = str(path)
    return path


def new_cookie() -> str:
    return secrets.token_hex(16)


def server_file(path: Path, cookie: str) -> None:
    """The file an Xvfb reads its one cookie from (`-auth`), made afresh with mode 0600."""
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)
    _xauth(path, "add", ":0", PROTOCOL, cookie)


def grant(display: str, cookie: str) -> None:
    """Let this agent's clients of `display` in: its cookie into the agent's Xauthority file."""
    path = os.environ.get("XAUTHORITY")
    if path:
        _xauth(Path(path), "add", display, PROTOCOL, cookie)


def revoke(display: str) -> None:
    """Forget `display`'s cookie (its server is gone; the number may be another's next)."""
    path = os.environ.get("XAUTHORITY")
    if path and Path(path).is_file():
        _xauth(Path(path), "remove", display)


def _xauth(path: Path, *args: str) -> None:
    """One xauth command on `path`, given on its standard input (`source -`): a cookie never shows in a command
    line that other processes can read."""
    executable = shutil.which("xauth")
    if executable is None:
        return
    done = owned.run(
        [executable, "-q", "-f", str(path), "source", "-"],
        input=(" ".join(args) + "\n").encode(),
        timeout=XAUTH_SECONDS,
    )
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip()
        log.warning("xauth %s on %s failed: %s", args[0], path, said[:300] or f"exit {done.returncode}")
