"""The agents known to the store: every agent that ever connected, so an offline one is listed as offline (since
when, and why) instead of vanishing, also after a restart of `serve`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from robofleet.store.base import Base, UTCDateTime, utcnow


class KnownAgent(Base):
    __tablename__ = "agents"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str | None] = mapped_column(String(128))  # whose token connected it last
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # host, os_user, os, python, capabilities
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)  # its last connection
    # Refreshed while it is connected (at most every LAST_SEEN_SECONDS): its "offline since" after a kill -9 of serve.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disconnected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None while connected
    disconnect_reason: Mapped[str | None] = mapped_column(String(200))
