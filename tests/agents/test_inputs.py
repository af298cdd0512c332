"""Remote control of a session: clicks, text, keys and scrolls through XTEST reach the Tk demo robot (it writes
down what it gets); input outside the screen, unknown keys and over-long text are refused before anything runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from robofleet.agents.worker import Worker
from tests.agents.conftest import call, healthy, refused, spec, start_tk
from tests.conftest import wait_until


def events_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def clicks_of(path: Path, at_least: int) -> list[dict[str, Any]] | None:
    clicks = [event for event in events_of(path) if "button" in event]
    return clicks if len(clicks) >= at_least else None


def test_clicks_reach_the_robots_window_where_they_were_made(display_worker: Worker, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    start_tk(display_worker, "1", spec("desk"), events)
    assert call(display_worker, "session.input", {"name": "desk", "kind": "click", "x": 400, "y": 300}) == {
        "done": True
    }
    call(display_worker, "session.input", {"name": "desk", "kind": "click", "x": 410, "y": 320, "button": "right"})
    call(display_worker, "session.input", {"name": "desk", "kind": "click", "x": 200, "y": 250, "double": True})
    clicks = wait_until(
        lambda: clicks_of(events, 4),
        10,
        message=lambda: events_of(events),
    )
    assert clicks == [
        {"x": 400, "y": 300, "button": "left"},
        {"x": 410, "y": 320, "button": "right"},
        {"x": 200, "y": 250, "button": "left"},
        {"x": 200, "y": 250, "button": "left"},
    ]


def test_text_and_keys_reach_the_robots_entry(display_worker: Worker, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    start_tk(display_worker, "2", spec("desk"), events)
    call(display_worker, "session.input", {"name": "desk", "kind": "click", "x": 300, "y": 60})  # into its entry
    call(display_worker, "session.input", {"name": "desk", "kind": "type", "text": "Hello, robot 42!"})
    typed = "Hello, robot 42!"
    wait_until(lambda: any(e.get("text") == typed for e in events_of(events)), 10, message=lambda: events_of(events))
    call(display_worker, "session.input", {"name": "desk", "kind": "key", "keys": "BackSpace shift+BackSpace"})
    call(display_worker, "session.input", {"name": "desk", "kind": "key", "keys": "Enter"})
    wait_until(
        lambda: (
            [e for e in events_of(events) if "key" in e][-1]
            == {"key": "Return", "char": "\r", "text": "Hello, robot 4"}
        ),
        10,
        message=lambda: events_of(events)[-3:],
    )


def test_scrolls_are_wheel_buttons_where_the_pointer_is(display_worker: Worker, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    start_tk(display_worker, "3", spec("desk"), events)
    call(display_worker, "session.input", {"name": "desk", "kind": "scroll", "x": 300, "y": 300, "amount": 2})
    call(display_worker, "session.input", {"name": "desk", "kind": "scroll", "x": 300, "y": 300, "amount": -1})
    wheel = wait_until(
        lambda: clicks_of(events, 3),
        10,
        message=lambda: events_of(events),
    )
    assert [click["button"] for click in wheel] == [5, 5, 4]
    call(display_worker, "session.input", {"name": "desk", "kind": "move", "x": 10, "y": 10})


def test_bad_input_is_refused_before_anything_is_sent(display_worker: Worker) -> None:
    healthy(display_worker, spec("desk"))
    for wrong, said in [
        ({"kind": "click", "x": 800, "y": 10}, "outside the screen of 800x600"),
        ({"kind": "click", "x": -1, "y": 10}, "outside the screen"),
        ({"kind": "click", "x": 1, "y": 1, "button": "thumb"}, "button"),
        ({"kind": "key", "keys": "ctrl+nosuchkey"}, "unknown key name 'nosuchkey'"),
        ({"kind": "key", "keys": "ctrl+$(reboot)"}, "key combination"),
        ({"kind": "type", "text": "x" * 10_001}, "at most 10000 characters"),
        ({"kind": "type", "text": ""}, "text"),
        ({"kind": "scroll", "x": 1, "y": 1, "amount": 0}, "amount"),
        ({"kind": "drag", "x": 1, "y": 1}, "click, type, key, scroll or move"),
    ]:
        error = refused(display_worker, "session.input", {"name": "desk", **wrong})
        assert error["code"] == "bad_args" and said in error["message"], (wrong, error)
    unknown = refused(display_worker, "session.input", {"name": "elsewhere", "kind": "click", "x": 1, "y": 1})
    assert unknown["code"] == "not_found"
