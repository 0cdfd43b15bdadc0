"""Fixtures of the report tests: the engine driver with the message test diagrams deployed
(a case that waits for a message), and a supervisor who is not of a case-wide group."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FrozenClock
from engine.env import Env
from engine.models import User
from engine.security import users
from tests.conftest import Personas
from tests.engine.messages_support import deploy_message_diagrams
from tests.engine.support import Driver


@pytest.fixture
def driver(session_factory: sessionmaker[Session], env: Env, clock: FrozenClock) -> Driver:
    deploy_message_diagrams(session_factory, env, clock)
    return Driver(session_factory, env, clock)


@pytest.fixture
def hokatsu_supervisor(session: Session, clock: FrozenClock, personas: Personas) -> User:
    """A supervisor at the 地域包括支援センター: sees the cases it referred, not the others."""
    user = users.add_user(session, "hokatsu.mori", ["hokatsu-center"], ["staff", "supervisor"], clock.now(), "森 係長")
    session.commit()
    return user
