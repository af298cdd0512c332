"""The week timeline's drawing, a pure function of the robots, schedules, planned fires and runs: a window is a bar
as long as the window, fires are ticks (those within one unit share one, titled with their count), runs are bars
coloured by outcome, everything outside the two weeks is clipped or left out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from robofleet.robots.schemas import RunOut
from robofleet.schedules.panel import LABEL_WIDTH, TIMELINE_WIDTH, draw_timeline
from robofleet.schedules.schemas import Planned, PlannedFire, ScheduleOut

NOW = datetime(2027, 3, 3, 12, 0, tzinfo=UTC)  # a Wednesday
UNIT = (TIMELINE_WIDTH - LABEL_WIDTH) / (14 * 86_400)  # SVG units per second


def schedule(name: str, robot: str, trigger: dict[str, Any], zone: str = "UTC") -> ScheduleOut:
    return ScheduleOut(
        name=name,
        target={"action": "robots.start", "args": {"name": robot}},
        trigger=trigger,
        timezone=zone,
        next_fire_at=None,
        paused=False,
        owner="admin",
        from_config=False,
        created_at=NOW,
        updated_at=NOW,
    )


def run(number: int, robot: str, state: str, started: datetime, ended: datetime | None) -> RunOut:
    return RunOut(
        id=number, robot=robot, agent="local", state=state, pid=None, exit_code=None, manual=True,
        requested_by="admin", created_at=started, started_at=started, ended_at=ended, transitions=[],
    )  # fmt: skip


def x(moment: datetime) -> float:
    return round(LABEL_WIDTH + (moment - (NOW - timedelta(days=7))).total_seconds() * UNIT, 1)


def test_windows_are_bars_fires_are_ticks_and_runs_are_coloured_by_outcome() -> None:
    window = schedule(
        "office", "a", {"kind": "window", "days": ["thu"], "start": "09:00", "end": "18:00"}, "Europe/Berlin"
    )
    noon = schedule("noon", "b", {"kind": "cron", "expression": "0 12 * * *"})
    seconds = schedule("busy", "b", {"kind": "cron", "expression": "* * * * * *"})
    opens = datetime(2027, 3, 4, 8, 0, tzinfo=UTC)  # 09:00 in Berlin (CET)
    fires = [PlannedFire(schedule="office", at=opens, action="robots.start")]
    fires += [PlannedFire(schedule="noon", at=NOW + timedelta(days=day), action="robots.start") for day in (1, 2)]
    fires += [
        PlannedFire(schedule="busy", at=NOW + timedelta(hours=3, seconds=s), action="robots.start") for s in range(3)
    ]
    fires.append(PlannedFire(schedule="unknown", at=NOW, action="robots.start"))
    runs = [
        run(1, "a", "succeeded", NOW - timedelta(days=1), NOW - timedelta(days=1) + timedelta(hours=2)),
        run(2, "b", "failed", NOW - timedelta(days=9), NOW - timedelta(days=6)),  # clipped at the left edge
        run(3, "b", "stopped", NOW - timedelta(days=10), NOW - timedelta(days=8)),  # before the range: left out
        run(4, "a", "running", NOW - timedelta(minutes=5), None),
    ]
    drawn = draw_timeline(NOW, ["a", "b"], [window, noon, seconds], Planned(fires=fires, truncated=False), runs)
    a, b = drawn.rows
    [bar] = a.windows
    assert bar.x == x(opens) and round(bar.width) == round(9 * 3600 * UNIT)
    assert bar.title == "office: window Thu 2027-03-04 09:00:00 CET to Thu 2027-03-04 18:00:00 CET"
    assert a.ticks == [] and [tick.x for tick in b.ticks] == [
        x(NOW + timedelta(days=1)),
        x(NOW + timedelta(days=2)),
        x(NOW + timedelta(hours=3)),
    ]
    assert b.ticks[-1].title.endswith("and 2 more")
    assert [(shape.state, shape.colour) for shape in a.runs] == [("succeeded", "#1a7f37"), ("running", "#1f6feb")]
    assert [shape.x for shape in b.runs] == [LABEL_WIDTH] and b.runs[0].state == "failed"
    assert drawn.now_x == x(NOW) and len(drawn.days) == 14 and drawn.days[0].title == "Thu 25"
