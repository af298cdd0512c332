"""The schedules pages in headless Chromium on one real `robofleet serve`: a schedule built with the form's cron
builder (the cron it made and the next fires shown as it is filled), listed with its next fire, fired, paused and
resumed from the list, refused with the field named and the typing kept, drawn on the week timeline; calendars
made and honoured by the preview; a viewer sees no write buttons and cannot post."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import ServeProcess, StartServe, log_in, wait_until
from tests.schedules.conftest import SchedulesApi, at, counter

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ROBOT = "panel-bot"


@pytest.fixture(scope="module")
def serve(start_module_serve: StartServe) -> ServeProcess:
    serve = start_module_serve()
    serve.user("vera", "viewer")
    return serve


@pytest.fixture(scope="module")
def api(serve: ServeProcess) -> Iterator[SchedulesApi]:
    with serve.api(timeout=10) as client:
        schedules = SchedulesApi(client)
        schedules.robot(ROBOT, counter(0.3))
        yield schedules


@pytest.fixture
def admin(serve: ServeProcess, api: SchedulesApi, module_browser: Browser) -> Iterator[Page]:
    context = module_browser.new_context()
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, serve.url, "admin", serve.admin_password(), "/panel/schedules")
    yield page
    context.close()


def row(page: Page, name: str) -> str:
    return f"#schedules tr[data-schedule='{name}']"


def test_a_schedule_built_with_the_form_is_listed_fired_paused_and_resumed(
    serve: ServeProcess, api: SchedulesApi, admin: Page
) -> None:
    page = admin
    # "n" unfolds the form; the builder shows the cron it makes and the next fires, live.
    page.keyboard.press("n")
    assert page.evaluate("document.activeElement.name") == "name"
    form = "#new-schedule"
    page.fill(f"{form} [name=name]", "weekday-bot")
    page.select_option(f"{form} [name=kind]", "cron")
    page.select_option(f"{form} [name=cron_mode]", "weekdays")
    page.fill(f"{form} [name=cron_time]", "07:30")
    page.fill(f"{form} [name=timezone]", "Europe/Berlin")
    page.select_option(f"{form} [name=robot]", ROBOT)
    page.wait_for_selector("#built-cron:has-text('30 7 * * mon-fri')")
    expect(page.locator("#preview-fires li")).to_have_count(8)
    # The preview follows each change as it is typed: the one after the zone's is the one to read.
    expect(page.locator("#preview-fires li").first).to_contain_text("07:30:00 CE")
    shown = page.locator("#preview-fires li").all_inner_texts()
    assert all("07:30:00 CE" in text and not text.startswith(("Sat", "Sun")) for text in shown), shown
    # Only the chosen shape's fields show; another shape makes another cron.
    assert page.is_hidden(f"{form} [name=cron_every]") and page.is_hidden(f"{form} [name=interval_seconds]")
    page.select_option(f"{form} [name=cron_mode]", "seconds")
    page.fill(f"{form} [name=cron_every]", "15")
    page.wait_for_selector("#built-cron:has-text('*/15 * * * * *')")
    page.select_option(f"{form} [name=cron_mode]", "weekdays")
    page.wait_for_selector("#built-cron:has-text('30 7 * * mon-fri')")
    page.fill(f"{form} [name=tags]", "morning, panel")
    page.click("#create-schedule")
    page.wait_for_selector(".flash.notice:has-text('Schedule weekday-bot created')")
    assert page.url.endswith("/panel/schedules/weekday-bot")
    stored = api.get("weekday-bot")
    assert stored["trigger"] == {"kind": "cron", "expression": "30 7 * * mon-fri"}
    assert stored["timezone"] == "Europe/Berlin" and stored["tags"] == ["morning", "panel"]
    assert stored["target"] == {"action": "robots.start", "args": {"name": ROBOT}}
    assert len(page.locator("#upcoming li").all()) == 8

    # The edit form opens on the builder's shape; a new time through it is saved as the cron it makes.
    page.click("#edit summary")
    edit = "#edit-schedule"
    assert page.input_value(f"{edit} [name=cron_mode]") == "weekdays"
    assert page.input_value(f"{edit} [name=cron_time]") == "07:30"
    page.fill(f"{edit} [name=cron_time]", "08:15")
    page.wait_for_selector(f"{edit} #built-cron:has-text('15 8 * * mon-fri')")
    page.click("#save-schedule")
    page.wait_for_selector(".flash.notice:has-text('Schedule weekday-bot saved')")
    stored = api.get("weekday-bot")
    assert stored["trigger"]["expression"] == "15 8 * * mon-fri" and stored["tags"] == ["morning", "panel"]
    assert "Monday to Friday at 08:15" in page.inner_text("#trigger-words")

    # Listed with its trigger in words, the cron and its next fire.
    page.goto(f"{serve.url}/panel/schedules")
    line = row(page, "weekday-bot")
    assert "Monday to Friday at 08:15" in page.inner_text(f"{line} [data-field=trigger]")
    assert "15 8 * * mon-fri" in page.inner_text(f"{line} [data-field=trigger]")
    next_fire = at(stored["next_fire_at"]).strftime("%Y-%m-%d %H:%M:%S")
    assert page.inner_text(f"{line} [data-field=next]") == next_fire
    assert "never" in page.inner_text(f"{line} [data-field=last]")

    # Fire now: the fire and its outcome, in the list and on the schedule's page with its activity.
    page.click(f"{line} button[data-action=fire]")
    page.wait_for_selector(".flash.notice:has-text('Fired weekday-bot: fired')")
    assert "fired" in page.inner_text(f"{row(page, 'weekday-bot')} [data-field=last]")
    assert re.search(r"[+-]\d+\.\d{3} s", page.inner_text(f"{row(page, 'weekday-bot')} [data-field=last]"))
    [fire] = api.fires("weekday-bot")
    page.goto(f"{serve.url}/panel/schedules/weekday-bot")
    assert page.inner_text(f"#fires tr[data-fire='{fire['id']}'] .badge") == "fired"
    assert page.locator(f"#fires a[href='/api/v1/activities/{fire['activity_id']}']").count() == 1

    # Pause and resume from the list.
    page.goto(f"{serve.url}/panel/schedules")
    page.click(f"{row(page, 'weekday-bot')} button[data-action=pause]")
    page.wait_for_selector(".flash.notice:has-text('weekday-bot paused')")
    assert page.locator(f"{row(page, 'weekday-bot')} [data-badge=paused]").count() == 1
    assert api.get("weekday-bot")["paused"] is True
    page.click(f"{row(page, 'weekday-bot')} button[data-action=resume]")
    page.wait_for_selector(".flash.notice:has-text('weekday-bot resumed')")
    assert page.locator(f"{row(page, 'weekday-bot')} [data-badge=paused]").count() == 0

    # The rows follow fires made elsewhere without a reload.
    assert api.api.post("/api/v1/schedules/weekday-bot/fire").status_code == 201
    wait_until(lambda: len(api.fires("weekday-bot")) == 2, 10)
    latest = at(api.get("weekday-bot")["last_fire"]["fired_at"]).strftime("%Y-%m-%d %H:%M:%S")
    page.wait_for_selector(f"{row(page, 'weekday-bot')} [data-field=last] [title*='fired {latest}']", timeout=10_000)

    # "/" focuses the filter, which hides the rows that do not match.
    api.schedule(
        "other-job", {"kind": "interval", "seconds": 3600}, {"action": "system.echo", "args": {"message": "hi"}}
    )
    page.reload()
    page.keyboard.press("/")
    page.keyboard.type("weekday")
    assert page.is_visible(row(page, "weekday-bot")) and page.is_hidden(row(page, "other-job"))


def test_bad_input_names_the_field_keeps_the_typing_and_saves_nothing(
    serve: ServeProcess, api: SchedulesApi, admin: Page
) -> None:
    page = admin
    form = "#new-schedule"
    page.keyboard.press("n")
    page.fill(f"{form} [name=name]", "late-window")
    page.select_option(f"{form} [name=kind]", "window")
    page.fill(f"{form} [name=window_start]", "18:00")
    page.fill(f"{form} [name=window_end]", "09:00")
    page.select_option(f"{form} [name=robot]", ROBOT)
    page.fill(f"{form} [name=description]", "kept after the error")
    page.wait_for_selector("#preview-problem:has-text('end after it starts')")
    page.click("#create-schedule")
    page.wait_for_selector("#error-window_end:has-text('end after it starts')")
    assert "Window end" in page.inner_text("#form-problems")
    assert page.input_value(f"{form} [name=window_start]") == "18:00"
    assert page.input_value(f"{form} [name=window_end]") == "09:00"
    assert page.input_value(f"{form} [name=description]") == "kept after the error"
    assert page.input_value(f"{form} [name=kind]") == "window"
    assert page.is_visible(f"{form} [name=window_end]")
    assert api.api.get("/api/v1/schedules/late-window").status_code == 404

    page.fill(f"{form} [name=window_end]", "19:00")
    page.fill(f"{form} [name=timezone]", "Mars/Olympus_Mons")
    page.click("#create-schedule")
    page.wait_for_selector("#error-timezone:has-text('unknown timezone')")
    assert page.input_value(f"{form} [name=timezone]") == "Mars/Olympus_Mons"
    assert page.input_value(f"{form} [name=window_end]") == "19:00"
    assert api.api.get("/api/v1/schedules/late-window").status_code == 404

    # A form post without the CSRF token is refused.
    assert page.request.post(f"{serve.url}/panel/schedules", form={"name": "x"}).status == 403


def test_the_week_timeline_draws_windows_planned_fires_and_past_runs(
    serve: ServeProcess, api: SchedulesApi, admin: Page
) -> None:
    api.robot("timeline-bot", counter(0.2))
    start = {"action": "robots.start", "args": {"name": "timeline-bot"}}
    api.schedule("noon", {"kind": "cron", "expression": "0 12 * * *"}, start)
    made = api.api.post("/api/v1/robots/timeline-bot/start")
    assert made.status_code in (200, 201), made.text
    wait_until(lambda: [run for run in api.runs("timeline-bot") if run["state"] == "succeeded"], 15)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%a")
    api.schedule(
        "nightly-window",
        {"kind": "window", "days": [tomorrow.lower()], "start": "01:00", "end": "02:00"},
        start,
    )
    page = admin
    page.goto(f"{serve.url}/panel/schedules/timeline")
    robot_row = "#timeline g[data-robot='timeline-bot']"
    assert page.locator(f"{robot_row} rect.window").count() == 1
    assert "nightly-window: window" in page.inner_html(f"{robot_row} rect.window")
    assert page.locator(f"{robot_row} rect.tick").count() == 7
    assert "noon (robots.start)" in page.inner_html(f"{robot_row} rect.tick >> nth=0")
    assert page.locator(f"{robot_row} rect.run-succeeded").count() >= 1
    assert page.locator("#now-line").count() == 1


def test_calendars_are_made_listed_and_honoured_by_the_preview(
    serve: ServeProcess, api: SchedulesApi, admin: Page
) -> None:
    page = admin
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    page.goto(f"{serve.url}/panel/schedules/calendars")
    page.keyboard.press("n")
    page.fill("#new-calendar [name=name]", "office-closed")
    page.fill("#new-calendar [name=holidays]", "DE-BE")
    page.fill("#new-calendar [name=dates]", tomorrow)
    page.click("#create-calendar")
    page.wait_for_selector(".flash.notice:has-text('Calendar office-closed created')")
    assert "DE-BE" in page.inner_text("#calendars tr[data-calendar='office-closed']")
    page.keyboard.press("n")
    page.fill("#new-calendar [name=name]", "nowhere")
    page.fill("#new-calendar [name=holidays]", "XX")
    page.click("#create-calendar")
    page.wait_for_selector("#error-holidays:has-text('XX')")
    assert page.input_value("#new-calendar [name=holidays]") == "XX"

    page.goto(f"{serve.url}/panel/schedules")
    page.keyboard.press("n")
    form = "#new-schedule"
    page.select_option(f"{form} [name=cron_mode]", "daily")
    page.fill(f"{form} [name=cron_time]", "12:00")
    expect(page.locator("#preview-fires li")).to_have_count(8)
    assert any(tomorrow in text for text in page.locator("#preview-fires li").all_inner_texts())
    page.select_option(f"{form} [name=calendars]", ["office-closed"])
    expect(page.locator("#preview-fires")).not_to_contain_text(tomorrow)
    expect(page.locator("#preview-fires li")).to_have_count(8)

    # Deleted (after a confirm) while no schedule uses it.
    page.goto(f"{serve.url}/panel/schedules/calendars")
    page.click("#calendars tr[data-calendar='office-closed'] button")
    page.wait_for_selector(".flash.notice:has-text('Calendar office-closed deleted')")
    assert page.locator("#calendars tr[data-calendar='office-closed']").count() == 0


def test_a_broken_schedule_shows_why_and_cannot_be_fired(serve: ServeProcess, api: SchedulesApi, admin: Page) -> None:
    api.robot("doomed", counter(0.2))
    when = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    target = {"action": "robots.start", "args": {"name": "doomed"}}
    api.schedule("orphan", {"kind": "once", "at": when.isoformat()}, target)
    page = admin
    page.reload()
    assert page.locator(f"{row(page, 'orphan')} [data-badge=broken]").count() == 0
    assert api.api.delete("/api/v1/robots/doomed").status_code == 204
    # The list refreshes itself: the badge and its reason come without a reload.
    page.wait_for_selector(f"{row(page, 'orphan')} [data-badge=broken]:has-text('doomed')", timeout=15_000)
    assert page.is_disabled(f"{row(page, 'orphan')} button[data-action=fire]")
    page.goto(f"{serve.url}/panel/schedules/orphan")
    assert "doomed" in page.inner_text("#broken-reason") and page.is_disabled("#action-fire")


def test_a_viewer_sees_no_write_buttons_and_cannot_post(
    serve: ServeProcess, api: SchedulesApi, module_browser: Browser
) -> None:
    api.schedule(
        "viewer-sees", {"kind": "interval", "seconds": 3600}, {"action": "system.echo", "args": {"message": "x"}}
    )
    context = module_browser.new_context()
    page = context.new_page()
    try:
        log_in(page, serve.url, "vera", "vera-password", "/panel/schedules")
        assert page.locator(row(page, "viewer-sees")).count() == 1
        assert page.locator("#new-schedule").count() == 0
        assert page.locator("#schedules button").count() == 0
        page.goto(f"{serve.url}/panel/schedules/viewer-sees")
        assert page.locator("#action-fire, #edit, #action-delete").count() == 0
        headers = json.loads(page.get_attribute("body", "hx-headers") or "{}")
        token = headers["X-CSRF-Token"]
        for path in ("/panel/schedules/viewer-sees/fire", "/panel/schedules/viewer-sees/pause", "/panel/schedules"):
            refused = page.request.post(f"{serve.url}{path}", form={"csrf_token": token, "name": "x"})
            assert refused.status == 403, path
        assert api.fires("viewer-sees") == []
    finally:
        context.close()
