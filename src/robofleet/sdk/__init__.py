"""What robot processes import: the run context the agent gives them, stop requests and checkpoints where they
may pause, a log handler that ships their records to the orchestrator without ever blocking or crashing the
robot, work queues (`for item in queue("invoices"): with item: ...`), and the state of the graphical session the
robot works in (`session_state()`)."""

from robofleet.sdk.checkpoints import checkpoint
from robofleet.sdk.connection import Connection
from robofleet.sdk.errors import BusinessError, ItemRefused, NotInARun, OrchestratorUnreachable, Refused, SdkError
from robofleet.sdk.log_handler import RobofleetLogHandler
from robofleet.sdk.queues import Added, Item, NewItem, Queue, Refusal, queue
from robofleet.sdk.run import context, install, should_stop, wait
from robofleet.sdk.session import SessionState, session_state

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
    "SessionState",
    "checkpoint",
    "context",
    "install",
    "queue",
    "session_state",
    "should_stop",
    "wait",
]
