"""What each kind of rule watches and the pure decisions of alerting: which subject a rule's glob matches, which
thresholds a kind takes, when a run is too long, when a delivery is tried again. No store, no clock."""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from enum import StrEnum
from fnmatch import fnmatchcase


class RuleKind(StrEnum):
    RUN_FAILED = "run_failed"  # a run of a matching robot ended failed or lost
    RESTART_GAVE_UP = "restart_gave_up"  # a matching robot failed and its on-failure restart policy gave up
    RUN_TOO_LONG = "run_too_long"  # a run took longer than `threshold` x its robot's median successful run
    AGENT_OFFLINE = "agent_offline"  # a matching agent has been offline longer than `threshold` seconds
    SCHEDULE_MISSED = "schedule_missed"  # a matching schedule's fire was skipped by its misfire policy
    QUEUE_PAST_SLA = "queue_past_sla"  # a matching queue holds at least `threshold` items past its SLA


class ChannelKind(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


# What the glob of each kind names, and what its threshold means (None: the kind takes no threshold).
SUBJECTS: dict[RuleKind, str] = {
    RuleKind.RUN_FAILED: "robot",
    RuleKind.RESTART_GAVE_UP: "robot",
    RuleKind.RUN_TOO_LONG: "robot",
    RuleKind.AGENT_OFFLINE: "agent",
    RuleKind.SCHEDULE_MISSED: "schedule",
    RuleKind.QUEUE_PAST_SLA: "queue",
}
THRESHOLDS: dict[RuleKind, tuple[str, float, float] | None] = {
    # (meaning, default, smallest allowed (exclusive for run_too_long))
    RuleKind.RUN_FAILED: None,
    RuleKind.RESTART_GAVE_UP: None,
    RuleKind.RUN_TOO_LONG: ("times the median duration of the robot's recent successful runs (more than 1)", 2.0, 1.0),
    RuleKind.AGENT_OFFLINE: ("seconds offline (1 or more)", 60.0, 1.0),
    RuleKind.QUEUE_PAST_SLA: ("items past the SLA (1 or more)", 1.0, 1.0),
    RuleKind.SCHEDULE_MISSED: None,
}
GLOB = re.compile(r"^[A-Za-z0-9_.*?\-]{1,256}$")
MEDIAN_SAMPLE = 20  # the successful runs a median is taken over, newest first
MEDIAN_MINIMUM = 3  # fewer successful runs than this: no median, no "too long"
MAX_BACKOFF_SECONDS = 3600.0


def check_glob(pattern: str) -> str:
    """The glob as given; ValueError naming what a glob may hold."""
    if not GLOB.match(pattern):
        raise ValueError(
            "must be a glob of names: letters, digits, '_', '.', '-' and the wildcards '*' and '?' (1-256 characters)"
        )
    return pattern


def check_threshold(kind: RuleKind, threshold: float | None) -> float | None:
    """The threshold a rule of `kind` uses (its default when left out); ValueError when the kind takes none or the
    value is out of range."""
    spec = THRESHOLDS[kind]
    if spec is None:
        if threshold is not None:
            raise ValueError(f"a {kind.value} rule takes no threshold")
        return None
    meaning, default, smallest = spec
    if threshold is None:
        return default
    too_small = threshold <= smallest if kind == RuleKind.RUN_TOO_LONG else threshold < smallest
    if too_small or threshold != threshold or threshold == float("inf"):
        raise ValueError(f"threshold of a {kind.value} rule: {meaning}, got {threshold:g}")
    return threshold


def matches(pattern: str, name: str) -> bool:
    return fnmatchcase(name, pattern)


def median_seconds(durations: Sequence[float]) -> float | None:
    """The median of the durations, or None with fewer than MEDIAN_MINIMUM of them."""
    if len(durations) < MEDIAN_MINIMUM:
        return None
    return float(statistics.median(durations))


def too_long(seconds: float, median: float | None, factor: float) -> bool:
    return median is not None and median > 0 and seconds > factor * median


def backoff_seconds(first: float, attempts: int) -> float:
    """The wait after the `attempts`-th failed attempt: `first`, doubled after each, at most an hour."""
    return float(min(first * 2.0 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


def within_cooldown(seconds_since_last: float, cooldown: float) -> bool:
    """An event of the same rule and subject this soon after the alert's last one is counted in it, not raised."""
    return seconds_since_last < cooldown
