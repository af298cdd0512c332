"""The runs' figures of the dashboard (robots/run_stats.py) on both stores: runs today by state, success rates over
24 hours and 7 days, recent failures with their reasons, late and longest runs, runs per hour, a reader's robots
only; and each windowed read finds its runs through the creation-time index, not by reading every run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, text

from robofleet.robots import run_stats
from robofleet.robots.models import Robot, Run
from robofleet.store import Store

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)


def add_run(
    store: Store,
    robot: str,
    state: str,
    created: datetime,
    seconds: float | None = None,
    **fields: Any,
) -> int:
    """A run of `robot` created at `created`, started at once and, when `seconds` is given, ended that long after."""
    with store.transaction() as session:
        run = Run(
            robot=robot,
            agent="local",
            state=state,
            created_at=created,
            started_at=created,
            ended_at=created + timedelta(seconds=seconds) if seconds is not None else None,
            transitions=[],
            **fields,
        )
        session.add(run)
        session.flush()
        return run.id


def fleet(store: Store) -> dict[str, int]:
    with store.transaction() as session:
        for name in ("alpha", "beta"):
            session.add(Robot(name=name, argv=["true"]))
    ago = lambda **delta: NOW - timedelta(**delta)  # noqa: E731 - read as "ago(hours=2)"
    return {  # in the order of their creation, as ids follow it
        "failed_long_ago": add_run(store, "alpha", "failed", ago(days=10), 1, exit_code=1),
        "ok_days_ago": add_run(store, "alpha", "succeeded", ago(days=3), 20),
        "killed": add_run(
            store, "beta", "killed", ago(hours=20), 600, error="killed by SIGKILL at the safe-stop timeout"
        ),
        "ok10": add_run(store, "alpha", "succeeded", ago(hours=3), 10),
        "ok20": add_run(store, "alpha", "succeeded", ago(hours=2), 20),
        "ok30": add_run(store, "alpha", "succeeded", ago(hours=1, minutes=10), 30),
        "failed": add_run(store, "alpha", "failed", ago(minutes=50), 5, exit_code=3, error="exit 3: no invoices"),
        "beta_running": add_run(store, "beta", "running", ago(minutes=5), runtime_deadline=ago(minutes=1)),
        "alpha_running": add_run(store, "alpha", "running", ago(seconds=100)),  # usual run: 20 s
    }


def test_the_dashboard_figures(store: Store) -> None:
    runs = fleet(store)
    with store.transaction() as session:
        figures = run_stats.dashboard(session, NOW, None)

    assert figures.today["succeeded"] == 3 and figures.today["failed"] == 1 and figures.today["running"] == 2
    assert figures.today["killed"] == 0  # created yesterday
    assert figures.today_total == 6

    rates = {rate.robot: rate for rate in figures.rates}
    alpha = rates["alpha"]
    assert (alpha.succeeded_day, alpha.ended_day, alpha.succeeded_week, alpha.ended_week) == (3, 4, 4, 5)
    assert alpha.rate_day == 0.75 and alpha.rate_week == 0.8
    assert alpha.usual_seconds == 20 and alpha.sample == 4  # the median of its last successful runs
    assert rates["beta"].rate_day == 0.0 and rates["beta"].usual_seconds is None

    assert [(failure.id, failure.error) for failure in figures.failures] == [
        (runs["failed"], "exit 3: no invoices"),
        (runs["killed"], "killed by SIGKILL at the safe-stop timeout"),
    ]  # newest first; the failure of ten days ago is past the week

    assert [run.id for run in figures.running] == [runs["beta_running"], runs["alpha_running"]]
    assert all(run.late for run in figures.running)  # past its max run time; five times its robot's usual run
    assert [run.id for run in figures.late] == [runs["beta_running"], runs["alpha_running"]]
    assert figures.running[1].usual_seconds is not None and abs(figures.running[1].usual_seconds - 20) < 0.01

    assert [run.id for run in figures.longest][:2] == [runs["killed"], runs["ok30"]]
    assert abs(figures.longest[0].seconds - 600) < 0.01

    assert len(figures.hours) == 24 and figures.hours[-1].start == NOW.replace(minute=0)
    by_hour = {hour.start.hour: hour.counts for hour in figures.hours if hour.counts}
    assert by_hour[12] == {"succeeded": 1}  # ok10, created 12:30
    assert by_hour[14] == {"succeeded": 1, "failed": 1}  # ok30 at 14:20, the failure at 14:40
    assert by_hour[15] == {"running": 2}
    assert by_hour[19] == {"killed": 1}  # yesterday 19:30
    assert sum(hour.total for hour in figures.hours) == 7


def test_a_reader_counts_only_the_robots_it_may_see(store: Store) -> None:
    runs = fleet(store)
    with store.transaction() as session:
        figures = run_stats.dashboard(session, NOW, frozenset({"beta"}))
    assert figures.today_total == 1
    assert [rate.robot for rate in figures.rates] == ["beta"]
    assert [failure.id for failure in figures.failures] == [runs["killed"]]
    assert [run.id for run in figures.running] == [runs["beta_running"]]
    assert sum(hour.total for hour in figures.hours) == 2


def test_runs_by_robot_and_state(store: Store) -> None:
    fleet(store)
    with store.transaction() as session:
        by_state = run_stats.runs_by_robot_and_state(session)
    assert ("alpha", "succeeded", 4) in by_state and ("alpha", "failed", 2) in by_state
    assert ("beta", "running", 1) in by_state and ("beta", "killed", 1) in by_state


@contextmanager
def statements(store: Store) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements run on `store` meanwhile, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", record)


def test_the_reads_search_an_index(store: Store) -> None:
    """Each read finds its runs through an index (the window's range, a robot's newest runs, the active ones),
    never by reading every run: on SQLite no step of its plan scans `runs`; on PostgreSQL, told to avoid reading
    whole tables where an index serves (a table this small is read whole otherwise), none reads `runs` whole."""
    fleet(store)
    with statements(store) as seen, store.transaction() as session:
        run_stats.dashboard(session, NOW, None)
    windowed = [(sql, params) for sql, params in seen if "FROM runs" in sql]
    assert len(windowed) >= 8  # today, rates, usual runs (per robot), failures, active, longest, hours
    postgres = store.engine.dialect.name == "postgresql"
    used: set[str] = set()
    with store.engine.connect() as connection:
        if postgres:
            connection.exec_driver_sql("SET enable_seqscan = off")
        for sql, params in windowed:
            explain = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
            plan = [str(row[-1]) for row in connection.exec_driver_sql(explain + sql, params).all()]
            if postgres:
                assert not any("Seq Scan on runs" in step for step in plan), (sql, plan)
            else:
                assert not any(step.startswith("SCAN runs") for step in plan), (sql, plan)
            used.update(word for step in plan for word in step.replace("(", " ").split() if word.startswith("ix_"))
        if postgres:
            connection.execute(text("RESET enable_seqscan"))
    assert "ix_runs_created_at_robot_state" in used, used
