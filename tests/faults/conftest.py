"""Fixtures of the fault tests: the engine tests' driver."""

from __future__ import annotations

from tests.engine.conftest import driver

__all__ = ["driver"]
