"""The agent's graphical sessions: Xvfb displays started, checked, restarted and stopped by the keeper, attached
displays only checked, and displays adopted by the next agent process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from robofleet.agents import displays
from robofleet.agents.display_keeper import Status, stop_recorded
from robofleet.agents.displays import DisplaySpec
from robofleet.agents.worker import Worker
from tests.agents.conftest import ROOT, call, healthy, refused, spec, stop_everything
from tests.conftest import wait_until


def test_a_session_starts_healthy_with_the_size_asked_and_stops_when_a_sync_drops_it(display_worker: Worker) -> None:
    answer = call(display_worker, "session.sync", {"sessions": [spec("desk", width=1024, height=768)]})
    assert answer["instance"] and [s["name"] for s in answer["sessions"]] == ["desk"]
    assert answer["sessions"][0]["state"] in ("starting", "healthy")  # an Xvfb may be up before the answer
    status = healthy(display_worker, spec("desk", width=1024, height=768))
    assert status["display"].startswith(":") and status["pid"] and status["restarts"] == 0
    assert (status["screen_width"], status["screen_height"]) == (1024, 768)
    probe = displays.probe(status["display"])
    assert probe.answers and (probe.width, probe.height) == (1024, 768)
    states = [event["state"] for event in status["events"]]
    assert states[0] == "starting" and states[-1] == "healthy"
    seqs = [event["seq"] for event in status["events"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

    assert call(display_worker, "session.sync", {"sessions": []})["sessions"] == []
    assert not psutil.pid_exists(status["pid"]) or psutil.Process(status["pid"]).status() == psutil.STATUS_ZOMBIE
    assert not displays.probe(status["display"]).answers
    assert not (display_worker.displays.folder / "desk.json").exists()


def test_only_the_agent_and_its_robots_may_connect_to_its_displays(display_worker: Worker, tmp_path: Path) -> None:
    """An Xvfb started by the agent wants its cookie: a local client without it is refused, one with the agent's
    Xauthority (robots inherit it) gets in, and the cookie shows in no command line."""
    status = healthy(display_worker, spec("guarded"))
    agent_file = Path(os.environ["XAUTHORITY"])
    assert agent_file.parent == display_worker.displays.folder and agent_file.stat().st_mode & 0o077 == 0

    def xdpyinfo(xauthority: Path) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "XAUTHORITY": str(xauthority), "DISPLAY": status["display"]}
        return subprocess.run(["xdpyinfo"], capture_output=True, text=True, env=env, timeout=10, check=False)

    stranger = xdpyinfo(tmp_path / "none")
    assert stranger.returncode != 0 and "Authorization required" in stranger.stdout + stranger.stderr
    assert xdpyinfo(agent_file).returncode == 0
    cookie = json.loads((display_worker.displays.folder / "guarded.json").read_text())["display"]["cookie"]
    assert len(cookie) == 32
    server = psutil.Process(status["pid"]).cmdline()
    assert "-auth" in server and all(cookie not in part for part in server)


def test_the_keeper_restarts_a_killed_xvfb_and_records_the_restart(display_worker: Worker) -> None:
    first = healthy(display_worker, spec("fragile"))
    os.kill(first["pid"], signal.SIGKILL)

    def restarted() -> Status | None:
        status = display_worker.displays.status("fragile")
        return status if status["state"] == "healthy" and status["pid"] != first["pid"] else None

    again = wait_until(restarted, 15, message=lambda: display_worker.displays.status("fragile"))
    assert again["restarts"] == 1
    reasons = [event["reason"] or "" for event in again["events"]]
    assert any("signal 9" in reason for reason in reasons), reasons
    assert any(reason.startswith("restart 1:") for reason in reasons), reasons
    assert displays.probe(str(again["display"])).answers


def test_a_display_number_in_use_fails_at_once_with_who_holds_it_and_is_not_tried_again(
    display_worker: Worker,
) -> None:
    taken = healthy(display_worker, spec("first"))
    call(display_worker, "session.sync", {"sessions": [spec("first"), spec("second", display=taken["display"])]})
    status = wait_until(
        lambda: (s := display_worker.displays.status("second"))["state"] == "failed" and s,
        10,
        message=lambda: display_worker.displays.status("second"),
    )
    assert f"display {taken['display']} is in use" in status["reason"]
    events = len(status["events"])
    time.sleep(3 * display_worker.displays.check_seconds)  # no storm of attempts: it stays failed, quietly
    later = display_worker.displays.status("second")
    assert later["state"] == "failed" and len(later["events"]) == events
    assert display_worker.displays.status("first")["pid"] == taken["pid"]  # the holder is untouched


def test_a_restart_policy_of_never_leaves_a_dead_display_failed(display_worker: Worker) -> None:
    status = healthy(display_worker, spec("once", restart="never"))
    os.kill(status["pid"], signal.SIGKILL)
    failed = wait_until(
        lambda: (s := display_worker.displays.status("once"))["state"] == "failed" and s,
        10,
        message=lambda: display_worker.displays.status("once"),
    )
    assert "restart policy is never" in failed["reason"] and failed["restarts"] == 0


def test_a_restart_asked_for_starts_a_new_display_now(display_worker: Worker) -> None:
    before = healthy(display_worker, spec("asked"))
    after = call(display_worker, "session.restart", {"name": "asked"})
    assert after["state"] == "healthy" and after["pid"] != before["pid"] and after["restarts"] == 1
    assert any(event["reason"] == "asked" for event in after["events"])
    assert refused(display_worker, "session.restart", {"name": "nobody"})["code"] == "not_found"


def test_a_changed_spec_restarts_the_display_with_it(display_worker: Worker) -> None:
    before = healthy(display_worker, spec("resized"))
    after = healthy(display_worker, spec("resized", width=640, height=480))
    assert after["pid"] != before["pid"] and (after["screen_width"], after["screen_height"]) == (640, 480)
    assert any(event["reason"] == "its settings changed" for event in after["events"])
    same = healthy(display_worker, spec("resized", width=640, height=480, record_seconds=5))
    assert same["pid"] == after["pid"]  # recording is not a new display


def test_an_attached_display_is_checked_never_started_nor_stopped(display_worker: Worker, tmp_path: Path) -> None:
    other = Worker(tmp_path / "other")  # someone else's display, as a logged-in user's :0 would be
    try:
        theirs = healthy(other, spec("theirs"))
        mine = healthy(display_worker, spec("mine", kind="attach", display=theirs["display"]))
        assert mine["pid"] is None and mine["display"] == theirs["display"]
        call(display_worker, "session.sync", {"sessions": []})
        assert displays.probe(theirs["display"]).answers  # only forgotten
    finally:
        stop_everything(other)
    [bad] = call(display_worker, "session.sync", {"sessions": [spec("nameless", kind="attach")]})["sessions"]
    assert bad["state"] == "failed" and "names its display" in bad["reason"]
    call(display_worker, "session.sync", {"sessions": [spec("gone", kind="attach", display=":919")]})
    status = wait_until(
        lambda: (s := display_worker.displays.status("gone"))["state"] == "unhealthy" and s,
        10,
        message=lambda: display_worker.displays.status("gone"),
    )
    assert "display :919 does not answer" in status["reason"]


def test_a_bad_spec_is_that_sessions_failure_with_a_reason_and_the_others_are_kept(display_worker: Worker) -> None:
    for wrong, said in [
        ({"width": 100}, "size"),
        ({"depth": 32}, "depth"),
        ({"kind": "vnc"}, "kind"),
        ({"restart": "sometimes"}, "restart"),
        ({"record_seconds": 500}, "record_seconds"),
        ({"display": "zero"}, "display"),
        ({"name": ".hidden"}, "a session name"),
        ({"name": "-dash"}, "a session name"),
    ]:
        bad = {**spec("bad"), **wrong}
        answer = call(display_worker, "session.sync", {"sessions": [bad, spec("good")]})
        statuses = {status["name"]: status for status in answer["sessions"]}
        assert set(statuses) == {bad["name"], "good"}, (wrong, answer)
        refused_one = statuses[bad["name"]]  # under the name as sent
        assert refused_one["state"] == "failed" and said in refused_one["reason"], (wrong, refused_one)
        assert refused_one["display"] is None and refused_one["pid"] is None and refused_one["events"] == []
        assert statuses["good"]["state"] != "failed"
        assert set(display_worker.displays.sessions) == {"good"}
    healthy(display_worker, spec("good"))
    # A kept session whose new spec is refused is no longer kept: its display goes.
    pid = display_worker.displays.status("good")["pid"]
    [status] = call(display_worker, "session.sync", {"sessions": [spec("good", depth=32)]})["sessions"]
    assert status["name"] == "good" and status["state"] == "failed" and "depth" in status["reason"]
    assert display_worker.displays.sessions == {}
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    twice = refused(display_worker, "session.sync", {"sessions": [spec("dup"), spec("dup")]})
    assert twice["code"] == "bad_args"
    assert display_worker.displays.sessions == {}


def test_a_sync_leaves_out_the_events_the_orchestrator_has_and_is_not_remembered(display_worker: Worker) -> None:
    healthy(display_worker, spec("told"))
    first = call(display_worker, "session.sync", {"sessions": [spec("told")]})
    events = first["sessions"][0]["events"]
    assert len(events) >= 2
    newest = events[-1]["seq"]
    since = call(
        display_worker,
        "session.sync",
        {"sessions": [spec("told")], "instance": first["instance"], "after_seq": events[0]["seq"]},
    )
    assert since["sessions"][0]["events"] == events[1:]
    none = call(
        display_worker, "session.sync", {"sessions": [spec("told")], "instance": first["instance"], "after_seq": newest}
    )
    assert none["sessions"][0]["events"] == [] and none["sessions"][0]["state"] == "healthy"
    # Another agent process's numbering says nothing about this one's: everything is sent.
    other = call(display_worker, "session.sync", {"sessions": [spec("told")], "instance": "x", "after_seq": newest})
    assert other["sessions"][0]["events"] == events
    assert refused(display_worker, "session.sync", {"sessions": [], "after_seq": "7"})["code"] == "bad_args"

    # Not remembered: the same command id is carried out again (a sync after a restart of the keeper's state).
    display_worker.execute("sync-1", "session.sync", {"sessions": [spec("told")]})
    again = display_worker.execute("sync-1", "session.sync", {"sessions": []})
    assert again["ok"] and again["result"]["sessions"] == []
    for command_id, name, args in [
        ("restart-1", "session.restart", {"name": "nobody"}),
        ("input-1", "session.input", {"name": "nobody", "kind": "key", "keys": "Return"}),
    ]:
        display_worker.execute(command_id, name, args)
    assert not {"sync-1", "restart-1", "input-1"} & set(display_worker._results)


def test_a_window_manager_is_started_in_the_display_and_restarted_when_it_dies(display_worker: Worker) -> None:
    status = healthy(display_worker, spec("managed", window_manager=["openbox"]))
    session = display_worker.displays.sessions["managed"]
    assert session.display is not None and session.display.wm_pid is not None
    wm = session.display.wm_pid
    os.kill(wm, signal.SIGKILL)
    wait_until(
        lambda: session.display is not None and session.display.wm_pid != wm and session.state == "healthy",
        15,
        message=lambda: display_worker.displays.status("managed"),
    )
    assert display_worker.displays.status("managed")["pid"] == status["pid"]  # the X server stayed
    missing = DisplaySpec.from_args(spec("unmanaged", window_manager=["no-such-window-manager"]))
    display_worker.displays.ensure(missing)
    failed = wait_until(
        lambda: (s := display_worker.displays.status("unmanaged"))["state"] == "failed" and s,
        10,
        message=lambda: display_worker.displays.status("unmanaged"),
    )
    assert "no-such-window-manager" in failed["reason"]


AGENT = """
import json, sys, time
from pathlib import Path
from robofleet.agents.worker import Worker
worker = Worker(Path(sys.argv[1]))
worker.start()
session = json.loads(sys.argv[2])
worker.execute("sync", "session.sync", {"sessions": [session]})
while worker.displays.status(session["name"])["state"] != "healthy":
    time.sleep(0.05)
