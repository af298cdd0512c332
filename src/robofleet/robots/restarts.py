"""The on-failure restart policy: start again after a growing backoff, until the robot failed `give_up_after`
times within `window_seconds`; a manual stop or a policy of "never" leaves the robot alone."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from robofleet.robots.models import FAILED, Robot, Run
from robofleet.robots.schemas import RestartPolicy

log = logging.getLogger("robofleet.robots.service")
MAX_BACKOFF = 300.0


def restart_delay(session: Session, name: str, now: datetime) -> float | None:
    """Seconds to wait before robot `name` starts again after a failure, or None when it is not to restart."""
    robot = session.scalar(select(Robot).where(Robot.name == name))
    if robot is None or robot.manual_stop or (robot.restart or {}).get("policy") != "on-failure":
        return None
    policy = RestartPolicy(**robot.restart)
    since = now - timedelta(seconds=policy.window_seconds)
    failures = int(
        session.scalar(select(func.count(Run.id)).where(Run.robot == name, Run.state == FAILED, Run.ended_at >= since))
        or 0
    )
    if failures >= policy.give_up_after:
        log.warning(
            "robot %s failed %d times in %.0f s: no more restarts until a manual start",
            name,
            failures,
            policy.window_seconds,
        )
        return None
    return float(min(policy.backoff_seconds * 2.0 ** max(failures - 1, 0), MAX_BACKOFF))
