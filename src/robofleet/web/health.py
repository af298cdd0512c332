"""Liveness and readiness: `/healthz` says the process answers, `/readyz` that the store is usable."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from robofleet.errors import StoreUnavailable
from robofleet.store.migrate import current_revision, head_revision
from robofleet.web.context import context_of
from robofleet.web.security import PUBLIC

router = APIRouter()


@router.get("/healthz", dependencies=[Depends(PUBLIC)], tags=["health"])
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", dependencies=[Depends(PUBLIC)], tags=["health"])
def readyz(request: Request) -> JSONResponse:
    context = context_of(request)
    body: dict[str, Any] = {"status": "ready", "store": context.store.dialect}
    try:
        if not context.ready:
            raise StoreUnavailable(context.not_ready_reason)
        current = current_revision(context.store.engine)
        head = head_revision(context.store.engine)
        if current != head:
            raise StoreUnavailable(f"migrations not applied: store at {current}, code at {head}")
    except StoreUnavailable as exc:
        return JSONResponse({"status": "unavailable", "reason": exc.message}, status_code=503)
    except Exception as exc:  # any driver error means "not ready", and says why
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()
        return JSONResponse(
            {"status": "unavailable", "reason": reason[0] if reason else type(exc).__name__}, status_code=503
        )
    return JSONResponse(body)
