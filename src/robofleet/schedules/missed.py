"""What another domain (alerts) may read of schedule fires: those a misfire policy skipped, since a point. A read
only: the schedules service stays the only writer of its tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from robofleet.schedules.models import Outcome, ScheduleFire
from robofleet.store import Store

ID_MARGIN = 1000  # fire ids are taken at insert and committed later: a window opens this far below its last top


@dataclass(frozen=True)
class MissedFire:
    id: int
    schedule: str
    planned_at: datetime
    fired_at: datetime
    missed: int  # planned fires it stands for beyond its own
    error: str | None


@dataclass(frozen=True)
class MissedWindow:
    fires: list[MissedFire]
    next_low: int


def missed_fires(store: Store, low: int, since: datetime, limit: int = 5000) -> MissedWindow:
    """Fires of id ≥ `low` recorded at or after `since` whose outcome is `skipped_misfire`, oldest first."""
    with store.transaction() as session:
        top = session.scalar(select(func.max(ScheduleFire.id))) or 0
        rows = session.scalars(
            select(ScheduleFire)
            .where(
                ScheduleFire.id >= low,
                ScheduleFire.outcome == Outcome.SKIPPED_MISFIRE,
                ScheduleFire.fired_at >= since,
            )
            .order_by(ScheduleFire.id)
            .limit(limit)
        )
        fires = [
            MissedFire(
                id=row.id,
                schedule=row.schedule,
                planned_at=row.planned_at,
                fired_at=row.fired_at,
                missed=row.missed,
                error=row.error,
            )
            for row in rows
        ]
    return MissedWindow(fires=fires, next_low=max(top + 1 - ID_MARGIN, 0))
