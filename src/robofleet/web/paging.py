"""A list route's paging: its `?limit=&cursor=` query parameters as one dependency, and the page it answers with.

A route takes `paging: Paging` and passes `**paging` to its service's list call, which takes `limit` and `cursor`
as keywords; the parameters, their bounds and their docs stay those of `Limit` and `Cursor`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, ParamSpec, TypedDict, TypeVar

from fastapi import Depends
from starlette.concurrency import run_in_threadpool

from robofleet.store.pagination import Page
from robofleet.web.deps import Cursor, Limit
from robofleet.web.schemas import PageOut

P = ParamSpec("P")
T = TypeVar("T")


class PageArgs(TypedDict):
    """The keywords of a service's list call: at most `limit` items, after the page whose next_cursor is `cursor`."""

    limit: int
    cursor: str | None


async def paging(limit: Limit = 100, cursor: Cursor = None) -> PageArgs:
    """Async, so FastAPI spends no worker thread on it."""
    return {"limit": limit, "cursor": cursor}


Paging = Annotated[PageArgs, Depends(paging)]


async def page_in_thread(list_page: Callable[P, Page[T]], *args: P.args, **kwargs: P.kwargs) -> PageOut[T]:
    """The page `list_page(*args, **kwargs)` reads, read in a worker thread (for an async route), as the answer."""
    return PageOut.of(await run_in_threadpool(list_page, *args, **kwargs))
