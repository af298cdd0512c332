"""Item files as `robofleet queue add --file` reads them, the panel's way (web/static/queues.js): CSV with a header
row (its separator, quoting, the item's columns in any case, the other columns gathered into the payload), every
malformed row named by the line it starts on; JSON arrays and NDJSON. No server: the reading is pure."""

from __future__ import annotations

import pytest

from robofleet.queues.item_files import MalformedFile, Problem, read_items


def problems_of(name: str, text: str) -> list[tuple[int | None, str]]:
    with pytest.raises(MalformedFile) as refused:
        read_items(name, text)
    return [(problem.line, problem.message) for problem in refused.value.problems]


def test_a_csv_file_becomes_items_with_the_other_columns_in_their_payload() -> None:
    text = (
        "reference,Priority,deadline,postpone_until,payload,customer,amount\r\n"
        'INV-1,5,2030-01-01 10:00+01:00,,"{""amount"": 1, ""vat"": true}",ACME,12.50\r\n'
        "INV-2,,,2030-01-02T08:00:00Z,,Umbrella,\r\n"
        "\r\n"
        ",0,,,,,\r\n"
    )
    assert read_items("items.csv", text) == [
        {
            "reference": "INV-1",
            "priority": 5,
            "deadline": "2030-01-01T10:00+01:00",
            "payload": {"amount": "12.50", "vat": True, "customer": "ACME"},  # the column over the payload's key
        },
        {
            "reference": "INV-2",
            "postpone_until": "2030-01-02T08:00:00Z",
            "payload": {"customer": "Umbrella", "amount": ""},
        },
        {"priority": 0, "payload": {"customer": "", "amount": ""}},
    ]
    tabbed = read_items("-", "reference\tnote\nT-1\ta, b; c\n")
    assert tabbed == [{"reference": "T-1", "payload": {"note": "a, b; c"}}]


def test_csv_rows_are_refused_by_the_line_they_start_on_as_the_panel_refuses_them() -> None:
    # The panel's own case (tests/queues/test_panel.py, read by queues.js): the same rows, the same lines.
    text = (
        "\ufeffReference;Payload;note\n"
        'S-1;{"k": 1};"two\nlines; and a ""quote"""\n'
        "\n"
        'S-2;;"closed" then more\n'
        "S-3;[1];x\n"
        'S-4;;"never closed\n'
        "S-5;;y\n"
    )
    assert problems_of("x.csv", text) == [
        (5, 'text after a closing quote (a quote inside a value must be doubled: "")'),
        (6, "payload must be a JSON object"),
        (7, "a quoted value is never closed: this line and every one after it were left out"),
    ]
    assert problems_of(
        "x.csv", 'reference,priority,deadline,payload\nA,high,,\nB,1001,,\nC,1,2030-01-01,\nD,1,,{"a":\nE\n'
    ) == [
        (2, 'priority must be a whole number from 0 to 1000, got "high"'),
        (3, 'priority must be a whole number from 0 to 1000, got "1001"'),
        (4, 'deadline must be an ISO time with its offset, e.g. 2026-12-31T17:00:00+01:00, got "2030-01-01"'),
        (5, "payload is not JSON: Expecting value at column 6"),
        (6, "1 value(s), the header has 4 column(s)"),
    ]
    assert problems_of("x.csv", "reference,,note\n") == [(1, "column 2 of the header has no name: nothing was read")]
    assert problems_of("x.csv", "Reference,reference\n") == [
        (1, 'the header names "reference" twice: nothing was read')
    ]
    assert problems_of("x.csv", "") == [(1, "the file has no header line")]
    assert problems_of("x.csv", "reference\n" + "r" * 257 + "\n") == [
        (2, "reference must be text of 1 to 256 characters")
    ]


def test_json_arrays_and_ndjson_are_read_as_before() -> None:
    assert read_items("items.txt", '[{"reference": "A"}, {}]') == [{"reference": "A"}, {}]
    assert read_items("-", '{"reference": "A"}\n\n{"payload": {"n": 1}}\n') == [
        {"reference": "A"},
        {"payload": {"n": 1}},
    ]
    assert read_items("items.ndjson", "") == []
    assert problems_of("items.ndjson", '{"reference": "B-1"}\n\n{"reference": "B-2"\n[1]\n') == [
        (3, "not JSON (Expecting ',' delimiter at column 20)"),
        (4, "an item must be a JSON object"),
    ]
    assert problems_of("a.json", "[1]") == [(None, "every item must be a JSON object")]
    with pytest.raises(MalformedFile) as broken:
        read_items("a.json", "[{")
    assert broken.value.problems[0].line is None and broken.value.problems[0].message.startswith("not a JSON array")
    assert Problem(None, "x") == Problem(None, "x")
