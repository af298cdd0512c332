"""Logs: one store for the orchestrator's, the agents' and the robots' lines; search, live tail, retention."""
