"""`robofleet queue …` against a running serve: list, show, add (one item, or a file of NDJSON or CSV, refused whole
when a line is malformed), items, retry (saying which named items it left) and export, as an operator types them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.conftest import StartServe
from tests.queues.conftest import QueuesApi

pytestmark = pytest.mark.slow


def test_the_queue_commands(start_serve: StartServe, tmp_path: Path) -> None:
    serve = start_serve()
    token = serve.token()
    queues = QueuesApi(serve.api(token))
    queues.create("invoices", max_retries=0, unique_references=True)

    def cli(*args: str, stdin: str | None = None) -> str:
        done = serve.cli("queue", *args, "--token", token, stdin=stdin)
        assert done.returncode == 0, done.stderr
        return done.stdout

    one = json.loads(cli("add", "invoices", "--payload", '{"amount": 12}', "--reference", "INV-1", "--priority", "5"))
    assert len(one["ids"]) == 1 and one["refused"] == []
    many = tmp_path / "items.ndjson"
    many.write_text("\n".join(json.dumps({"reference": f"INV-{n}", "payload": {"n": n}}) for n in range(1, 2501)))
    added = serve.cli("queue", "add", "invoices", "--file", str(many), "--token", token)
    assert added.returncode == 0 and "added 2499 item(s)" in added.stdout
    assert "refused item 0: " in added.stderr and "INV-1" in added.stderr

    listed = cli("list")
    assert "invoices" in listed and "2500" in listed
    shown = json.loads(cli("show", "invoices"))
    assert shown["unique_references"] is True and shown["stats"]["counts"]["new"] == 2500

    item = queues.next("invoices")
    assert item is not None and item["reference"] == "INV-1"  # the priority 5 one
    queues.report("invoices", item, "fail", kind="business", message="refused by the customer")
    assert "refused by the customer" in cli("items", "invoices", "--state", "failed")
    assert cli("retry", "invoices").strip() == "1 item(s) to retry"
    assert "INV-1" in cli("items", "invoices", "--state", "retry")
    named = serve.cli("queue", "retry", "invoices", "--id", str(item["id"]), "--id", "999999", "--token", token)
    assert named.returncode == 0 and named.stdout.strip() == "0 item(s) to retry"
    assert f"item {item['id']} not retried: it is retry" in named.stderr
    assert "item 999999 not retried: not found" in named.stderr

    exported = tmp_path / "out.csv"
    cli("export", "invoices", "--format", "csv", "--output", str(exported), "--reference-prefix", "INV-25")
    rows = list(csv.DictReader(io.StringIO(exported.read_text())))
    assert {row["reference"] for row in rows} == {"INV-25", "INV-2500", *(f"INV-25{n}" for n in range(10))}
    ndjson = cli("export", "invoices", "--state", "retry")
    assert [json.loads(line)["reference"] for line in ndjson.splitlines()] == ["INV-1"]

    missing = serve.cli("queue", "show", "nope", "--token", token)
    assert missing.returncode == 1 and "404" in missing.stderr
    bad = serve.cli("queue", "add", "invoices", "--payload", "{oops", "--token", token)
    assert bad.returncode == 2 and "not valid JSON" in bad.stderr
    broken = tmp_path / "broken.ndjson"
    broken.write_text('{"reference": "B-1"}\n\n{"reference": "B-2"\n')
    refused = serve.cli("queue", "add", "invoices", "--file", str(broken), "--token", token)
    assert refused.returncode == 2 and f"{broken}:3: not JSON" in refused.stderr
    assert "nothing was added" in refused.stderr
    assert "B-1" not in cli("items", "invoices", "--reference-prefix", "B-")

    # CSV as the panel's upload reads it: a header row, the item's columns, the others gathered into the payload.
    sheet = tmp_path / "items.csv"
    sheet.write_text('reference;Priority;customer;payload\nC-1;7;ACME;"{""vat"": true}"\nC-2;;Umbrella;\n')
    assert "added 2 item(s)" in cli("add", "invoices", "--file", str(sheet))
    [first] = queues.items("invoices", reference_prefix="C-1")
    assert first["priority"] == 7 and first["payload"] == {"vat": True, "customer": "ACME"}
    bad_sheet = tmp_path / "bad.csv"
    bad_sheet.write_text("reference,priority\nD-1,1\nD-2,high\nD-3,2,extra\n")
    malformed = serve.cli("queue", "add", "invoices", "--file", str(bad_sheet), "--token", token)
    assert malformed.returncode == 2, malformed.stderr
    assert f'{bad_sheet}:3: priority must be a whole number from 0 to 1000, got "high"' in malformed.stderr
    assert f"{bad_sheet}:4: 3 value(s), the header has 2 column(s)" in malformed.stderr
    assert "2 malformed line(s); nothing was added" in malformed.stderr
    assert queues.items("invoices", reference_prefix="D-") == []  # not even the good row
