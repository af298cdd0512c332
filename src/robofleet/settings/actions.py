"""Settings as an action: the effective tree, secrets masked."""

from __future__ import annotations

from typing import Any

from robofleet.activities.registry import ActionContext, NoParams, Registry
from robofleet.settings.render import masked_tree


def register(registry: Registry) -> None:
    @registry.register("settings.read", permission="settings:read", params=NoParams)
    async def read_settings(ctx: ActionContext, params: NoParams) -> dict[str, Any]:
        """The effective settings tree with secrets masked."""
        return masked_tree(ctx.app.settings)
