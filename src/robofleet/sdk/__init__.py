"""What robot processes import: the run context the agent gives them, stop requests and checkpoints where they
may pause, and a log handler that ships their records to the orchestrator without ever blocking or crashing the
robot."""

from robofleet.sdk.checkpoints import checkpoint
from robofleet.sdk.log_handler import RobofleetLogHandler
from robofleet.sdk.run import context, install, should_stop, wait

__all__ = ["RobofleetLogHandler", "checkpoint", "context", "install", "should_stop", "wait"]
