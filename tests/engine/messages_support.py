"""The message test diagrams (tests/engine/data/messages) and how to deploy them."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FrozenClock
from engine.env import Env
from engine.settings import ROOT
from engine.workflow import specs

MESSAGE_DIAGRAMS = Path(__file__).parent / "data" / "messages"
REFERRAL = "test_referral_process"  # starts on message test_referral; waits for test_reply, test_ack, a person, ...
WAITING = "test_waiting_process"  # opened by a person; waits for test_result correlated by its household_ref


def deploy_message_diagrams(factory: sessionmaker[Session], env: Env, clock: FrozenClock) -> None:
    with factory() as s:
        specs.deploy(s, specs.read_sources(MESSAGE_DIAGRAMS, ROOT / "forms"), env.org, clock.now())
