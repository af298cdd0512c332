"""Alerts on both stores: the app in-process with quick detection and retries, a real SMTP server (aiosmtpd) that
receives the alerts' e-mails, a real HTTP server that receives their webhooks and checks each signature, and
`AlertsApi`, the requests these tests repeat, over a TestClient or a real server's httpx client."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session

from robofleet.settings.model import Settings
from tests.kit.ports import free_port
from tests.kit.waiting import wait_until

SECRET = "a-webhook-secret-of-some-length"
CHECK_SECONDS = 0.2
BACKOFF_SECONDS = 0.5


def robot_argv(*, sleep: float = 0.0, code: int = 0) -> list[str]:
    """A robot that sleeps `sleep` seconds, then exits with `code`."""
    return [sys.executable, "-c", f"import sys, time; time.sleep({sleep}); sys.exit({code})"]


# ---- a real SMTP server -----------------------------------------------------------------------------------------


class _Collect:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.sink.received.append((list(envelope.rcpt_tos), message_from_bytes(content)))
        return "250 OK"


@dataclass
class SmtpSink:
    """aiosmtpd on 127.0.0.1:`port`, in a thread of the test process; `received` is (recipients, message) each."""

    port: int = field(default_factory=free_port)
    received: list[tuple[list[str], Message]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.controller = Controller(_Collect(self), hostname="127.0.0.1", port=self.port)

    def wait(self, count: int, timeout: float = 15) -> list[tuple[list[str], Message]]:
        return wait_until(
            lambda: self.received if len(self.received) >= count else None,
            timeout,
            message=lambda: f"{count} e-mail(s); got {len(self.received)}",
        )


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.controller.start()
    try:
        yield sink
    finally:
        sink.controller.stop()


# ---- a real HTTP receiver ---------------------------------------------------------------------------------------


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    body: bytes
    signed: bool  # the signature header is the HMAC-SHA256 of "<timestamp>.<body>" under SECRET

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that answers 500 to its first `failures` requests, then 204; it records each
    request and whether its signature holds."""

    def __init__(self, failures: int = 0, secret: str = SECRET, hang_first: float = 0.0) -> None:
        self.failures = failures
        self.hang_first = hang_first  # the first request is answered only after this many seconds
        self.secret = secret
        self.received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                timestamp = self.headers.get("X-Robofleet-Timestamp", "")
                expected = hmac.new(receiver.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
                signed = hmac.compare_digest(
                    self.headers.get("X-Robofleet-Signature", ""), "sha256=" + expected.hexdigest()
                )
                receiver.received.append(Received(time.monotonic(), dict(self.headers.items()), body, signed))
                if len(receiver.received) == 1 and receiver.hang_first:
                    time.sleep(receiver.hang_first)
                failing = len(receiver.received) <= receiver.failures
                self.send_response(500 if failing else 204)
                self.end_headers()
                if failing:
                    self.wfile.write(b"receiver down for a moment")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait(self, count: int, timeout: float = 15) -> list[Received]:
        return wait_until(
            lambda: self.received if len(self.received) >= count else None,
            timeout,
            message=lambda: f"{count} webhook request(s); got {len(self.received)}",
        )


@pytest.fixture
def webhook_receiver() -> Iterator[Callable[..., WebhookReceiver]]:
    """`webhook_receiver(failures=0, hang_first=0.0)`: a started WebhookReceiver, stopped when the test ends."""
    started: list[WebhookReceiver] = []

    def start(failures: int = 0, hang_first: float = 0.0) -> WebhookReceiver:
        receiver = WebhookReceiver(failures, hang_first=hang_first)
        receiver.thread.start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.server.shutdown()
        receiver.server.server_close()


# ---- the app ------------------------------------------------------------------------------------------------------


@pytest.fixture
def settings(store_url: str, tmp_path: Path, smtp_sink: SmtpSink) -> Settings:
    """The suite's settings, with detection every 0.2 s, retries after 0.5 s (doubling), the SMTP sink's server."""
    return Settings(
        store={"url": store_url, "data_dir": tmp_path / "data"},
        auth={"lockout_threshold": 3, "lockout_minutes": 1},
        alerting=alerting_settings(smtp_sink.port),
    )


def alerting_settings(smtp_port: int) -> dict[str, Any]:
    return {
        "check_seconds": CHECK_SECONDS,
        "retry_backoff_seconds": BACKOFF_SECONDS,
        "max_attempts": 4,
        "webhook_timeout_seconds": 5,
        "smtp": {
            "host": "127.0.0.1",
            "port": smtp_port,
            "user": None,
            "from_address": "robofleet@example.test",
        },
    }


def serve_env(store_url: str, smtp_port: int) -> dict[str, str]:
    """The environment of a real serve with the same alerting settings (webhooks time out after 2 s)."""
    env = {
        "ROBOFLEET_ALERTING__CHECK_SECONDS": str(CHECK_SECONDS),
        "ROBOFLEET_ALERTING__WEBHOOK_TIMEOUT_SECONDS": "2",
        "ROBOFLEET_ALERTING__RETRY_BACKOFF_SECONDS": str(BACKOFF_SECONDS),
        "ROBOFLEET_ALERTING__SMTP__HOST": "127.0.0.1",
        "ROBOFLEET_ALERTING__SMTP__PORT": str(smtp_port),
    }
    if not store_url.startswith("sqlite"):
        env["ROBOFLEET_STORE__URL"] = store_url
    return env


class AlertsApi:
    """Alerts, robots and runs through one client (a TestClient or an httpx.Client), sending `headers`."""

    def __init__(self, api: httpx.Client, headers: dict[str, str] | None = None) -> None:
        self.api = api
        self.headers = headers or {}

    def post(self, path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
        answer = self.api.post(path, json=body, headers=self.headers)
        assert answer.status_code == status, answer.text
        return answer.json() if answer.content else {}  # type: ignore[no-any-return]

    def get(self, path: str, **params: Any) -> Any:
        answer = self.api.get(path, params=params, headers=self.headers)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def email_channel(self, name: str, *recipients: str) -> dict[str, Any]:
        return self.post("/api/v1/alerts/channels", {"name": name, "kind": "email", "recipients": list(recipients)})

    def webhook_channel(self, name: str, url: str, secret: str = SECRET) -> dict[str, Any]:
        return self.post("/api/v1/alerts/channels", {"name": name, "kind": "webhook", "url": url, "secret": secret})

    def rule(self, name: str, kind: str, *channels: str, **fields: Any) -> dict[str, Any]:
        body = {"name": name, "kind": kind, "channels": list(channels), **fields}
        return self.post("/api/v1/alerts/rules", body)

    def robot(self, name: str, argv: list[str], **fields: Any) -> None:
        self.post("/api/v1/robots", {"name": name, "argv": argv, **fields})

    def start(self, robot: str) -> dict[str, Any]:
        return self.post(f"/api/v1/robots/{robot}/start", {})

    def wait_run(self, run_id: int, *states: str, timeout: float = 20) -> dict[str, Any]:
        return wait_until(
            lambda: run if (run := self.get(f"/api/v1/runs/{run_id}"))["state"] in states else None,
            timeout,
            message=f"run {run_id} to be {' or '.join(states)}",
        )

    def alerts(self, **params: Any) -> list[dict[str, Any]]:
        return self.get("/api/v1/alerts", **params)["items"]  # type: ignore[no-any-return]

    def wait_alerts(self, count: int, timeout: float = 20, **params: Any) -> list[dict[str, Any]]:
        return wait_until(
            lambda: found if len(found := self.alerts(**params)) >= count else None,
            timeout,
            message=lambda: f"{count} alert(s); got {self.alerts(**params)}",
        )

    def wait_delivered(self, alert_id: int, timeout: float = 20) -> dict[str, Any]:
        """The alert's detail once none of its deliveries is pending."""

        def settled() -> dict[str, Any] | None:
            detail: dict[str, Any] = self.get(f"/api/v1/alerts/{alert_id}")
            return detail if all(d["state"] != "pending" for d in detail["deliveries"]) else None

        return wait_until(
            settled,
            timeout,
            message=lambda: f"the deliveries of alert {alert_id}: {self.get(f'/api/v1/alerts/{alert_id}')}",
        )
