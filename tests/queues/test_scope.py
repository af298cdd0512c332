"""A role narrowed by name globs or tags narrows queues as it narrows robots: a queue outside the caller's scope is
as unknown as one that does not exist (404 on every route, absent from lists and figures), a queue in sight but
without the permission is a 403 naming it, and nobody creates or re-tags a queue out of their own reach. Both
stores."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import MakeUser, bearer
from tests.queues.conftest import QueuesApi


def role(admin: QueuesApi, name: str, permissions: list[str], **scope: list[str]) -> None:
    made = admin.api.post(
        "/api/v1/roles", headers=admin.headers, json={"name": name, "permissions": permissions, **scope}
    )
    assert made.status_code == 201, made.text


def status_and_message(queues: QueuesApi, method: str, path: str, **kwargs: Any) -> tuple[int, str]:
    answer = queues.request(method, path, **kwargs)
    return answer.status_code, answer.json()["error"]["message"] if answer.content else ""


def test_a_queue_outside_the_scope_is_unknown(client: TestClient, admin_token: str, make_user: MakeUser) -> None:
    admin = QueuesApi(client, bearer(admin_token))
    admin.create("billing-invoices")
    admin.create("reminders", tags=["billing"])
    admin.create("hr-payroll", tags=["hr"])
    admin.add("hr-payroll", {"reference": "salary-1"})
    role(admin, "billing-worker", ["queues:*"], robot_globs=["billing-*"], robot_tags=["billing"])
    billing = QueuesApi(client, bearer(make_user("bea", ["billing-worker"])))

    assert [queue["name"] for queue in billing.request("GET", "").json()["items"]] == ["billing-invoices", "reminders"]
    for method, path, body in [
        ("GET", "/hr-payroll", None),
        ("PATCH", "/hr-payroll", {"description": "mine now"}),
        ("DELETE", "/hr-payroll", None),
        ("GET", "/hr-payroll/items", None),
        ("GET", "/hr-payroll/items/1", None),
        ("GET", "/hr-payroll/stats", None),
        ("GET", "/hr-payroll/items/export", None),
        ("POST", "/hr-payroll/items", {"items": [{"reference": "x"}]}),
        ("POST", "/hr-payroll/items/next", None),
        ("POST", "/hr-payroll/items/1/complete", {"lease_id": "0" * 32}),
        ("POST", "/hr-payroll/items/retry", {}),
        ("POST", "/hr-payroll/items/delete", {"ids": [1]}),
        ("POST", "/hr-payroll/items/1/fail", {"lease_id": "0" * 32, "kind": "business", "message": "x"}),
    ]:
        hidden = status_and_message(billing, method, path, json=body)
        assert hidden == (404, "no queue named 'hr-payroll'"), (method, path, hidden)
    assert admin.stats("hr-payroll")["counts"]["new"] == 1, "nothing was taken or changed"

    # Inside the scope (by glob and by tag) the role works as usual.
    billing.add("reminders", {"reference": "r-1"})
    leased = billing.next("reminders")
    assert leased is not None and billing.report("reminders", leased, "complete").status_code == 200
    assert billing.next("billing-invoices") is None

    # Nobody moves a queue, or makes one, out of their own reach.
    moved = status_and_message(billing, "PATCH", "/reminders", json={"tags": ["hr"]})
    assert moved == (403, "bea lacks the permission 'queues:write' on queue 'reminders'")
    assert status_and_message(billing, "POST", "", json={"name": "hr-bonus"})[0] == 403
    assert billing.create("billing-refunds")["name"] == "billing-refunds"


def test_a_queue_in_sight_without_the_permission_is_refused_by_name(
    client: TestClient, admin_token: str, make_user: MakeUser
) -> None:
    admin = QueuesApi(client, bearer(admin_token))
    admin.create("hr-payroll", tags=["hr"])
    admin.add("hr-payroll", {"reference": "salary-1"})
    role(admin, "hr-watcher", ["queues:read"], robot_tags=["hr"])
    watcher = QueuesApi(client, bearer(make_user("wes", ["hr-watcher"])))
    assert watcher.stats("hr-payroll")["counts"]["new"] == 1
    refused = status_and_message(watcher, "POST", "/hr-payroll/items/next")
    assert refused == (403, "wes lacks the permission 'queues:work'")
    assert status_and_message(watcher, "POST", "/hr-payroll/items", json={"items": [{}]})[0] == 403
