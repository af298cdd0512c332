"""robofleet: an orchestrator for fleets of software robots."""

__version__ = "0.1.0"
