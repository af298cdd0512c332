"""The scheduler engine under 10,000 schedules, against APScheduler 3.11 run side by side on the same machine.

Both systems run the same schedules, one after the other (never overlapping), each in a process of its own whose
CPU and RSS are sampled with psutil:
- robofleet: a real `robofleet serve` on SQLite. The schedules are created through the API, as `schedules.create`
  activities in lists of 100 posted by 4 clients at once (the table's "create N s"); the fires are read back from
  the `schedule_fires` table (read-only) once the run is over.
- APScheduler: a BackgroundScheduler with the SQLAlchemyJobStore on a SQLite file (the setup most users run)
  and its default thread pool, the same jobs as CronTrigger(second=...)/IntervalTrigger/DateTrigger, a weekly
  window as two CronTriggers (its start and its end: APScheduler has no windows). misfire_grace_time=60 and
  coalesce=True, as robofleet's defaults (misfire "skip" after a 60 s grace; missed slots become one fire). A
  job only returns the time it ran; EVENT_JOB_EXECUTED gives its scheduled_run_time. "create N s": add_job of
  every job, then start() (which stores them, one INSERT each).

The mix: 3% weekly windows over 3 robots (3 of them open and close during the run and start and stop a real robot
on robofleet; the others open on other days), the rest half cron with seconds (every 10-60 s, varied second
offsets), half interval (10-60 s, varied anchors); cron and interval ones target `system.echo`, so the figures
are the scheduler's. Lateness is the actual time (robofleet: the fire row's fired_at; APScheduler: when the job
ran) minus the planned time, over the fires planned in the measured run; missed are planned fires of the run
(from robofleet's triggers) not fired; doubled, planned fires fired more than once. CPU % is of one core: busy
over the run, idle over a stretch where nothing falls due (the herd's schedules stored, due later). The herd:
N one-off fires due in the same second; the time from that second until the last has fired.
Targets on 2 cores: p99 lateness < 100 ms, 0 missed, 0 doubled, herd < 2 s, lateness and CPU no worse than the peer.
Usage: python bench/scheduler.py [--schedules 10000] [--minutes 3] [--idle 30]   (quick: --schedules 1000 --minutes 1)
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Server, percentile, print_table, serve

COUNTER = [sys.executable, str(Path(__file__).resolve().parents[1] / "examples" / "robots" / "counter.py")]
ROBOTS = ("bench-r0", "bench-r1", "bench-r2")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
GRACE_SECONDS = 60.0  # robofleet's default misfire grace, given to APScheduler too
ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)
LIVE_LEAD = 20  # seconds from setup until the live windows open
LEAD = 3.0  # seconds from setup until the measured run begins
HERD_TIMEOUT = 300.0  # seconds the herd is waited for
LIST_SIZE, CLIENTS = 100, 4  # schedules.create activities per POST, clients posting at once


# ---- the schedules ------------------------------------------------------------------------------------------------


def make_specs(count: int, seed: int = 13) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, trigger spec in robofleet's shape, target) for `count` schedules; the live windows come later."""
    rng = random.Random(seed)
    windows = max(len(ROBOTS), count * 3 // 100)
    today = datetime.now(UTC).weekday()
    other_days = [DAYS[(today + k) % 7] for k in range(2, 7)]  # never today or tomorrow: closed during the run
    specs: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for index in range(count):
        name = f"s{index:05d}"
        echo = {"action": "system.echo", "args": {"message": name}}
        if index < windows:
            hour = rng.randint(5, 12)
            days = sorted(rng.sample(other_days, 3), key=DAYS.index)
            trigger = {"kind": "window", "days": days, "start": f"{hour:02d}:00", "end": f"{hour + 8:02d}:30"}
            target = {"action": "robots.start", "args": {"name": ROBOTS[index % len(ROBOTS)]}}
            specs.append((name, trigger, target))
        elif index % 2:
            period = rng.choice((10, 12, 15, 20, 30, 60))
            offset = rng.randrange(period)
            seconds = str(offset) if period == 60 else f"{offset}-59/{period}"
            specs.append((name, {"kind": "cron", "expression": f"{seconds} * * * * *"}, echo))
        else:
            period = rng.randint(10, 60)
            start = ANCHOR + timedelta(seconds=rng.randrange(period))
            specs.append((name, {"kind": "interval", "seconds": period, "start": start.isoformat()}, echo))
    return specs


def live_windows(now: float) -> list[tuple[str, float, float]]:
    """Windows (name, start, end) that open and close during the run, one per robot; none across midnight."""
    start = float(int(now) + LIVE_LEAD)
    end = start + 30
    if datetime.fromtimestamp(start, UTC).date() != datetime.fromtimestamp(end, UTC).date():
        return []
    return [(f"live-{robot}", start + index, end + index) for index, robot in enumerate(ROBOTS)]


def window_spec(start: float, end: float) -> dict[str, Any]:
    begin, finish = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
    return {
        "kind": "window",
        "days": [DAYS[begin.weekday()]],
        "start": begin.strftime("%H:%M:%S"),
        "end": finish.strftime("%H:%M:%S"),
    }


def expected(
    specs: list[tuple[str, dict[str, Any], dict[str, Any]]], live: list[tuple[str, float, float]], t0: float, t1: float
) -> set[tuple[str, float]]:
    """Every planned fire (name, time) in [t0, t1), from robofleet's own triggers; a window: its start and end."""
    from robofleet.schedules.triggers import parse_trigger

    begin, end = datetime.fromtimestamp(t0, UTC), datetime.fromtimestamp(t1, UTC)
    planned: set[tuple[str, float]] = set()
    for name, spec, _ in specs:
        if spec["kind"] == "window":
            continue  # opens on other days: nothing planned in the run
        trigger = parse_trigger(spec, "UTC")
        at = trigger.next_fire(begin - timedelta(microseconds=1))
        while at is not None and at < end:
            planned.add((name, at.timestamp()))
            at = trigger.next_fire(at)
    for name, start, finish in live:
        planned.update((name, moment) for moment in (start, finish) if t0 <= moment < t1)
    return planned


# ---- measuring ----------------------------------------------------------------------------------------------------


@dataclass
class Sample:
    """CPU % (of one core) of `pid` over [begin, end], and its largest RSS sampled each second meanwhile."""

    pid: int
    begin: float
    end: float
    cpu: float = float("nan")
    rss_mb: float = 0.0
    thread: threading.Thread | None = None

    def start(self) -> Sample:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        process = psutil.Process(self.pid)
        time.sleep(max(0.0, self.begin - time.time()))
        first, began = process.cpu_times(), time.time()
        while time.time() < self.end:
            self.rss_mb = max(self.rss_mb, process.memory_info().rss / 1e6)
            time.sleep(min(1.0, max(0.0, self.end - time.time())))
        last, ended = process.cpu_times(), time.time()
        spent = (last.user + last.system) - (first.user + first.system)
        self.cpu = 100 * spent / (ended - began) if ended - began >= 0.5 else float("nan")
        self.rss_mb = max(self.rss_mb, process.memory_info().rss / 1e6)

    def join(self) -> Sample:
        assert self.thread is not None
        self.thread.join()
        return self


@dataclass
class Result:
    system: str
    lateness_ms: list[float] = field(default_factory=list)
    fired: int = 0
    expected: int = 0
    missed: int = 0
    doubled: int = 0
    extra: int = 0
    herd_seconds: float = float("nan")
    herd_fired: int = 0
    cpu_busy: float = float("nan")
    cpu_idle: float = float("nan")
    rss_mb: float = float("nan")
    setup_seconds: float = float("nan")
    notes: list[str] = field(default_factory=list)


def score(result: Result, fires: list[tuple[str, float, float]], planned: set[tuple[str, float]]) -> None:
    """Lateness, fired, missed, doubled and extra of `fires` (name, planned, actual) against the `planned` ones."""
    seen: Counter[tuple[str, float]] = Counter()
    for name, at, actual in fires:
        key = (name, round(at, 3))
        if key not in planned:
            continue
        seen[key] += 1
        if seen[key] == 1:
            result.lateness_ms.append((actual - at) * 1000)
    result.expected = len(planned)
    result.fired = len(seen)
    result.missed = len(planned) - len(seen)
    result.doubled = sum(count - 1 for count in seen.values())
    run = (min(at for _, at in planned), max(at for _, at in planned)) if planned else (0.0, 0.0)
    result.extra = sum(1 for name, at, _ in fires if run[0] <= at <= run[1] and (name, round(at, 3)) not in planned)


def settle(count: Any, timeout: float = GRACE_SECONDS + 5, quiet: float = 3.0) -> None:
    """Wait until `count()` stops growing for `quiet` seconds (a late fire may still come), at most `timeout`."""
    deadline = time.time() + timeout
    last, since = count(), time.time()
    while time.time() < deadline and time.time() - since < quiet:
        time.sleep(0.5)
        now = count()
        if now != last:
            last, since = now, time.time()


# ---- robofleet ----------------------------------------------------------------------------------------------------


def _db(server: Server) -> Path:
    return server.workdir / "robofleet-data" / "robofleet.db"


def create_all(server: Server, specs: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> float:
    """Create `specs` through the API (`schedules.create` activities in lists of LIST_SIZE, CLIENTS at once);
    the seconds it took."""
    lists = [specs[start : start + LIST_SIZE] for start in range(0, len(specs), LIST_SIZE)]

    errors: list[BaseException] = []

    def client(mine: list[list[tuple[str, dict[str, Any], dict[str, Any]]]]) -> None:
        try:
            post(mine)
        except BaseException as error:  # a thread's failure is the run's
            errors.append(error)

    def post(mine: list[list[tuple[str, dict[str, Any], dict[str, Any]]]]) -> None:
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=400) as api:
            for items in mine:
                body = [
                    {"action": "schedules.create", "args": {"name": name, "trigger": trigger, "target": target}}
                    for name, trigger, target in items
                ]
                answer = api.post("/api/v1/activities", params={"wait": "300"}, json=body)
                assert answer.status_code == 201, answer.text
                failed = [a for a in answer.json()["activities"] if a["state"] != "succeeded"]
                assert not failed, failed[0]

    began = time.perf_counter()
    threads = [threading.Thread(target=client, args=(lists[index::CLIENTS],)) for index in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - began


def _fires(db: Path, where: Any = None, outcome: str | None = "fired") -> list[tuple[str, float, float]]:
    """(schedule, planned, fired_at) of the stored fires with `outcome` (None: any), read-only."""
    from sqlalchemy import create_engine, select

    from robofleet.schedules.models import ScheduleFire

    engine = create_engine(f"sqlite:///file:{db}?mode=ro&uri=true", connect_args={"timeout": 60})
    query = select(ScheduleFire.schedule, ScheduleFire.planned_at, ScheduleFire.fired_at)
    if outcome is not None:
        query = query.where(ScheduleFire.outcome == outcome)
    if where is not None:
        query = query.where(where)
    with engine.connect() as connection:
        rows = [(name, planned.timestamp(), fired.timestamp()) for name, planned, fired in connection.execute(query)]
    engine.dispose()
    return rows


def _count(db: Path, where: Any) -> int:
    from sqlalchemy import create_engine, func, select

    from robofleet.schedules.models import ScheduleFire

    engine = create_engine(f"sqlite:///file:{db}?mode=ro&uri=true", connect_args={"timeout": 60})
    with engine.connect() as connection:
        value = connection.execute(select(func.count()).select_from(ScheduleFire).where(where)).scalar_one()
    engine.dispose()
    return int(value)


def robofleet_run(specs: list[tuple[str, dict[str, Any], dict[str, Any]]], minutes: float, result: Result) -> None:
    from robofleet.schedules.models import ScheduleFire

    with serve("sqlite") as server:
        api = httpx.Client(base_url=server.url, headers=server.headers, timeout=120)
        for robot in ROBOTS:
            assert api.post("/api/v1/robots", json={"name": robot, "argv": COUNTER}).status_code == 201
        result.setup_seconds = create_all(server, specs)
        live = live_windows(time.time())
        for index, (name, start, end) in enumerate(live):
            target = {"action": "robots.start", "args": {"name": ROBOTS[index]}}
            answer = api.post(
                "/api/v1/schedules", json={"name": name, "trigger": window_spec(start, end), "target": target}
            )
            assert answer.status_code == 201, answer.text
        t0 = time.time() + LEAD
        t1 = t0 + minutes * 60
        sample = Sample(server.process.pid, t0, t1).start().join()
        before = ScheduleFire.planned_at < datetime.fromtimestamp(t1, UTC)
        settle(lambda: _count(_db(server), before))
        result.cpu_busy, result.rss_mb = sample.cpu, sample.rss_mb
        planned = expected(specs, live, t0, t1)  # after the run: it would take CPU from it
        score(result, _fires(_db(server)), {(name, round(at, 3)) for name, at in planned})


def robofleet_herd(count: int, idle: float, result: Result) -> None:
    """N one-offs due in one second, placed after their creation (as long as the run's took, and half more) and
    the idle stretch."""
    from robofleet.schedules.models import ScheduleFire

    with serve("sqlite") as server:
        due = float(int(time.time() + 1.5 * result.setup_seconds + idle + 8))
        at = datetime.fromtimestamp(due, UTC)
        echo = {"action": "system.echo", "args": {"message": "herd"}}
        herd = [(f"h{i:05d}", {"kind": "once", "at": at.isoformat()}, echo) for i in range(count)]
        create_all(server, herd)
        if time.time() > due - idle / 2:
            result.notes.append("robofleet herd: setup ran into the idle stretch")
        result.cpu_idle = Sample(server.process.pid, due - idle - 1, due - 1).start().join().cpu
        deadline = due + HERD_TIMEOUT
        where = ScheduleFire.planned_at == at
        while time.time() < deadline and _count(_db(server), where) < count:  # fired or skipped
            time.sleep(0.5)
        fires = _fires(_db(server), where)
        result.herd_fired = len(fires)
        if len(fires) == count:
            result.herd_seconds = max(fired for _, _, fired in fires) - due
        else:
            result.notes.append(
                f"robofleet herd: {len(fires):,} of {count:,} fired; the others were skipped as misfires (later "
                f"than {GRACE_SECONDS:g} s) or had not come within {HERD_TIMEOUT:g} s"
            )


# ---- APScheduler, in a process of its own -------------------------------------------------------------------------


def tick() -> float:
    """The peer's job: returns when it ran."""
    return time.time()


def peer_child(mode: str, spec_path: str, out_path: str) -> None:
    """Runs in the peer's process: starts APScheduler with the jobs of `spec_path`, prints `READY {json}`, then
    reads commands from stdin; writes every executed job (id, scheduled, ran) to `out_path` at the end."""
    from apscheduler.events import (  # type: ignore[import-untyped]
        EVENT_JOB_EXECUTED,
        EVENT_JOB_MISSED,
        JobExecutionEvent,
    )
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore  # type: ignore[import-untyped]
    from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
    from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
    from apscheduler.triggers.date import DateTrigger  # type: ignore[import-untyped]
    from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

    spec = json.loads(Path(spec_path).read_text())
    store = SQLAlchemyJobStore(url=f"sqlite:///{Path(spec_path).with_suffix('.db')}")
    scheduler = BackgroundScheduler(
        jobstores={"default": store},
        job_defaults={"misfire_grace_time": int(GRACE_SECONDS), "coalesce": True},
        timezone="UTC",
    )
    executed: list[tuple[str, float, float]] = []
    missed: list[tuple[str, float]] = []

    def listen(event: JobExecutionEvent) -> None:
        name = str(event.job_id).split("#")[0]
        if event.code == EVENT_JOB_EXECUTED:
            executed.append((name, event.scheduled_run_time.timestamp(), float(event.retval)))
        else:
            missed.append((name, event.scheduled_run_time.timestamp()))

    scheduler.add_listener(listen, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED)

    def window_jobs(name: str, trigger: dict[str, Any]) -> list[tuple[str, Any]]:
        days = ",".join(trigger["days"])
        jobs = []
        for bound in ("start", "end"):
            hour, minute, *rest = (int(part) for part in trigger[bound].split(":"))
            cron = CronTrigger(day_of_week=days, hour=hour, minute=minute, second=rest[0] if rest else 0, timezone=UTC)
            jobs.append((f"{name}#{bound}", cron))
        return jobs

    def jobs_of(name: str, trigger: dict[str, Any]) -> list[tuple[str, Any]]:
        if trigger["kind"] == "cron":
            second, minute, hour, day, month, weekday = trigger["expression"].split()
            fields = {"second": second, "minute": minute, "hour": hour, "day": day, "month": month}
            return [(name, CronTrigger(**fields, day_of_week=weekday, timezone=UTC))]
        if trigger["kind"] == "interval":
            start = datetime.fromisoformat(trigger["start"])
            return [(name, IntervalTrigger(seconds=trigger["seconds"], start_date=start, timezone=UTC))]
        if trigger["kind"] == "once":
            return [(name, DateTrigger(run_date=datetime.fromisoformat(trigger["at"]), timezone=UTC))]
        return window_jobs(name, trigger)

    began = time.perf_counter()
    for name, trigger in spec["schedules"]:
        for job_id, job_trigger in jobs_of(name, trigger):
            scheduler.add_job(tick, job_trigger, id=job_id)
    scheduler.start()  # stores the jobs added before it, one INSERT each
    setup = time.perf_counter() - began
    live = live_windows(time.time()) if mode == "main" else []
    for name, start, end in live:
        for job_id, job_trigger in window_jobs(name, window_spec(start, end)):
            scheduler.add_job(tick, job_trigger, id=job_id)
    print("READY " + json.dumps({"live": live, "setup_seconds": setup}), flush=True)
    # One command on stdin, "settle T S": wait (at most S s) until no job planned before T comes any more.
    _, before, timeout = sys.stdin.readline().split()
    limit = float(before)

    def came() -> int:
        return sum(1 for _, at, _ in executed if at < limit) + sum(1 for _, at in missed if at < limit)

    settle(came, float(timeout))
    scheduler.shutdown(wait=True)
    Path(out_path).write_text(json.dumps({"executed": executed, "missed": missed}))


@dataclass
class Peer:
    process: subprocess.Popen[str]
    ready: dict[str, Any]
    out: Path
    setup_seconds: float

    def finish(self, before: float, timeout: float = GRACE_SECONDS + 5) -> list[tuple[str, float, float]]:
        """Let the fires planned before `before` come, stop the peer, and its executed jobs."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"settle {before} {timeout}\n")
        self.process.stdin.flush()
        self.process.wait(timeout + 120)
        return [(name, at, ran) for name, at, ran in json.loads(self.out.read_text())["executed"]]


def start_peer(mode: str, specs: list[tuple[str, dict[str, Any], dict[str, Any]]], workdir: Path) -> Peer:
    spec = workdir / f"{mode}.json"
    spec.write_text(json.dumps({"schedules": [[name, trigger] for name, trigger, _ in specs]}))
    out = workdir / f"{mode}-out.json"
    began = time.time()
    command = [sys.executable, str(Path(__file__).resolve()), "--peer-child", mode, str(spec), str(out)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("READY "):
        process.kill()
        raise RuntimeError(f"the APScheduler peer did not start: {line!r}")
    return Peer(process, json.loads(line.removeprefix("READY ")), out, time.time() - began)


def peer_run(
    specs: list[tuple[str, dict[str, Any], dict[str, Any]]], minutes: float, result: Result, workdir: Path
) -> float:
    """The peer's run; returns how long it took to start with the jobs (to place its herd after its setup)."""
    peer = start_peer("main", specs, workdir)
    live = [(str(name), float(start), float(end)) for name, start, end in peer.ready["live"]]
    result.setup_seconds = float(peer.ready["setup_seconds"])
    t0 = time.time() + LEAD
    t1 = t0 + minutes * 60
    sample = Sample(peer.process.pid, t0, t1).start().join()
    result.cpu_busy, result.rss_mb = sample.cpu, sample.rss_mb
    fires = peer.finish(t1)
    planned = expected(specs, live, t0, t1)  # after the run: it would take CPU from it
    score(result, fires, {(name, round(at, 3)) for name, at in planned})
    return peer.setup_seconds


def peer_herd(count: int, idle: float, result: Result, workdir: Path, setup_seconds: float) -> None:
    due = float(int(time.time() + 1.5 * setup_seconds + idle + 8))
    at = datetime.fromtimestamp(due, UTC).isoformat()
    herd: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        (f"h{i:05d}", {"kind": "once", "at": at}, {}) for i in range(count)
    ]
    peer = start_peer("herd", herd, workdir)
    if time.time() > due - idle / 2:
        result.notes.append("APScheduler herd: setup ran into the idle stretch")
    result.cpu_idle = Sample(peer.process.pid, due - idle - 1, due - 1).start().join().cpu
    fires = [ran for _, planned, ran in peer.finish(due + 0.5, HERD_TIMEOUT) if planned == due]
    result.herd_fired = len(fires)
    if len(fires) == count:
        result.herd_seconds = max(fires) - due
    else:
        result.notes.append(
            f"APScheduler herd: {len(fires):,} of {count:,} fired; the others were missed (later than "
            f"{GRACE_SECONDS:g} s) or had not come within {HERD_TIMEOUT:g} s"
        )


# ---- the table ----------------------------------------------------------------------------------------------------


def progress(text: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} {text}", file=sys.stderr, flush=True)


def ratio(ours: float, theirs: float) -> str:
    if not theirs or theirs != theirs or ours != ours:
        return "-"
    return f"{ours / theirs:.2f}x"


def row(result: Result) -> list[object]:
    late = result.lateness_ms
    return [
        result.system,
        f"{percentile(late, 0.5):.1f}",
        f"{percentile(late, 0.99):.1f}",
        f"{max(late) if late else float('nan'):.1f}",
        f"{result.fired:,}/{result.expected:,}",
        f"{result.missed:,}",
        f"{result.doubled:,}",
        f"{result.herd_seconds:.2f}",
        f"{result.cpu_busy:.1f}",
        f"{result.cpu_idle:.2f}",
        f"{result.rss_mb:.0f}",
        f"{result.setup_seconds:.1f}",
    ]


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--peer-child":
        peer_child(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--minutes", type=float, default=3)
    parser.add_argument("--idle", type=float, default=30, help="seconds of the idle stretch before the herd")
    args = parser.parse_args()
    specs = make_specs(args.schedules)
    ours, peer = Result("robofleet"), Result("APScheduler 3.11")
    progress("robofleet: the run")
    robofleet_run(specs, args.minutes, ours)
    progress("robofleet: idle, then the herd")
    robofleet_herd(args.schedules, args.idle, ours)
    with tempfile.TemporaryDirectory(prefix="robofleet-bench-apscheduler-") as workdir:
        progress("APScheduler: the run")
        setup = peer_run(specs, args.minutes, peer, Path(workdir))
        progress(f"APScheduler: idle, then the herd (its setup took {setup:.0f} s)")
        peer_herd(args.schedules, args.idle, peer, Path(workdir), setup)
    for result in (ours, peer):
        if result.extra:
            result.notes.append(f"{result.system}: {result.extra} fire(s) at times no trigger planned")
    ratios: list[object] = ["robofleet / APScheduler"]
    for index, (a, b) in enumerate(zip(row(ours)[1:], row(peer)[1:], strict=True)):
        numeric = index not in (3,)
        ratios.append(ratio(float(str(a).replace(",", "")), float(str(b).replace(",", ""))) if numeric else "-")
    target: list[object] = ["target", "", "< 100", "", "all", "0", "0", "< 2", "<= peer", "", "", ""]
    windows = max(len(ROBOTS), args.schedules * 3 // 100)
    print_table(
        f"{args.schedules:,} schedules for {args.minutes:g} min ({windows} weekly windows over {len(ROBOTS)} robots, "
        f"3 open during the run; the rest cron with seconds and interval, 10-60 s, system.echo), then a herd of "
        f"{args.schedules:,} one-offs due in one second. SQLite both; APScheduler: BackgroundScheduler, "
        f"SQLAlchemyJobStore, misfire_grace_time={GRACE_SECONDS:g} s, coalesce=True (robofleet's defaults). "
        "Lateness: actual - planned; CPU % of one core; create N: robofleet through the API, APScheduler add_job",
        [
            "system",
            "p50 ms",
            "p99 ms",
            "max ms",
            "fired/planned",
            "missed",
            "doubled",
            "herd s",
            "CPU busy %",
            "CPU idle %",
            "RSS MB",
            "create N s",
        ],
        [row(ours), row(peer), ratios, target],
    )
    for note in ours.notes + peer.notes:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
