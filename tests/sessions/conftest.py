"""What the sessions' tests share: the demo robot that draws in a session (examples/robots/tk_window.py: a window
of BLUE that records the clicks and keys it gets), how much of a screen is its colour, and waits on a session's
state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from robofleet.orchestrator import Orchestrator
from robofleet.sessions.service import SessionsService

TK_WINDOW = Path(__file__).resolve().parents[2] / "examples" / "robots" / "tk_window.py"
BLUE = (0x33, 0x66, 0xCC)


def service_of(context: Orchestrator) -> SessionsService:
    """The running sessions service of an in-process orchestrator."""
    found = context.service("sessions")
    assert isinstance(found, SessionsService)
    return found


def blue_share(image: Image.Image, tolerance: int = 12) -> float:
    """The share of the image's pixels within `tolerance` of the robot's colour."""
    raw = image.convert("RGB").resize((80, 60)).tobytes()
    pixels = [raw[i : i + 3] for i in range(0, len(raw), 3)]
    near = [p for p in pixels if all(abs(a - b) <= tolerance for a, b in zip(p, BLUE, strict=True))]
    return len(near) / len(pixels)


def session_state(api: httpx.Client, name: str, state: str) -> dict[str, Any] | None:
    """The session once it is in `state`, else None (for wait_until)."""
    session: dict[str, Any] = api.get(f"/api/v1/sessions/{name}").json()
    return session if session["state"] == state else None
