"""Agents: the processes on robot machines that start, signal and watch robot processes for the orchestrator."""

from robofleet.domain import Domain

DOMAIN = Domain(
    name="agents",
    package=__name__,
    tables=("robofleet.agents.models",),
    actions="robofleet.agents.actions:register",
    # The agents' WebSocket checks its token and agents:connect itself (see agents/remote.py).
    api=("robofleet.agents.api:router", "robofleet.agents.remote:router"),
    panel=("robofleet.agents.panel:router",),
    templates=True,
    service="robofleet.domain:BuiltIn",
    metrics="robofleet.agents.metrics:AgentCollector",
)
