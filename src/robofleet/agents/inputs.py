"""Mouse and keyboard on an X display, for an operator taking over a robot's screen: xdotool, run with DISPLAY
set, never through a shell.

Input goes through XTEST (xdotool without `--window`): to every client it is a real user's, where synthetic events
sent to a window are ignored by some (xterm). A click moves the pointer there first, in the same connection, so X
handles the two in order (`--sync` would wait for a motion that never comes when the pointer is there already).
Everything is checked before xdotool runs: coordinates inside the screen, key names X knows (an unknown one is
refused here, where xdotool would skip it and say nothing useful), text of at most MAX_TEXT characters.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

from robofleet.agents import owned
from robofleet.agents.displays import Screen

MAX_TEXT = 10_000
TYPE_DELAY_MS = 6
KEY_SEQUENCE = 20  # combos in one key command ("ctrl+a ctrl+c")
COMBO = re.compile(r"^[A-Za-z0-9_]{1,40}(?:\+[A-Za-z0-9_]{1,40}){0,5}$")
BUTTONS = {"left": 1, "middle": 2, "right": 3}
SCROLL_UP, SCROLL_DOWN = 4, 5
MAX_SCROLL = 100
TIMEOUT_SECONDS = 10.0
# What an operator types for a key, to what xdotool calls it (xdotool knows ctrl, alt, shift, super, meta itself).
ALIASES = {
    "ctrl": "ctrl",
    "control": "ctrl",
    "alt": "alt",
    "shift": "shift",
    "super": "super",
    "win": "super",
    "meta": "meta",
    "enter": "Return",
    "return": "Return",
    "esc": "Escape",
    "escape": "Escape",
    "tab": "Tab",
    "backspace": "BackSpace",
    "delete": "Delete",
    "del": "Delete",
    "space": "space",
    "home": "Home",
    "end": "End",
    "pageup": "Page_Up",
    "pagedown": "Page_Down",
    "up": "Up",
    "down": "Down",
    "left": "Left",
    "right": "Right",
    "insert": "Insert",
}
KINDS = ("click", "type", "key", "scroll", "move")


class InputFailed(Exception):
    """xdotool could not deliver the input (the display went away, xdotool is missing)."""


def send(screen: Screen, args: dict[str, Any]) -> None:
    """Carry out one input as `session.input` describes it; ValueError when the input is not acceptable,
    InputFailed when it could not be delivered."""
    kind = args.get("kind")
    handlers: dict[str, Callable[[Screen, dict[str, Any]], list[str]]] = {
        "click": _click,
        "type": _type,
        "key": _key,
        "scroll": _scroll,
        "move": _move,
    }
    if kind not in handlers:
        raise ValueError(f"an input is a click, type, key, scroll or move, not {str(kind)[:20]!r}")
    command = handlers[str(kind)](screen, args)
    timeout = TIMEOUT_SECONDS + (len(str(args.get("text", ""))) * TYPE_DELAY_MS / 1000 if kind == "type" else 0)
    run(screen.display, command, timeout)


def _click(screen: Screen, args: dict[str, Any]) -> list[str]:
    x, y = _point(screen, args)
    button = args.get("button") or "left"
    if button not in BUTTONS:
        raise ValueError(f"button is left, right or middle, not {str(button)[:20]!r}")
    double = args.get("double") or False
    if not isinstance(double, bool):
        raise ValueError(f"double is true or false, not {double!r}")
    repeat = ["--repeat", "2", "--delay", "80"] if double else []
    return ["mousemove", str(x), str(y), "click", *repeat, str(BUTTONS[button])]


def _move(screen: Screen, args: dict[str, Any]) -> list[str]:
    x, y = _point(screen, args)
    return ["mousemove", str(x), str(y)]


def _scroll(screen: Screen, args: dict[str, Any]) -> list[str]:
    x, y = _point(screen, args)
    amount = args.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount == 0 or abs(amount) > MAX_SCROLL:
        raise ValueError(f"amount is a whole number of clicks, 1..{MAX_SCROLL} down or -1..-{MAX_SCROLL} up")
    button = SCROLL_DOWN if amount > 0 else SCROLL_UP
    return ["mousemove", str(x), str(y), "click", "--repeat", str(abs(amount)), "--delay", "20", str(button)]


def _type(screen: Screen, args: dict[str, Any]) -> list[str]:
    text = args.get("text")
    if not isinstance(text, str) or not text:
        raise ValueError("text is the text to type")
    if len(text) > MAX_TEXT:
        raise ValueError(f"text is at most {MAX_TEXT} characters, not {len(text)}")
    if "\x00" in text:
        raise ValueError("text cannot hold a NUL character")
    return ["type", "--delay", str(TYPE_DELAY_MS), "--", text]


def _key(screen: Screen, args: dict[str, Any]) -> list[str]:
    keys = args.get("keys")
    if not isinstance(keys, str) or not keys.strip():
        raise ValueError('keys is a key or combination like "Return", "Escape" or "ctrl+alt+t"')
    combos = keys.split()
    if len(combos) > KEY_SEQUENCE:
        raise ValueError(f"at most {KEY_SEQUENCE} key combinations at once")
    return ["key", "--", *(key_combo(combo) for combo in combos)]


def key_combo(combo: str) -> str:
    """The combo in xdotool's names ("Ctrl+Enter" -> "ctrl+Return"); ValueError for one X does not know."""
    if not COMBO.fullmatch(combo):
        raise ValueError(f"a key combination is names joined by '+', like ctrl+alt+t, not {combo[:60]!r}")
    names = []
    for name in combo.split("+"):
        known = ALIASES.get(name.lower()) or (name if _keysym(name) else None)
        if known is None:
            raise ValueError(f"unknown key name {name!r} (X key names like Return, Escape, F5, a, ctrl, alt)")
        names.append(known)
    return "+".join(names)


@functools.cache
def _x11() -> Any:
    library = ctypes.util.find_library("X11")
    if library is None:
        return None
    x11 = ctypes.CDLL(library)
    x11.XStringToKeysym.restype = ctypes.c_ulong
    x11.XStringToKeysym.argtypes = [ctypes.c_char_p]
    return x11


def _keysym(name: str) -> bool:
    """Whether X has a key of that name (libX11 tells without a display)."""
    x11 = _x11()
    if x11 is None:
        return True  # no libX11 to ask here: xdotool will have to say
    return bool(x11.XStringToKeysym(name.encode()))


def _point(screen: Screen, args: dict[str, Any]) -> tuple[int, int]:
    x, y = args.get("x"), args.get("y")
    for value in (x, y):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"x and y are pixel coordinates, not {value!r}")
    assert isinstance(x, int | float) and isinstance(y, int | float)
    px, py = round(x), round(y)
    if not (0 <= px < screen.width and 0 <= py < screen.height):
        raise ValueError(f"({px}, {py}) is outside the screen of {screen.width}x{screen.height}")
    return px, py


def run(display: str, command: list[str], timeout: float = TIMEOUT_SECONDS) -> None:
    """xdotool `command` on `display`; InputFailed with what it said when it fails."""
    executable = shutil.which("xdotool")
    if executable is None:
        raise InputFailed("xdotool is not installed on this agent's machine (apt install xdotool)")
    try:
        done = owned.run(
            [executable, *command], env={**os.environ, "DISPLAY": display}, stdin=subprocess.DEVNULL, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise InputFailed(f"xdotool did not finish within {timeout:g} s on display {display}") from exc
    said = done.stderr.decode(errors="replace").strip()
    if done.returncode != 0:
        raise InputFailed(f"xdotool failed on display {display}: {said[-300:] or f'exit {done.returncode}'}")
