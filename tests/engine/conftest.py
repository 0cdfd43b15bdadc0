"""Fixtures of the engine tests."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FrozenClock
from engine.env import Env
from tests.engine.support import Driver


@pytest.fixture
def driver(session_factory: sessionmaker[Session], env: Env, clock: FrozenClock) -> Driver:
    return Driver(session_factory, env, clock)
