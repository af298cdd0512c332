"""The CLI's side of the HTTP API: which server, which token, and errors turned into messages and exit codes."""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

import httpx
import typer

from robofleet.settings.model import Settings

ServerOption = Annotated[str | None, typer.Option("--server", help="Orchestrator URL (default: settings)")]
TokenOption = Annotated[str | None, typer.Option("--token", help="API token (default: client.token setting)")]


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"robofleet: {message}", err=True)
    raise typer.Exit(code)


def connection(settings: Settings, server: str | None, token: str | None) -> httpx.Client:
    url = server or settings.client.url or settings.server.public_url
    if not url:
        scheme = "https" if settings.server.tls_cert else "http"
        host = "127.0.0.1" if settings.server.host in ("0.0.0.0", "::") else settings.server.host  # noqa: S104
        url = f"{scheme}://{host}:{settings.server.port}"
    secret = token or (settings.client.token.get_secret_value() if settings.client.token else None)
    if not secret:
        fail("no API token: pass --token, or set client.token (ROBOFLEET_CLIENT__TOKEN)", 2)
    return httpx.Client(base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {secret}"}, timeout=30)


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        fail(f"cannot reach {client.base_url}: {exc}")
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            fail(f"{response.status_code} {error['code']}: {error['message']}")
        except (ValueError, KeyError, TypeError):
            fail(f"{response.status_code}: {response.text[:500]}")
    return response.json()


def settings_from(ctx: typer.Context) -> Settings:
    loader = ctx.obj
    settings: Settings = loader()
    return settings
