"""The state of the graphical session a robot runs in, as its agent last wrote it: whether an RDP session the robot
works in is connected, or dropped and being reconnected.

The agent's session keeper writes each session's state at every change to a file of its own and tells the robot
where (ROBOFLEET_SESSION_STATE, with ROBOFLEET_SESSION its name). Reading it asks no one: it works while the
orchestrator or the network is down, and costs a small file read, so a robot may ask before every step.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class SessionState:
    """A session's state: starting, healthy, unhealthy (dropped, reconnecting), failed or stopped; why; since."""

    name: str
    state: str
    reason: str | None
    since: datetime | None

    @property
    def healthy(self) -> bool:
        """Whether the session is up (an RDP session: connected, its remote desktop showing)."""
        return self.state == "healthy"


def session_state() -> SessionState | None:
    """The state of the session this run was started in, as its agent wrote it last; None for a run outside a
    session (or outside robofleet). A session the agent no longer keeps (its state file is gone) is `stopped`."""
    name = os.environ.get("ROBOFLEET_SESSION")
    path = os.environ.get("ROBOFLEET_SESSION_STATE")
    if not name or not path:
        return None
    try:
        record = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return SessionState(name, "stopped", "the agent no longer keeps this session", None)
    except (OSError, ValueError) as exc:
        return SessionState(name, "unknown", f"the session's state cannot be read: {exc}", None)
    since = record.get("since")
    return SessionState(
        str(record.get("name") or name),
        str(record.get("state") or "unknown"),
        record.get("reason"),
        datetime.fromisoformat(since) if isinstance(since, str) else None,
    )
