"""Shapes shared by every API domain."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel

from robofleet.store.pagination import Page

T = TypeVar("T")


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None

    @classmethod
    def of(cls, page: Page[T]) -> PageOut[T]:
        return cls(items=page.items, next_cursor=page.next_cursor)
