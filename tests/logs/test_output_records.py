"""Robot output lines as records, by the rules alone: the level each usual line shape carries, which lines make one
record (tracebacks, indented lines, a declared format's continuation lines), and what a robot may declare."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from robofleet.logs.ingest import Row
from robofleet.logs.line_formats import AUTO_FORMAT, PLAIN_FORMAT, BadFormat, checked_format, line_format
from robofleet.logs.robot_output import records
from robofleet.robots.panel_forms import FormInvalid, blank_form, parse_create

UNCAUGHT = [
    "Traceback (most recent call last):",
    '  File "/robots/invoices.py", line 40, in <module>',
    "    main()",
    '  File "/robots/invoices.py", line 33, in main',
    '    raise ConnectionError("portal down")',
    "    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    "ConnectionError: portal down",
]


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("INFO:invoices:step 1 of 4", 20),
        ("WARNING:root:portal slow", 30),
        ("ERROR:invoices:invoice 8 failed", 40),
        ("CRITICAL:root:disk full", 50),
        ("DEBUG    session cookie set", 10),
        ("2026-12-06 08:00:00,123 INFO invoices: step 1 of 4", 20),
        ("2026-12-06 08:00:00,123 - invoices - ERROR - invoice 8 failed", 40),
        ("2026-12-06T08:00:00.123456Z WARNING portal slow", 30),
        ("2026-12-06 08:00:00,123:ERROR:invoices:failed", 40),
        ("[ERROR] invoice 8 failed", 40),
        ("[2026-12-06 08:00:00] [WARNING] portal slow", 30),
        ("2026-12-06 08:00:00.123 | ERROR    | invoices:main:33 - invoice 8 failed", 40),
        ("2026-12-06 08:00:00.123 | SUCCESS  | invoices:main:40 - all done", 20),
        ("2026-12-06 08:00:00.123 | DEBUG    | invoices:main:12 - cookie", 10),
        ("/robots/invoices.py:12: DeprecationWarning: use read_csv", 30),
        ("robofleet: cannot start 'pyhton3': No such file or directory", 40),
        ("step 1 of 4", None),
        ("Processing ERROR codes from the portal", None),
        ("information: 3 invoices", None),
        ("", None),
    ],
)
def test_the_usual_shapes_carry_their_level(line: str, level: int | None) -> None:
    assert AUTO_FORMAT.level_of(line) == level


def rows(lines: list[str], stream: str = "stderr", run_id: str = "7") -> list[Row]:
    now = datetime.now(UTC)
    return [
        Row(now, 20, "robot:invoices", run_id, line, {"stream": stream, "agent": "local", "offset": n * 100}, False)
        for n, line in enumerate(lines)
    ]


def shaped(lines: list[str], spec: str | None = None) -> list[tuple[str, str]]:
    found = records(rows(lines), {"7": line_format(spec)})
    names = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}
    return [(names[record.level], record.message) for record in found]


def test_lines_without_a_level_are_info_on_either_stream() -> None:
    found = records(rows(["hello"], "stdout") + rows(["portal slow", "WARNING:root:retrying"], "stderr"), {})
    assert [(r.level, r.message, r.fields["stream"]) for r in found] == [
        (20, "hello", "stdout"),
        (20, "portal slow", "stderr"),
        (30, "WARNING:root:retrying", "stderr"),
    ]


def test_an_uncaught_traceback_is_one_record_at_error_after_an_info_line() -> None:
    found = shaped(["INFO:invoices:step 3 of 4", *UNCAUGHT, "INFO:root:next"])
    assert found == [("INFO", "INFO:invoices:step 3 of 4"), ("ERROR", "\n".join(UNCAUGHT)), ("INFO", "INFO:root:next")]


def test_a_logged_exception_keeps_its_traceback_and_its_level() -> None:
    logged = ["2026-12-06 08:00:00,123 ERROR invoices: invoice 8 failed", *UNCAUGHT]
    assert shaped([*logged, "2026-12-06 08:00:01,000 INFO invoices: invoice 9"]) == [
        ("ERROR", "\n".join(logged)),
        ("INFO", "2026-12-06 08:00:01,000 INFO invoices: invoice 9"),
    ]


def test_a_chained_traceback_is_one_record() -> None:
    chained = [
        *UNCAUGHT,
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        *UNCAUGHT[:3],
        "RuntimeError: giving up",
    ]
    assert shaped([*chained, "", "done"]) == [("ERROR", "\n".join(chained)), ("INFO", ""), ("INFO", "done")]


def test_indented_lines_continue_the_line_above_and_the_record_keeps_the_first_offset() -> None:
    found = records(rows(["INFO:invoices:invoice 7 read:", "  total 120.00", "  due 2026-12-31", "next"]), {})
    assert [r.message for r in found] == ["INFO:invoices:invoice 7 read:\n  total 120.00\n  due 2026-12-31", "next"]
    assert found[0].fields["offset"] == 0 and found[0].fields["lines"] == 3 and found[1].fields["offset"] == 300
    assert "lines" not in found[1].fields


def test_records_of_other_runs_and_streams_are_not_joined() -> None:
    lines = rows(["Traceback (most recent call last):"], "stderr", "7") + rows(["  indented"], "stderr", "8")
    found = records(lines, {})
    assert [(r.run_id, r.message, r.level) for r in found] == [
        ("7", "Traceback (most recent call last):", 40),
        ("8", "  indented", 20),
    ]


def test_a_declared_format_reads_levels_and_joins_the_lines_it_does_not_match() -> None:
    spec = r"\d\d:\d\d:\d\d (?P<level>\w+) "
    lines = ["08:00:00 notice invoice 7:", "total 120", "08:00:01 err invoice 8", "08:00:02 WARN slow", *UNCAUGHT]
    assert shaped(lines, spec) == [
        ("INFO", "08:00:00 notice invoice 7:\ntotal 120"),
        ("INFO", "08:00:01 err invoice 8"),
        ("WARNING", "08:00:02 WARN slow"),
        ("ERROR", "\n".join(UNCAUGHT)),
    ]
    assert shaped(["12:00:00 40 numbered"], spec) == [("ERROR", "12:00:00 40 numbered")]


def test_plain_reads_no_level_and_joins_nothing() -> None:
    assert records(rows(["ERROR:root:x", *UNCAUGHT[:2]]), {"7": PLAIN_FORMAT})[0].level == 20
    assert len(records(rows(["ERROR:root:x", *UNCAUGHT[:2]]), {"7": PLAIN_FORMAT})) == 3


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("(?P<level>[A-Z]+", "not a valid regular expression"),
        (r"^\S+ [A-Z]+", "named group (?P<level>"),
        ("x" * 301, "longer than 300"),
        (r"^(\w+\s?)+ (?P<level>\w+)", "can take very long"),
        (r"^(?:ab|a)* (?P<level>\w+)", "can take very long"),
        (r".*.*.*(?P<level>\w+)", "can take very long"),
    ],
)
def test_a_format_must_be_known_or_a_regex_with_a_level_group(spec: str, problem: str) -> None:
    with pytest.raises(BadFormat, match=problem.replace("(", r"\(").replace("?", r"\?")):
        checked_format(spec)
    assert checked_format("auto") == "auto" and checked_format("plain") == "plain"
    assert checked_format(r"^(?P<level>[A-Z]+):") == r"^(?P<level>[A-Z]+):"


def test_the_robot_form_takes_a_format_and_names_a_bad_one() -> None:
    typed = {**blank_form().values, "name": "invoices", "argv": "python3\ninvoices.py"}
    assert typed["log_format"] == "auto" and parse_create(typed).log_format == "auto"
    assert parse_create({**typed, "log_format": r"^(?P<level>\w+):"}).log_format == r"^(?P<level>\w+):"
    with pytest.raises(FormInvalid) as caught:
        parse_create({**typed, "log_format": "(("})
    assert "not a valid regular expression" in caught.value.errors["log_format"]
