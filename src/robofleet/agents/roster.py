"""The agents known to the store: the only code that writes the `agents` table. An agent is recorded when it
connects, seen again while it stays (at most every LAST_SEEN_SECONDS: its "offline since" after a `kill -9` of
`serve`), and marked offline with the reason when it leaves. A listing is the hub's live agents (online) and the
stored ones that are not connected (offline since when, and why).

With several `serve` replicas sharing a PostgreSQL store, each lists as online the agents connected to it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from robofleet.agents.hub import AgentHub
from robofleet.agents.models import KnownAgent
from robofleet.store import Store
from robofleet.store.base import utcnow

LAST_SEEN_SECONDS = 30.0
INFO_KEYS = ("host", "os_user", "os", "python", "capabilities")


def connected(store: Store, name: str, user: str | None, info: dict[str, Any]) -> None:
    """`name` connected now, as `user`, on the machine `info` describes."""
    try:
        _connected(store, name, user, info)
    except IntegrityError:  # two first connections of a name at once: one inserted it, the other updates it
        _connected(store, name, user, info)


def _connected(store: Store, name: str, user: str | None, info: dict[str, Any]) -> None:
    now = utcnow()
    machine = {key: info.get(key) for key in INFO_KEYS}
    with store.transaction() as session:
        agent = session.get(KnownAgent, name, with_for_update=True)
        if agent is None:
            session.add(
                KnownAgent(name=name, user=user, info=machine, first_seen_at=now, connected_at=now, last_seen_at=now)
            )
            return
        agent.user, agent.info, agent.connected_at, agent.last_seen_at = user, machine, now, now
        agent.disconnected_at, agent.disconnect_reason = None, None


def seen(store: Store, name: str) -> None:
    """`name` is still connected (a heartbeat)."""
    with store.transaction() as session:
        session.execute(
            update(KnownAgent).where(KnownAgent.name == name).values(last_seen_at=utcnow(), disconnected_at=None)
        )


def left(store: Store, name: str, reason: str) -> None:
    """`name` disconnected now, for `reason` ("" when it closed its connection itself)."""
    now = utcnow()
    with store.transaction() as session:
        session.execute(
            update(KnownAgent)
            .where(KnownAgent.name == name)
            .values(last_seen_at=now, disconnected_at=now, disconnect_reason=reason[:200] or "it disconnected")
        )


def offline_row(agent: KnownAgent) -> dict[str, Any]:
    """A stored agent that is not connected, as the API lists it. Its `offline_since` is when it left, or, when
    `serve` ended without recording that (a kill -9), the last time it was seen."""
    return {
        "name": agent.name,
        "online": False,
        "connected": False,
        "state": "offline",
        "offline_since": agent.disconnected_at or agent.last_seen_at,
        "offline_reason": agent.disconnect_reason or "the orchestrator stopped while it was connected",
        "connected_at": agent.connected_at,
        "last_seen_at": agent.last_seen_at,
        "first_seen_at": agent.first_seen_at,
        "principal": agent.user,
        **{key: agent.info.get(key) for key in INFO_KEYS},
        "stats": {},
    }


def overview(store: Store, hub: AgentHub) -> list[dict[str, Any]]:
    """Every agent: the connected ones first (each `AgentState.public()`), then the known ones that are not, each
    `offline_row`; by name. Blocking (a store read): call it in a thread. The hub's agents are taken in one C call
    (`list`), which a thread may do while the event loop adds and removes them."""
    live = [state.public() for state in list(hub.agents.values())]
    with store.transaction() as session:
        known = {agent.name: agent for agent in session.scalars(select(KnownAgent).order_by(KnownAgent.name))}
        names = {agent["name"] for agent in live}
        rows = [
            {**agent, "first_seen_at": known[agent["name"]].first_seen_at if agent["name"] in known else None}
            for agent in live
        ]
        rows += [offline_row(agent) for name, agent in known.items() if name not in names]
    return sorted(rows, key=lambda row: (not row["online"], row["name"]))


def one(store: Store, hub: AgentHub, name: str) -> dict[str, Any] | None:
    """The agent `name` as `overview` shows it; None when it never connected. Blocking, as `overview`."""
    state = hub.agents.get(name)
    with store.transaction() as session:
        agent = session.get(KnownAgent, name)
        if state is not None:
            return {**state.public(), "first_seen_at": agent.first_seen_at if agent else None}
        return None if agent is None else offline_row(agent)


def due_for_seen(last_stored: datetime, now: datetime) -> bool:
    return now - last_stored >= timedelta(seconds=LAST_SEEN_SECONDS)