print(json.dumps(worker.displays.status(session["name"])), flush=True)
time.sleep(600)
"""


def killed_agent(state: Path, session: dict[str, Any]) -> dict[str, Any]:
    """An agent process that started `session` and was then killed (-9): the status it had."""
    agent = subprocess.Popen(
        [sys.executable, "-c", AGENT, str(state), json.dumps(session)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    assert agent.stdout is not None
    try:
        return dict(json.loads(agent.stdout.readline()))
    finally:
        agent.kill()
        agent.wait()


@pytest.fixture
def agent_state(tmp_path: Path) -> Iterator[Path]:
    """The state directory of agent processes of the test: what they left running is stopped at its end."""
    state = tmp_path / "state"
    try:
        yield state
    finally:
        stop_recorded(state)


def test_a_killed_agents_display_is_adopted_by_the_next_agent_not_started_again(agent_state: Path) -> None:
    state = agent_state
    session = spec("kept")
    first = killed_agent(state, session)
    xvfb = first["pid"]
    assert psutil.pid_exists(xvfb)  # the agent's death leaves its display up, as it leaves its robots

    worker = Worker(state)
    try:
        worker.start()
        adopted = worker.displays.status("kept")
        assert adopted["pid"] == xvfb and adopted["display"] == first["display"]
        assert any("adopted" in (event["reason"] or "") for event in adopted["events"])
        status = healthy(worker, session)  # the orchestrator's next sync: the same session, so the same display
        assert status["pid"] == xvfb and status["restarts"] == 0
        # A display this worker started would be a child of this process (the adopted one may be too, when this
        # process reaps orphans).
        started = {p.pid for p in psutil.Process().children() if p.name() == "Xvfb"}
        assert started <= {xvfb}
    finally:
        stop_everything(worker)
    assert not psutil.pid_exists(xvfb) or psutil.Process(xvfb).status() == psutil.STATUS_ZOMBIE


def test_what_an_agent_that_is_gone_for_good_left_running_can_be_stopped(agent_state: Path) -> None:
    xvfb = killed_agent(agent_state, spec("left"))["pid"]
    assert stop_recorded(agent_state) == [xvfb]
    assert not psutil.pid_exists(xvfb) or psutil.Process(xvfb).status() == psutil.STATUS_ZOMBIE
    assert stop_recorded(agent_state) == []


def test_a_window_manager_that_keeps_dying_is_started_again_less_and_less_often(display_worker: Worker) -> None:
    display_worker.displays.check_seconds = 0.2
    healthy(display_worker, spec("dying-wm", window_manager=["sh", "-c", "exit 3"]), timeout=10)
    time.sleep(6)
    status = display_worker.displays.status("dying-wm")
    # At every check (30 in 6 s) without a pause; with one: at once, then after 1, 2, 4 s.
    assert 2 <= status["restarts"] <= 5, status
    reasons = [event["reason"] or "" for event in status["events"]]
    assert any("started again in" in reason and "exited with 3" in reason for reason in reasons), reasons


def test_removing_a_session_whose_display_is_slow_to_stop_holds_no_other_session(display_worker: Worker) -> None:
    slow = healthy(display_worker, spec("slow"))
    healthy(display_worker, spec("other"))
    os.kill(slow["pid"], signal.SIGSTOP)  # SIGTERM waits: it is killed after STOP_SECONDS
    try:
        remover = threading.Thread(
            target=lambda: call(display_worker, "session.sync", {"sessions": [spec("other")]}), daemon=True
        )
        remover.start()
        time.sleep(0.5)
        assert remover.is_alive()  # still stopping it
        began = time.monotonic()
        statuses = display_worker.displays.statuses()
        assert time.monotonic() - began < 1.0 and [s["name"] for s in statuses] == ["other"]
        remover.join(10)
        assert not remover.is_alive()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(slow["pid"], signal.SIGCONT)
    assert not psutil.pid_exists(slow["pid"]) or psutil.Process(slow["pid"]).status() == psutil.STATUS_ZOMBIE


STARTING_AGENT = """
import json, sys
from pathlib import Path
from robofleet.agents.worker import Worker
worker = Worker(Path(sys.argv[1]))
worker.start()
worker.execute("sync", "session.sync", {"sessions": [json.loads(sys.argv[2])]})
sys.stdin.read()
"""


def test_an_xvfb_is_recorded_as_soon_as_it_starts_so_an_agent_killed_meanwhile_leaves_none_unknown(
    agent_state: Path,
) -> None:
    agent = subprocess.Popen(
        [sys.executable, "-c", STARTING_AGENT, str(agent_state), json.dumps(spec("early"))],
        stdin=subprocess.PIPE,
        cwd=ROOT,
    )
    path = agent_state / "sessions" / "early.json"

    def recorded() -> dict[str, Any] | None:
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(path.read_text())
            return dict(record) if record.get("display") else None
        return None

    try:
        first = wait_until(recorded, 20, interval=0.002, message="the agent's Xvfb in its record")
        agent.kill()  # as soon as its Xvfb is recorded: before it is ready, when it is recorded at once
    finally:
        agent.kill()
        agent.wait()
    assert first["starting"], first  # its pid was written before it listened
    xvfb = first["display"]["pid"]
    assert psutil.Process(xvfb).name() == "Xvfb"
    record = json.loads(path.read_text())
    assert record["display"]["pid"] == xvfb
    worker = Worker(agent_state)
    try:
        worker.start()
        if record["starting"]:  # which display it took was not known: ended, and a new one started
            assert not psutil.pid_exists(xvfb) or psutil.Process(xvfb).status() == psutil.STATUS_ZOMBIE
        status = healthy(worker, spec("early"))
        assert status["pid"] and displays.probe(status["display"]).answers
    finally:
        stop_everything(worker)


class _LatePoll(subprocess.Popen[bytes]):
    """A child whose first poll comes before its death (the kernel's timing, made certain here)."""

    late = False

    def poll(self) -> int | None:
        if self.late:
            self.late = False
            return None
        return super().poll()


def test_a_child_seen_dead_between_poll_and_status_keeps_its_exit_status() -> None:
    child = _LatePoll([sys.executable, "-c", "import time; time.sleep(60)"])
    create_time = psutil.Process(child.pid).create_time()
    child.kill()
    wait_until(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE, 5)
    child.late = True
    assert displays.alive(child.pid, create_time, child) is False
    # Read, not lost: the RDP keeper says a client killed by signal 9 was, not that it is merely gone.
    assert child.returncode == -signal.SIGKILL
    assert "killed by signal 9" in displays.exit_reason(child.pid, child)
