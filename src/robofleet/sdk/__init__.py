"""What robot processes import: the run context the agent gives them, stop requests and checkpoints where they
may pause, a log handler that ships their records to the orchestrator without ever blocking or crashing the
robot, and work queues (`for item in queue("invoices"): with item: ...`)."""

from robofleet.sdk.checkpoints import checkpoint
from robofleet.sdk.connection import Connection
from robofleet.sdk.errors import BusinessError, ItemRefused, NotInARun, OrchestratorUnreachable, Refused, SdkError
from robofleet.sdk.log_handler import RobofleetLogHandler
from robofleet.sdk.queues import Added, Item, NewItem, Queue, Refusal, queue
from robofleet.sdk.run import context, install, should_stop, wait

__all__ = [
    "Added",
    "BusinessError",
    "Connection",
    "Item",
    "ItemRefused",
    "NewItem",
    "NotInARun",
    "OrchestratorUnreachable",
    "Queue",
    "Refusal",
    "Refused",
    "RobofleetLogHandler",
    "SdkError",
    "checkpoint",
    "context",
    "install",
    "queue",
    "should_stop",
    "wait",
]
