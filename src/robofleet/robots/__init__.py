"""Robots and runs: definitions, and the lifecycle of each execution on an agent."""
