"""The panel's navigation shows a user only the pages they may open, and an error page keeps it: each entry names
the permission its page's route requires, and the sidebar and the keys help list the entries the user holds."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from robofleet.auth.principal import cli_principal
from robofleet.auth.roles import create_role
from robofleet.auth.schemas import RoleCreate
from robofleet.store import Store
from robofleet.web.app import all_routers
from robofleet.web.security import Require
from robofleet.web.templating import NAVIGATION
from tests.conftest import MakeUser


def sidebar_links(html: str) -> list[str]:
    """The titles of the sidebar's links, in order; fails when the page has no sidebar."""
    found = re.search(r'<nav class="sidebar".*?</nav>', html, re.S)
    assert found, "no sidebar on the page"
    return re.findall(r'data-shortcut="[^"]*"[^>]*>([^<]+)<kbd>', found.group(0))


def keys_help(html: str) -> list[str]:
    """The sections the keys help (`?`) lists."""
    found = re.search(r'<dialog id="keys".*?</dialog>', html, re.S)
    assert found
    return re.findall(r"<kbd>g \w</kbd></td><td>([^<]+)</td>", found.group(0))


@contextmanager
def logged_in(client: TestClient, username: str) -> Iterator[TestClient]:
    """A client of the same app with `username`'s panel session."""
    other = TestClient(client.app, base_url="http://testserver")  # the app is started already: no lifespan again
    try:
        answer = other.post("/api/v1/auth/login", json={"username": username, "password": f"{username}-password"})
        assert answer.status_code == 200, answer.text
        yield other
    finally:
        other.close()


def test_each_entry_names_the_permission_its_page_requires() -> None:
    pages = {
        route.path: route
        for router in all_routers()
        for route in router.routes
        if isinstance(route, APIRoute) and "GET" in (route.methods or ())
    }
    assert len(NAVIGATION) >= 9
    for entry in NAVIGATION:
        assert entry.href in pages, f"{entry.key}: no page at {entry.href}"
        guards = [dep.call for dep in pages[entry.href].dependant.dependencies if isinstance(dep.call, Require)]
        assert [guard.permission for guard in guards] == [entry.permission], entry.key


def test_a_narrow_user_sees_only_the_pages_they_may_open(client: TestClient, make_user: MakeUser, store: Store) -> None:
    runner = RoleCreate(name="invoice-runner", permissions=["robots:read", "robots:start", "logs:read"])
    create_role(store, cli_principal(), runner)
    make_user("bob", ["invoice-runner"], password="bob-password")
    make_user("olga", ["operator"], password="olga-password")
    make_user("ada", ["admin"], password="ada-password")
    everything = [entry.title for entry in NAVIGATION]
    his = [entry.title for entry in NAVIGATION if entry.permission in ("robots:read", "logs:read")]
    assert {"Fleet", "Robots", "Logs"} <= set(his) and len(his) < len(everything)

    with logged_in(client, "bob") as bob:
        fleet = bob.get("/panel/fleet")
        assert fleet.status_code == 200
        assert sidebar_links(fleet.text) == his
        assert keys_help(fleet.text) == his
        # The pages he may not open answer 403 with the same navigation, so he is never stranded.
        for refused in ("/panel/console", "/panel/access/users", "/panel/settings", "/panel/queues", "/panel/sessions"):
            answer = bob.get(refused)
            assert answer.status_code == 403, refused
            assert sidebar_links(answer.text) == his, refused
            assert "lacks the permission" in answer.text
        assert "Log out" in bob.get("/panel/settings").text

    with logged_in(client, "olga") as olga:
        shown = sidebar_links(olga.get("/panel/fleet").text)
        assert "Console" in shown and "Settings" in shown and "Queues" in shown
        assert "Access" not in shown  # an operator holds no users:read

    with logged_in(client, "ada") as ada:
        assert sidebar_links(ada.get("/panel/fleet").text) == everything


def test_the_login_page_has_a_skip_link_and_no_sidebar(client: TestClient) -> None:
    login = client.get("/panel/login")
    assert login.status_code == 200 and '<nav class="sidebar"' not in login.text
    assert 'class="skip-link" href="#main"' in login.text
