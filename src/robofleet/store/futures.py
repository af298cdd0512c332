"""Answering the caller of a queued store operation from the thread that did it."""

from __future__ import annotations

from concurrent.futures import Future, InvalidStateError
from typing import TypeVar

T = TypeVar("T")


def settle(future: Future[T], *, result: T | None = None, exception: BaseException | None = None) -> None:
    """Give `future` its result, or `exception` when one is given. A caller that stopped waiting (its task was
    cancelled) cancelled its future; the work was done all the same, and the thread that did it must not die of
    telling nobody."""
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)  # type: ignore[arg-type]  # None only where T allows it
    except InvalidStateError:
        pass
