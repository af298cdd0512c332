"""What another domain (alerts) may read of agents: those offline, and since when. A read only: `roster.py` stays
the only writer of the agents table."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import select

from robofleet.agents.models import KnownAgent
from robofleet.agents.roster import LAST_SEEN_SECONDS
from robofleet.store import Store
from robofleet.store.base import utcnow

# An agent not connected here whose last sighting is older than this is offline even without a recorded departure
# (serve was killed while it was connected; or it was connected to another replica, which refreshes the sighting
# every LAST_SEEN_SECONDS while it stays).
STALE = timedelta(seconds=2 * LAST_SEEN_SECONDS)


def offline_since(store: Store, connected_here: Collection[str]) -> dict[str, datetime]:
    """Each known agent that is offline, with the time it left (or was last seen, as the agents list says)."""
    now = utcnow()
    with store.transaction() as session:
        rows = session.execute(select(KnownAgent.name, KnownAgent.disconnected_at, KnownAgent.last_seen_at)).all()
    found: dict[str, datetime] = {}
    for name, left, seen in rows:
        if name in connected_here:
            continue
        if left is not None:
            found[name] = left
        elif now - seen >= STALE:
            found[name] = seen
    return found
