"""The panel's form posts: read the form, call the service, go back with a notice or the error it raised."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from robofleet.errors import RobofleetError
from robofleet.web.errors import describe_validation
from robofleet.web.templating import redirect


async def submit(back: str, action: Callable[[], Any], notice: str) -> Response:
    """Runs `action` (a plain function: in a worker thread) and redirects to `back` with `notice`, or with the
    message of the validation or robofleet error it raised."""
    try:
        await run_in_threadpool(action)
    except ValidationError as exc:
        return redirect(back, error=describe_validation(list(exc.errors()))[0])
    except RobofleetError as exc:
        return redirect(back, error=exc.message)
    return redirect(back, notice=notice)


async def form_of(request: Request) -> FormData:
    return await request.form()
