"""API shapes of activities."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from robofleet.activities.models import ActivityState
from robofleet.store.text import refuse_nul


class ActivityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    _no_nul = model_validator(mode="before")(refuse_nul)

    action: str = Field(min_length=1, max_length=128)
    args: dict[str, Any] = Field(default_factory=dict)
    mode: Literal["sync", "async"] = "sync"
    idempotency_key: str | None = Field(None, min_length=1, max_length=128)


class ActivityBatchIn(BaseModel):
    """Several activities at once; with `batch` they run as one ordered unit that stops at the first failure."""

    model_config = ConfigDict(extra="forbid")

    activities: list[ActivityIn] = Field(min_length=1)
    batch: bool = False


class ActivityOut(BaseModel):
    id: int
    action: str
    args: dict[str, Any]
    mode: str
    state: ActivityState
    result: Any = None
    error: dict[str, Any] | None = None
    requested_by: str
    idempotency_key: str | None = None
    batch_id: int | None = None
    batch_index: int | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: float | None = None


class Submitted(BaseModel):
    ids: list[int]
    activities: list[ActivityOut]


class ActionOut(BaseModel):
    name: str
    summary: str
    doc: str
    permission: str
    parameters: dict[str, Any]
