"""The queues pages' pure parts: the items filter read from a query and written back into links, typed times, the
New queue form, the ticked ids, the durations shown, the throughput sparkline and the SLA badge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from starlette.datastructures import FormData, QueryParams

from robofleet.queues.panel import draw_sparkline, safe_back, sla_status
from robofleet.queues.panel_forms import (
    SHOWN_BY_DEFAULT,
    ItemsQuery,
    QueueFormInvalid,
    blank_queue_form,
    duration,
    export_query,
    parse_queue_create,
    selected_ids,
)
from robofleet.queues.schemas import QueueStats
from robofleet.queues.states import ItemState
from robofleet.web.list_query import FilterInvalid, parse_moment

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_the_items_filter_reads_the_query_and_links_keep_it() -> None:
    query = ItemsQuery.of(
        QueryParams("state=failed&state=abandoned&reference_prefix=INV-&within=1h&limit=100&cursor=abc")
    )
    where = query.item_filter(NOW)
    assert where.state == [ItemState.FAILED, ItemState.ABANDONED]
    assert where.reference_prefix == "INV-" and where.since == NOW - timedelta(hours=1) and where.until is None
    assert query.query() == "state=failed&state=abandoned&reference_prefix=INV-&within=1h&limit=100"
    assert query.query(cursor=True).endswith("&cursor=abc")
    assert query.with_cursor("next").endswith("limit=100&cursor=next") and query.narrowed

    # Nothing asked: every state but deleted, the default page size, an empty query.
    plain = ItemsQuery.of(QueryParams(""))
    assert plain.item_filter(NOW).state == list(SHOWN_BY_DEFAULT) and ItemState.DELETED not in SHOWN_BY_DEFAULT
    assert plain.query() == "" and not plain.narrowed and plain.limit == 50
    assert ItemsQuery.of(QueryParams("limit=7")).limit == 50  # only the sizes offered

    # "between" reads the typed times (UTC without an offset); a span ignores them.
    between = ItemsQuery.of({"within": "between", "since": "2026-12-06T08:00", "until": "2026-12-06T09:30+01:00"})
    where = between.item_filter(NOW)
    assert where.since == datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
    assert where.until == datetime(2026, 12, 6, 8, 30, tzinfo=UTC)
    assert between.query() == "within=between&since=2026-12-06T08%3A00&until=2026-12-06T09%3A30%2B01%3A00"
    spanned = ItemsQuery.of({"within": "24h", "since": "garbage"})
    assert spanned.item_filter(NOW).since == NOW - timedelta(hours=24) and "since" not in spanned.query()


def test_a_filter_it_cannot_read_names_each_parameter() -> None:
    with pytest.raises(FilterInvalid) as caught:
        ItemsQuery.of({"state": ["done", "finished"], "within": "between", "since": "yesterday"}).item_filter(NOW)
    assert set(caught.value.errors) == {"state", "since"}
    assert "'finished'" in caught.value.errors["state"] and "2026-12-06 08:00" in caught.value.errors["since"]
    with pytest.raises(FilterInvalid) as caught:
        ItemsQuery.of({"within": "between", "since": "2026-12-06 10:00", "until": "2026-12-06 09:00"}).item_filter(NOW)
    assert caught.value.errors == {"until": "must be later than Since"}
    with pytest.raises(FilterInvalid):
        ItemsQuery.of({"within": "3y"}).item_filter(NOW)


def test_typed_times_and_export_queries() -> None:
    assert parse_moment("2026-12-06 08:00") == datetime(2026, 12, 6, 8, tzinfo=UTC)
    assert parse_moment("2026-12-06T08:00:30Z") == datetime(2026, 12, 6, 8, 0, 30, tzinfo=UTC)
    assert parse_moment("2026-12-06") == datetime(2026, 12, 6, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_moment("6/12/2026")
    where = ItemsQuery.of({"state": "failed", "within": "1h"}).item_filter(NOW)
    assert export_query(where, "csv") == "format=csv&state=failed&since=2026-12-06T11%3A00%3A00%2B00%3A00"


def test_the_new_queue_form_names_each_field_it_cannot_take() -> None:
    values = {**blank_queue_form().values, "name": "invoices", "sla_minutes": "30", "tags": "finance, eu"}
    made = parse_queue_create({**values, "unique_references": "on"})
    assert made.name == "invoices" and made.sla_minutes == 30 and made.unique_references
    assert made.tags == ["finance", "eu"] and made.max_retries == 3 and made.lease_seconds == 300
    with pytest.raises(QueueFormInvalid) as caught:
        parse_queue_create({**values, "max_retries": "2.5", "lease_seconds": "soon"})
    assert caught.value.errors == {"max_retries": "must be a whole number", "lease_seconds": "'soon' is not a number"}
    with pytest.raises(QueueFormInvalid) as caught:
        parse_queue_create({**values, "name": "in voices", "lease_seconds": "0"})
    assert set(caught.value.errors) == {"name", "lease_seconds"}


def test_ticked_ids_and_the_way_back() -> None:
    assert selected_ids(FormData([("id", "3"), ("id", "1"), ("id", "3")])) == [1, 3]
    with pytest.raises(ValueError, match="Tick the items first"):
        selected_ids(FormData([("csrf_token", "x")]))
    with pytest.raises(ValueError, match="not an item id"):
        selected_ids(FormData([("id", "one")]))
    assert safe_back("q", "/panel/queues/q?state=failed") == "/panel/queues/q?state=failed"
    assert safe_back("q", "/panel/queues/q/items/5?back=x") == "/panel/queues/q/items/5?back=x"
    for elsewhere in ("https://evil.example/", "/panel/queues/other", "/panel/queues/qq", "//evil", ""):
        assert safe_back("q", elsewhere) == "/panel/queues/q"


def test_durations_read_as_a_person_says_them() -> None:
    cases = {None: "—", 0: "0 s", 0.0421: "42 ms", 4.25: "4.2 s", 42: "42 s", 185: "3 min 5 s", 900: "15 min"}
    assert {seconds: duration(seconds) for seconds in cases} == cases
    assert (
        duration(7500) == "2 h 5 min" and duration(7200) == "2 h" and duration(3 * 86_400 + 4 * 3600 + 59) == "3 d 4 h"
    )


def test_the_sparkline_scales_the_busiest_minute_to_the_top() -> None:
    spark = draw_sparkline([0, 2, 4, 0], width=30, height=12)
    assert spark.line == "0,11 10,6 20,1 30,11"
    assert spark.area == "M0,12 L0,11 L10,6 L20,1 L30,11 L30,12 Z"
    assert (spark.total, spark.peak) == (6, 4) and "6 done in the last 4 minutes" in spark.title
    flat = draw_sparkline([0] * 60, width=120, height=28)
    assert flat.peak == 0 and {point.split(",")[1] for point in flat.line.split()} == {"27"}


def stats(past_sla: int = 0, oldest: float | None = None) -> QueueStats:
    return QueueStats(
        queue="q",
        counts={state: 0 for state in ItemState},
        throughput_per_minute=[0] * 60,
        average_handling_seconds=None,
        p95_handling_seconds=None,
        past_sla=past_sla,
        past_deadline=0,
        oldest_waiting_seconds=oldest,
        at=NOW,
    )


def test_the_sla_badge_says_past_near_or_within() -> None:
    assert sla_status(None, stats(past_sla=3)).text == "no SLA"
    past = sla_status(10, stats(past_sla=3, oldest=900))
    assert (past.badge, past.text) == ("bad", "3 past SLA") and "10 min" in past.detail
    near = sla_status(10, stats(oldest=500))
    assert (near.badge, near.text) == ("warn", "near SLA") and "8 min" in near.detail
    assert sla_status(10, stats(oldest=100)).badge == "ok"
    assert sla_status(10, stats()).text == "within SLA"
