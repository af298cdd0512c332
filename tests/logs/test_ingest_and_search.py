"""Ingest and search on both stores: refusals one by one, truncation, filters, full text, cursors, export."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from robofleet.store.pagination import encode_cursor
from tests.conftest import MakeUser, bearer


def post(client: TestClient, token: str, records: list[Any]) -> Any:
    return client.post("/api/v1/logs", headers=bearer(token), json={"records": records})


def search(client: TestClient, token: str, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/logs", headers=bearer(token), params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_bad_records_are_refused_one_by_one(client: TestClient, admin_token: str) -> None:
    answer = post(
        client,
        admin_token,
        [
            {"message": "fine", "source": "robot:a"},
            {"source": "robot:a"},
            {"message": "x", "source": "robot:a", "level": "LOUD"},
            {"message": "x", "source": "robot:a", "time": "yesterday"},
            {"message": "x", "source": "robot:a", "colour": "red"},
            {"message": "x"},
            "not an object",
            {"message": "also fine", "source": "robot:a", "level": 40, "time": 1767225600, "run_id": 7},
        ],
    )
    assert answer.status_code == 207
    body = answer.json()
    assert body["accepted"] == 2 and body["last_id"] > body["first_id"]
    reasons = {item["index"]: item["error"] for item in body["rejected"]}
    assert sorted(reasons) == [1, 2, 3, 4, 5, 6]
    assert "message" in reasons[1] and "level" in reasons[2] and "time" in reasons[3]
    assert "colour" in reasons[4] and "source" in reasons[5] and "object" in reasons[6]
    stored = search(client, admin_token, order="asc")["items"]
    assert [r["message"] for r in stored] == ["fine", "also fine"]
    assert stored[1]["level"] == "ERROR" and stored[1]["run_id"] == "7"
    assert stored[1]["time"].startswith("2026-01-01T00:00:00")


def test_whole_batch_refusals(client: TestClient, admin_token: str, make_user: MakeUser) -> None:
    all_bad = post(client, admin_token, [{"source": "robot:a"}])
    assert all_bad.status_code == 422 and "record 0" in all_bad.json()["error"]["message"]
    assert client.post("/api/v1/logs", headers=bearer(admin_token), json={"rows": []}).status_code == 422
    malformed = client.post(
        "/api/v1/logs", headers={**bearer(admin_token), "content-type": "application/json"}, content=b'{"records": ['
    )
    assert malformed.status_code == 400
    too_many = post(client, admin_token, [{"message": "x", "source": "robot:a"}] * 5001)
    assert too_many.status_code == 422 and "max_batch" in too_many.json()["error"]["message"]
    viewer = make_user("v", ["viewer"])
    assert post(client, viewer, [{"message": "x", "source": "robot:a"}]).status_code == 403
    robot = make_user("r", ["robot"])
    assert post(client, robot, [{"message": "x", "source": "robot:a"}]).status_code == 201
    assert client.get("/api/v1/logs", headers=bearer(robot)).status_code == 403
    assert search(client, admin_token)["items"][0]["message"] == "x"


def test_sources_follow_the_model_and_only_logs_admin_sends_as_the_orchestrator(
    client: TestClient, admin_token: str, make_user: MakeUser
) -> None:
    robot = make_user("r2", ["robot"])
    answer = post(
        client,
        robot,
        [
            {"message": "ok", "source": "robot:a"},
            {"message": "ok", "source": "agent:pc-01"},
            {"message": "forged", "source": "orchestrator", "level": "CRITICAL"},
            {"message": "x", "source": "nonsense"},
            {"message": "x", "source": "robot:"},
            {"message": "x", "source": "robot:a b"},
            {"message": "x", "source": "robot:nl\nFAKE"},
            {"message": "x", "source": "robot:*"},
        ],
    )
    assert answer.status_code == 207, answer.text
    reasons = {item["index"]: item["error"] for item in answer.json()["rejected"]}
    # agent:<name> is an agent's own token's source only (finding 15); orchestrator needs logs:admin.
    assert sorted(reasons) == [1, 2, 3, 4, 5, 6, 7] and "logs:admin" in reasons[2] and "robot:<name>" in reasons[3]
    assert post(client, admin_token, [{"message": "mine", "source": "orchestrator"}]).status_code == 201
    assert [r["message"] for r in search(client, admin_token, source="orchestrator")["items"]] == ["mine"]


def test_lone_surrogates_become_replacement_characters(client: TestClient, admin_token: str) -> None:
    """What a robot sends for a file name in no valid encoding: JSON escapes of lone surrogates."""
    body = b'{"records": [{"message": "file report-\\udcff.csv", "source": "robot:a", "fields": {"\\ud800": 1}}]}'
    headers = {**bearer(admin_token), "content-type": "application/json"}
    answer = client.post("/api/v1/logs", headers=headers, content=body)
    assert answer.status_code == 201, answer.text
    record = search(client, admin_token)["items"][0]
    assert record["message"] == "file report-\ufffd.csv" and record["fields"] == {"\ufffd": 1}
    bad = client.post("/api/v1/logs", headers=headers, content=b'{"records": [{"message": NaN}]}')
    assert bad.status_code == 400
    gzipped = client.post("/api/v1/logs", headers=headers, content=b"\x1f\x8b\x08\x00" + b"\xff" * 20)
    assert gzipped.status_code == 400 and "not UTF-8" in gzipped.json()["error"]["message"]


def test_fields_nested_too_deeply_are_refused_for_their_record_alone(client: TestClient, admin_token: str) -> None:
    deep = '{"a":' * 300 + "1" + "}" * 300
    records = (
        f'{{"message": "fine", "source": "robot:a"}}, {{"message": "deep", "source": "robot:a", "fields": {deep}}}'
    )
    body = f'{{"records": [{records}]}}'
    headers = {**bearer(admin_token), "content-type": "application/json"}
    answer = client.post("/api/v1/logs", headers=headers, content=body.encode())
    assert answer.status_code == 207, answer.text
    assert [item["index"] for item in answer.json()["rejected"]] == [1] and "nested" in answer.text
    deeper = '{"records": [{"message": "x", "source": "robot:a", "fields": ' + '{"a":' * 5000 + "1" + "}" * 5000 + "}]}"
    assert client.post("/api/v1/logs", headers=headers, content=deeper.encode()).status_code == 400
    # The store goes on taking records.
    assert post(client, admin_token, [{"message": "after", "source": "robot:a"}]).status_code == 201
    assert [r["message"] for r in search(client, admin_token, order="asc")["items"]] == ["fine", "after"]


def test_oversized_messages_are_truncated_and_marked(client: TestClient, admin_token: str) -> None:
    post(client, admin_token, [{"message": "é" * 20_000, "source": "robot:a"}])
    record = search(client, admin_token)["items"][0]
    assert record["truncated"] is True
    assert len(record["message"].encode()) <= 16_384 and record["message"].endswith("[truncated]")


def seed(client: TestClient, token: str) -> None:
    records = []
    for n in range(30):
        records.append(
            {
                "message": f"invoice {n} posted to the ledger",
                "source": "robot:billing",
                "run_id": "run-1" if n < 10 else "run-2",
                "level": "INFO",
                "time": f"2026-03-01T10:{n:02d}:00Z",
            }
        )
    records += [
        {
            "message": "login page did not load",
            "source": "robot:crm",
            "run_id": "run-3",
            "level": "ERROR",
            "time": "2026-03-01T11:00:00Z",
        },
        {"message": "agent connected", "source": "agent:pc-01", "level": "DEBUG", "time": "2026-03-01T11:01:00Z"},
        {
            "message": "Ledger closed; invoice batch done",
            "source": "robot:billing",
            "level": "WARNING",
            "time": "2026-03-01T11:02:00Z",
        },
    ]
    assert post(client, token, records).status_code == 201


def test_filters_and_full_text(client: TestClient, admin_token: str) -> None:
    seed(client, admin_token)
    assert len(search(client, admin_token, q="ledger invoice", limit=100)["items"]) == 31
    assert [r["message"] for r in search(client, admin_token, q="page load")["items"]] == ["login page did not load"]
    assert search(client, admin_token, q="nothing-like-this")["items"] == []
    assert len(search(client, admin_token, q='"quoted" OR -minus NEAR(')["items"]) == 0  # operators are words
    assert {r["level"] for r in search(client, admin_token, level="WARNING")["items"]} == {"WARNING", "ERROR"}
    assert {r["source"] for r in search(client, admin_token, source="robot:*", limit=100)["items"]} == {
        "robot:billing",
        "robot:crm",
    }
    assert [r["source"] for r in search(client, admin_token, source="agent:pc-??")["items"]] == ["agent:pc-01"]
    assert len(search(client, admin_token, run_id="run-1")["items"]) == 10
    window = search(client, admin_token, since="2026-03-01T10:05:00Z", until="2026-03-01T10:08:00Z")["items"]
    assert [r["message"].split()[1] for r in window] == ["7", "6", "5"]
    both = search(client, admin_token, q="invoice", run_id="run-2", level="INFO", limit=100)["items"]
    assert len(both) == 20
    bad = client.get("/api/v1/logs", headers=bearer(admin_token), params={"level": "LOUD"})
    assert bad.status_code == 422
    naive = client.get("/api/v1/logs", headers=bearer(admin_token), params={"since": "2026-03-01T10:00:00"})
    assert naive.status_code == 422


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_cursors_walk_both_ways(client: TestClient, admin_token: str, order: str) -> None:
    seed(client, admin_token)
    everything = [r["id"] for r in search(client, admin_token, limit=1000, order="asc")["items"]]
    page = search(client, admin_token, limit=7, order=order)
    assert page["prev_cursor"] is None
    pages = [page]
    while page["next_cursor"]:
        page = search(client, admin_token, limit=7, cursor=page["next_cursor"])
        pages.append(page)
    seen = [r["id"] for page in pages for r in page["items"]]
    assert seen == sorted(everything, reverse=order == "desc")
    # Back from the last page to the first: the same pages, in the same order, then no page before the first.
    back = pages[-1]
    for expected in reversed(pages[:-1]):
        back = search(client, admin_token, limit=7, cursor=back["prev_cursor"])
        assert [r["id"] for r in back["items"]] == [r["id"] for r in expected["items"]]
    assert back["prev_cursor"] is None
    # And forward again from a page reached backwards.
    again = search(client, admin_token, limit=7, cursor=back["next_cursor"])
    assert [r["id"] for r in again["items"]] == [r["id"] for r in pages[1]["items"]]
    for bad in ("zzz", encode_cursor("d:99999999999999999999"), encode_cursor("x:5"), encode_cursor("a:²")):
        answer = client.get("/api/v1/logs", headers=bearer(admin_token), params={"cursor": bad})
        assert answer.status_code == 422, (bad, answer.text)


def test_export_streams_ndjson(client: TestClient, admin_token: str) -> None:
    seed(client, admin_token)
    response = client.get("/api/v1/logs/export", headers=bearer(admin_token), params={"source": "robot:billing"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert len(lines) == 31 and [r["id"] for r in lines] == sorted(r["id"] for r in lines)
    assert all(r["source"] == "robot:billing" for r in lines)
    params = {"source": "robot:billing", "limit": 2, "order": "desc"}
    newest = client.get("/api/v1/logs/export", headers=bearer(admin_token), params=params)
    assert [json.loads(line)["id"] for line in newest.text.splitlines()] == [lines[-1]["id"], lines[-2]["id"]]
    for bad in ({"order": "sideways"}, {"limit": 0}):
        assert client.get("/api/v1/logs/export", headers=bearer(admin_token), params=bad).status_code == 422


def test_times_and_levels_out_of_range_are_refused_not_errors(client: TestClient, admin_token: str) -> None:
    answer = post(
        client,
        admin_token,
        [
            {"message": "fine", "source": "robot:a"},
            {"message": "x", "source": "robot:a", "time": "0001-01-01T00:00:00+14:00"},
            {"message": "x", "source": "robot:a", "time": "9999-12-31T23:59:59-14:00"},
        ],
    )
    assert answer.status_code == 207 and [item["index"] for item in answer.json()["rejected"]] == [1, 2]
    for path in ("/api/v1/logs", "/api/v1/logs/export", "/api/v1/logs/stream"):
        for params in ({"since": "0001-01-01T00:00:00+14:00"}, {"until": "9999-12-31T23:59:59-14:00"}, {"level": "²"}):
            got = client.get(path, headers=bearer(admin_token), params=params)
            assert got.status_code == 422, (path, params, got.text)


def test_stream_refuses_ids_no_store_can_hold(client: TestClient, admin_token: str) -> None:
    for headers, params in (
        ({"Last-Event-ID": "99999999999999999999999"}, {}),
        ({"Last-Event-ID": "1e5"}, {}),
        ({}, {"after": str(2**63)}),
    ):
        answer = client.get("/api/v1/logs/stream", headers={**bearer(admin_token), **headers}, params=params)
        assert answer.status_code == 422, answer.text


def test_a_reader_scoped_to_some_robots_reads_their_logs_only(
    client: TestClient, admin_token: str, make_user: MakeUser
) -> None:
    role = {"name": "billing-logs", "permissions": ["logs:read"], "robot_globs": ["billing-*"], "robot_tags": ["fin"]}
    assert client.post("/api/v1/roles", headers=bearer(admin_token), json=role).status_code == 201
    # Robots in and out of the reader's scope exist: the narrowing must not widen to every robot defined.
    for robot in ({"name": "crm", "argv": ["true"], "tags": ["fin"]}, {"name": "hr", "argv": ["true"]}):
        assert client.post("/api/v1/robots", headers=bearer(admin_token), json=robot).status_code == 201
    sources = ["robot:billing-a", "robot:hr", "robot:crm", "orchestrator", "agent:pc-01", "robot:billing-b"]
    post(client, admin_token, [{"message": f"from {source}", "source": source} for source in sources])
    reader = make_user("bl", ["billing-logs"])
    seen = {r["source"] for r in search(client, reader, limit=100)["items"]}
    assert seen == {"robot:billing-a", "robot:billing-b", "robot:crm"}
    assert search(client, reader, source="robot:hr")["items"] == []
    assert search(client, reader, q="from")["items"] and all(
        r["source"] != "orchestrator" for r in search(client, reader, q="orchestrator")["items"]
    )
    exported = client.get("/api/v1/logs/export", headers=bearer(reader)).text.splitlines()
    assert sorted(json.loads(line)["source"] for line in exported) == sorted(seen)
    assert len(search(client, admin_token, limit=100)["items"]) == len(sources)  # unscoped readers see everything
