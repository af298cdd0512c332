"""Bad input is a 4xx on every route and on both stores, never a 500 with tracebacks in serve's log: a NUL in a path
or query string, a NUL in body text (which PostgreSQL cannot store, and SQLite refuses alike), an id past 64 bits."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from robofleet.web.app import all_routers
from tests.conftest import STORES, PgServer, ServeProcess, StartServe, skip_or_fail

pytestmark = pytest.mark.slow

BIG = str(2**63)  # one past the largest 64-bit id
SECRET = "pg-leak-secret-42"


@pytest.fixture(scope="module", params=STORES)
def serve(
    request: pytest.FixtureRequest, start_module_serve: StartServe, pg_server: PgServer | None
) -> Iterator[ServeProcess]:
    if request.param == "sqlite":
        yield start_module_serve()
        return
    if pg_server is None:
        skip_or_fail("no server at 127.0.0.1:5432 and no local PostgreSQL binaries")
        return
    with pg_server.database() as url:
        serve = start_module_serve(env={"ROBOFLEET_STORE__URL": url})
        yield serve
        serve.stop()  # before its database is dropped


@pytest.fixture(scope="module")
def api(serve: ServeProcess) -> Iterator[httpx.Client]:
    with serve.api() as client:
        yield client


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, (response.request.method, response.request.url, response.text)
    assert response.json()["error"]["code"] == code, response.text


def with_nul(path: str) -> str:
    """`path` with each of its parameters a NUL, or with a query parameter that is one."""
    filled = re.sub(r"\{[^}]+\}", "%00", path)
    return filled if filled != path else f"{path}?q=%00"


def test_a_nul_in_the_path_or_query_is_a_422_on_every_route(serve: ServeProcess, api: httpx.Client) -> None:
    asked = 0
    for router in all_routers():
        for route in router.routes:
            if isinstance(route, APIWebSocketRoute):
                continue
            assert isinstance(route, APIRoute), route
            for method in sorted(route.methods - {"HEAD"}):
                response = api.request(method, with_nul(route.path))
                assert response.status_code == 422, (method, route.path, response.text[:300])
                if not route.path.startswith("/panel"):
                    assert response.json()["error"]["code"] == "nul_character"
                asked += 1
    assert asked > 50
    # The same without a token, on the filters the findings named, on static files, and as %00 or \u0000.
    for path in ("/api/v1/users/%00", "/api/v1/audit?actor=%00", "/api/v1/runs?robot=a%00b", "/static/%00.js"):
        assert_refused(httpx.get(serve.url + path), 422, "nul_character")
    assert_refused(api.get("/api/v1/activities", params={"action": "a\u0000"}), 422, "nul_character")
    assert_refused(api.get("/api/v1/tokens", params={"user": "\u0000"}), 422, "nul_character")
    page = api.get("/panel/robots/%00")
    assert page.status_code == 422 and "NUL" in page.text and page.headers["content-type"].startswith("text/html")
    # The agents' socket refuses it before its handshake.
    ws_url = serve.url.replace("http", "ws") + "/api/v1/agents/connect?name=%00"
    with pytest.raises(InvalidStatus), connect(ws_url, open_timeout=10):
        pass
    assert "Traceback" not in serve.output()


def test_a_nul_in_body_text_is_a_422_and_leaks_no_secret(serve: ServeProcess, api: httpx.Client) -> None:
    robot = {"name": "leaky", "argv": ["true"], "env": {"DB_PASSWORD": SECRET}, "description": "x\u0000"}
    answers = [
        api.post("/api/v1/robots", json=robot),
        api.post("/api/v1/tokens", json={"name": "a\u0000"}),
        api.post("/api/v1/roles", json={"name": "nul-role", "description": "a\u0000"}),
    ]
    login = httpx.post(f"{serve.url}/api/v1/auth/login", json={"username": "a\u0000", "password": "x"})
    # The panel's login form as a browser sends it (its cookie is Secure, which a browser sends to 127.0.0.1).
    form_page = httpx.get(f"{serve.url}/panel/login")
    form = re.search(r'name="csrf_token" value="([^"]+)"', form_page.text)
    assert form is not None
    panel_login = httpx.post(
        f"{serve.url}/panel/login",
        data={"username": "a\u0000", "password": "x", "csrf_token": form.group(1)},
        headers={"Cookie": f"robofleet_login_csrf={form_page.cookies['robofleet_login_csrf']}"},
    )
    for response in [*answers, login]:
        # Refused by the input's validation now (naming where), before any statement could be tried.
        assert response.status_code == 422 and "NUL character" in response.json()["error"]["message"], response.text
    assert panel_login.status_code == 422 and "NUL character" in panel_login.text
    assert 'name="username"' in panel_login.text  # the form again, to try once more
    # Neither serve's log nor the log store that viewers read holds the secret or a traceback.
    deadline = time.monotonic() + 3  # the orchestrator's records reach the store within a batch or two
    while time.monotonic() < deadline:
        for words in (SECRET, "Traceback", "unexpected"):
            stored = api.get("/api/v1/logs", params={"source": "orchestrator", "q": words}).json()["items"]
            assert not stored, stored
        time.sleep(0.25)
    assert SECRET not in serve.output() and "Traceback" not in serve.output()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/api/v1/runs/{BIG}"),
        ("POST", f"/api/v1/runs/{BIG}/kill"),
        ("POST", f"/api/v1/runs/{BIG}/stop"),
        ("GET", f"/api/v1/activities/{BIG}"),
        ("POST", f"/api/v1/activities/{BIG}/cancel"),
        ("GET", f"/api/v1/activities?batch_id={BIG}"),
        ("GET", f"/api/v1/runs/-{BIG}1"),
    ],
)
def test_an_id_past_64_bits_is_a_4xx(serve: ServeProcess, api: httpx.Client, method: str, path: str) -> None:
    response = api.request(method, path)
    assert response.status_code in (404, 422), response.text
    assert response.json()["error"]["code"] in ("not_found", "out_of_range", "invalid")  # invalid: a route bounds it
    assert "Traceback" not in serve.output()
