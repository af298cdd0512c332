"""The pure decisions of alerting: globs, thresholds by kind, "too long", the backoff, the signature."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from robofleet.alerts.delivery import sign
from robofleet.alerts.kinds import (
    RuleKind,
    backoff_seconds,
    check_glob,
    check_threshold,
    matches,
    median_seconds,
    too_long,
    within_cooldown,
)


@pytest.mark.parametrize("pattern", ["*", "billing-*", "pc-0?", "robot_1.x"])
def test_globs_of_names_are_taken(pattern: str) -> None:
    assert check_glob(pattern) == pattern


@pytest.mark.parametrize("pattern", ["", "billing-[a", "a b", "x/y", "x" * 257])
def test_other_globs_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="glob"):
        check_glob(pattern)


def test_thresholds_by_kind() -> None:
    assert check_threshold(RuleKind.RUN_TOO_LONG, None) == 2.0
    assert check_threshold(RuleKind.AGENT_OFFLINE, None) == 60.0
    assert check_threshold(RuleKind.QUEUE_PAST_SLA, 3) == 3
    assert check_threshold(RuleKind.RUN_FAILED, None) is None
    for kind, value in [(RuleKind.RUN_TOO_LONG, 1.0), (RuleKind.AGENT_OFFLINE, -1), (RuleKind.QUEUE_PAST_SLA, 0)]:
        with pytest.raises(ValueError, match="threshold"):
            check_threshold(kind, value)
    with pytest.raises(ValueError, match="takes no threshold"):
        check_threshold(RuleKind.SCHEDULE_MISSED, 1)


def test_too_long_needs_a_median_of_three_runs() -> None:
    assert median_seconds([1.0, 2.0]) is None
    assert median_seconds([1.0, 9.0, 2.0]) == 2.0
    assert too_long(4.1, 2.0, 2.0) and not too_long(4.0, 2.0, 2.0) and not too_long(100, None, 2.0)
    assert matches("billing-*", "billing-eu") and not matches("billing-*", "hr")


def test_the_backoff_doubles_up_to_an_hour_and_the_cooldown_counts() -> None:
    assert [backoff_seconds(30, n) for n in (1, 2, 3)] == [30, 60, 120]
    assert backoff_seconds(30, 20) == 3600
    assert within_cooldown(10, 300) and not within_cooldown(300, 300)


def test_the_signature_is_the_hmac_of_timestamp_dot_body() -> None:
    expected = hmac.new(b"k" * 16, b"1700000000.{}", hashlib.sha256).hexdigest()
    assert sign("k" * 16, "1700000000", b"{}") == f"sha256={expected}"
