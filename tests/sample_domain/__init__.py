"""A domain as a new one is added: its own package with a `DOMAIN` record, here given to the orchestrator beside
the built-in ones (in robofleet, the one line in `robofleet/domains.py`). Used by tests/test_adding_a_domain.py."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from robofleet.activities.registry import ActionContext, NoParams, Registry
from robofleet.auth.principal import Principal
from robofleet.domain import Domain
from robofleet.orchestrator import Orchestrator
from robofleet.web.deps import Context
from robofleet.web.security import Require

STOPPED: list[str] = []  # what the test reads once the orchestrator is gone


class SampleService:
    def __init__(self, orchestrator: Orchestrator) -> None:
        self.store_dialect = orchestrator.store.dialect
        self.state = "built"

    async def startup(self) -> None:
        self.state = "started"

    async def stop(self) -> None:
        self.state = "stopped"
        STOPPED.append(self.store_dialect)


def register(registry: Registry) -> None:
    @registry.register("sample.state", permission="robots:read", params=NoParams)
    def state(ctx: ActionContext, params: NoParams) -> dict[str, Any]:
        """The sample service's state."""
        service = ctx.app.service("sample")
        assert isinstance(service, SampleService)
        return {"state": service.state}


router = APIRouter(prefix="/api/v1/sample")


@router.get("")
def sample_state(ctx: Context, principal: Principal = Depends(Require("robots:read"))) -> dict[str, str]:
    service = ctx.service("sample")
    assert isinstance(service, SampleService)
    return {"state": service.state}


DOMAIN = Domain(
    name="sample",
    package=__name__,
    actions=f"{__name__}:register",
    api=(f"{__name__}:router",),
    service=f"{__name__}:SampleService",
)
