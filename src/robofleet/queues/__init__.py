"""Work queues: items added by dispatchers and outside systems, leased one at a time by worker robots (never to
two at once, never lost), retried by policy, with each item's history and each queue's figures."""

from robofleet.domain import Domain, NavEntry

DOMAIN = Domain(
    name="queues",
    package=__name__,
    tables=("robofleet.queues.models",),
    actions="robofleet.queues.actions:register",
    api=("robofleet.queues.api:router",),
    panel=("robofleet.queues.panel:router",),
    templates=True,
    navigation=(NavEntry("queues", "Queues", "/panel/queues", "q", order=40, permission="queues:read"),),
    service="robofleet.queues.service:QueuesService",
    metrics="robofleet.queues.metrics:QueueCollector",
)
