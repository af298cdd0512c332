"""How an alert leaves: a signed webhook (httpx) or an e-mail (smtplib), each one attempt, in the calling thread,
answering what came of it. Retries are the service's (stored, with backoff); nothing here keeps state.

A webhook's body is the alert as JSON; its headers carry the delivery's id (a receiver drops a delivery it saw:
delivery is at least once), a Unix timestamp, and `X-Robofleet-Signature: sha256=<hex>`, the HMAC-SHA256 of
`<timestamp>.<body>` under the channel's secret. A receiver checks the signature and that the timestamp is recent."""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx

from robofleet import __version__
from robofleet.settings.model import SmtpSettings

SIGNATURE_HEADER = "X-Robofleet-Signature"
TIMESTAMP_HEADER = "X-Robofleet-Timestamp"
DELIVERY_HEADER = "X-Robofleet-Delivery"
ERROR_CHARS = 500  # an error as the delivery log keeps it


@dataclass(frozen=True)
class Sent:
    ok: bool
    status: str | None
    error: str | None
    seconds: float


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value of `body` sent at `timestamp` under `secret`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def body_of(alert: dict[str, Any]) -> bytes:
    return json.dumps({"event": "alert", "alert": alert}, separators=(",", ":"), sort_keys=True, default=str).encode()


def send_webhook(url: str, secret: str, body: bytes, delivery_id: int, timeout: float) -> Sent:
    """POST `body` to `url`, signed; ok on a 2xx answer (redirects are not followed: a 3xx is an error)."""
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"robofleet/{__version__}",
        DELIVERY_HEADER: str(delivery_id),
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }
    started = time.monotonic()
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return Sent(False, None, _short(f"{type(exc).__name__}: {exc}"), time.monotonic() - started)
    seconds = time.monotonic() - started
    status = f"HTTP {response.status_code}"
    if 200 <= response.status_code < 300:
        return Sent(True, status, None, seconds)
    return Sent(False, status, _short(f"{status}: {response.text.strip()}"), seconds)


def send_email(smtp: SmtpSettings, recipients: list[str], subject: str, text: str) -> Sent:
    """Send a plain-text e-mail through the configured server (never logging its password: smtplib's errors hold
    the server's answer, not the credentials)."""
    started = time.monotonic()
    if not smtp.host:
        return Sent(False, None, "alerting.smtp.host is not set", 0.0)
    message = EmailMessage()
    message["From"] = smtp.from_address
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message.set_content(text)
    try:
        client: smtplib.SMTP
        if smtp.security == "ssl":
            client = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=smtp.timeout_seconds, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
        with client:
            if smtp.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if smtp.user and smtp.password is not None:
                client.login(smtp.user, smtp.password.get_secret_value())
            refused = client.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        return Sent(False, None, _short(f"{type(exc).__name__}: {exc}"), time.monotonic() - started)
    seconds = time.monotonic() - started
    if refused:
        return Sent(True, "SMTP 250 (some refused)", _short(f"refused: {', '.join(sorted(refused))}"), seconds)
    return Sent(True, "SMTP 250", None, seconds)


def _short(text: str) -> str:
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"
