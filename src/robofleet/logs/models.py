"""The log table. `id` only grows, so a tail can resume after the last id it saw. Its one secondary index is the
block summaries of `blocks` (migration 0009)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from robofleet.store.base import Base, BigId, UTCDateTime

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
LEVEL_NAMES = {number: name for name, number in LEVELS.items()}


class LogRecord(Base):
    __tablename__ = "log_records"
    __table_args__ = ({"sqlite_autoincrement": True},)  # ids never reused, even after retention empties the table
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    level: Mapped[int] = mapped_column(SmallInteger)
    source: Mapped[str] = mapped_column(String(128))
    run_id: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
