"""The on-failure restart policy: start again after a growing backoff, until the robot failed `give_up_after`
times within `window_seconds`; a manual stop or a policy of "never" leaves the robot alone. A pure decision:
the service reads the facts (`store_ops.recent_failures`) and stores the plan (`robots.restart_at`)."""

from __future__ import annotations

from typing import Any

from robofleet.robots.schemas import RestartPolicy

MAX_BACKOFF = 300.0


def policy_of(policy: dict[str, Any] | None) -> RestartPolicy:
    return RestartPolicy(**(policy or {}))


def restart_delay(policy: RestartPolicy, *, manual_stop: bool, failures: int) -> float | None:
    """Seconds to wait before a robot starts again after its `failures`-th failure within the policy's window,
    or None when it is not to restart (policy "never", a manual stop, or too many failures)."""
    if manual_stop or policy.policy != "on-failure" or failures >= policy.give_up_after:
        return None
    return float(min(policy.backoff_seconds * 2.0 ** max(failures - 1, 0), MAX_BACKOFF))
