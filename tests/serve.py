"""Kept for test files written before the kit: `ServeProcess` now lives in tests/kit/serve.py, and tests start it
with the `start_serve` fixture (tests/conftest.py), which always stops it."""

from tests.kit.serve import ServeProcess

__all__ = ["ServeProcess"]
