"""Work queues: items added by dispatchers and outside systems, leased one at a time by worker robots (never to
two at once, never lost), retried by policy, with each item's history and each queue's figures."""

from robofleet.domain import Domain

DOMAIN = Domain(
    name="queues",
    package=__name__,
    tables=("robofleet.queues.models",),
    actions="robofleet.queues.actions:register",
    api=("robofleet.queues.api:router",),
    service="robofleet.queues.service:QueuesService",
)
