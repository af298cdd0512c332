"""A traceback still being written when the agent reads a run's output is left for the next read (a few reads at
most), so the log store gets it whole and makes one record of it."""

from __future__ import annotations

from pathlib import Path

from robofleet.agents.processes import ManagedRun
from robofleet.agents.spool import HOLD_READS, SpoolReader

HEADER = "Traceback (most recent call last):\n"
FRAME = '  File "/robots/invoices.py", line 33, in main\n    fetch()\n'


def texts(reader: SpoolReader, run: ManagedRun, ended: bool = False) -> list[str]:
    return [line["line"] for line in reader.read([(run, ended)]).lines]


def test_an_unfinished_traceback_waits_for_its_exception_line(tmp_path: Path) -> None:
    run = ManagedRun("1", 0, 0.0, tmp_path, label="invoices")
    stderr = tmp_path / "stderr.log"
    reader = SpoolReader()
    stderr.write_text("INFO:invoices:step 3\n" + HEADER + FRAME)
    assert texts(reader, run) == ["INFO:invoices:step 3"]
    assert texts(reader, run) == []
    with stderr.open("a") as file:
        file.write("ConnectionError: portal down\nINFO:invoices:after\n")
    assert texts(reader, run) == [
        HEADER.strip(),
        *FRAME.rstrip("\n").split("\n"),
        "ConnectionError: portal down",
        "INFO:invoices:after",
    ]


def test_a_traceback_is_held_a_few_reads_at_most_and_not_at_the_end(tmp_path: Path) -> None:
    run = ManagedRun("2", 0, 0.0, tmp_path, label="invoices")
    (tmp_path / "stderr.log").write_text(HEADER + FRAME)
    reader = SpoolReader()
    assert all(texts(reader, run) == [] for _ in range(HOLD_READS))
    assert texts(reader, run)[0] == HEADER.strip()  # it may never end: it is not held for ever

    ended = ManagedRun("3", 0, 0.0, tmp_path / "3", label="invoices")
    ended.run_dir.mkdir()
    (ended.run_dir / "stderr.log").write_text(HEADER + FRAME)
    assert len(texts(SpoolReader(), ended, ended=True)) == 3  # the run is over: nothing more will come
