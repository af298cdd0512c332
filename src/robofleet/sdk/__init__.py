"""What robot processes import: the run context the agent gives them, and a log handler that ships their
records to the orchestrator without ever blocking or crashing the robot."""

from robofleet.sdk.log_handler import RobofleetLogHandler

__all__ = ["RobofleetLogHandler"]
