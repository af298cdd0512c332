"""Liveness and readiness: `/healthz` says the process answers, `/readyz` that the store is usable."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from robofleet.errors import StoreUnavailable
from robofleet.store import Store
from robofleet.store.migrate import current_revision, head_revision
from robofleet.web.context import context_of
from robofleet.web.security import PUBLIC

router = APIRouter()


@router.get("/healthz", dependencies=[Depends(PUBLIC)], tags=["health"])
async def healthz() -> dict[str, str]:
    # On the event loop, not in a worker thread: it answers even while every worker waits on the store.
    return {"status": "ok"}


@router.get("/readyz", dependencies=[Depends(PUBLIC)], tags=["health"])
async def readyz(request: Request) -> JSONResponse:
    context = context_of(request)
    body: dict[str, Any] = {"status": "ready", "store": context.store.dialect}
    if not context.ready:
        return unavailable(context.not_ready_reason)
    limit = context.settings.store.connect_timeout + 1
    try:
        # Shielded: a probe that outlives its answer keeps running, and the next request waits on it.
        await asyncio.wait_for(asyncio.shield(probe_of(request.app, context.store)), timeout=limit)
    except TimeoutError:
        return unavailable(f"the store did not answer within {limit} s")
    except StoreUnavailable as exc:
        return unavailable(exc.message)
    except Exception as exc:  # any driver error means "not ready", and says why
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()
        return unavailable(reason[0] if reason else type(exc).__name__)
    return JSONResponse(body)


def unavailable(reason: str) -> JSONResponse:
    return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)


def check_store(store: Store) -> None:
    current = current_revision(store.engine)
    head = head_revision(store.engine)
    if current != head:
        raise StoreUnavailable(f"migrations not applied: store at {current}, code at {head}")


def probe_of(app: FastAPI, store: Store) -> asyncio.Future[None]:
    """One store probe at a time: frequent probes of a store that hangs must not pile up worker threads."""
    running: asyncio.Future[None] | None = getattr(app.state, "readiness_probe", None)
    if running is None or running.done() or running.get_loop() is not asyncio.get_running_loop():
        running = asyncio.ensure_future(asyncio.to_thread(check_store, store))
        running.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved: no warning
        app.state.readiness_probe = running
    return running
