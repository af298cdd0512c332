"""What `robofleet logs` prints of a record: what a robot printed cannot steer the terminal or pass for a record."""

from __future__ import annotations

from robofleet.logs.cli import line


def test_control_characters_are_shown_escaped_and_further_lines_indented() -> None:
    record = {
        "time": "2026-01-31T08:00:00.123456Z",
        "level": "ERROR",
        "source": "robot:billing",
        "run_id": "42",
        "message": "step\rOK \x1b[2J cleared\nTraceback (most recent call last):\n\tboom",
    }
    assert line(record, as_json=False) == (
        "2026-01-31 08:00:00.123 ERROR    robot:billing [42] step\\x0dOK \\x1b[2J cleared\n"
        "    Traceback (most recent call last):\n    \tboom"
    )
    assert '"message":"step\\rOK' in line(record, as_json=True)  # JSON output is exact
