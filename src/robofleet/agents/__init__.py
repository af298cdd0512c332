"""Agents: the processes on robot machines that start, signal and watch robot processes for the orchestrator."""
