"""The case page's words (issue 12, defects 6 and 7): a closed case is 「終結」 (Closed); consent
not recorded is 「未記録」 in the facts and in the consent section alike; a task the workflow
brought up is 「システム」's in the timeline and has no actor in `GET /api/cases/<id>`, even in
history written before that rule."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FrozenClock
from engine.env import Env
from engine.models import CaseEvent
from engine.status import EventKind
from tests.conftest import Personas
from tests.engine.support import ASSESSMENT, CLOSURE, Driver, intake, meeting, monitoring, plan


@pytest.fixture
def driver(session_factory: sessionmaker[Session], env: Env, clock: FrozenClock) -> Driver:
    return Driver(session_factory, env, clock)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _closed_case(driver: Driver, p: Personas) -> str:
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    driver.complete_step(p.secretariat, case_id, "assessment", ASSESSMENT)
    driver.complete_step(p.secretariat, case_id, "plan", plan("P7D"))
    driver.complete_step(p.secretariat, case_id, "meeting", meeting())
    driver.clock.advance(days=8)
    assert driver.fire() == 1
    driver.complete_step(p.secretariat, case_id, "monitoring", monitoring("close"))
    driver.complete_step(p.secretariat, case_id, "closure", CLOSURE)
    return case_id


def test_a_closed_case_is_shown_as_closed(staff, driver: Driver, personas: Personas) -> None:  # noqa: ANN001
    case_id = _closed_case(driver, personas)
    html = staff("secretariat").get(f"/cases/{case_id}").get_data(as_text=True)
    assert '<span class="status status--completed">終結</span>' in html
    assert "終了" not in _text(html[html.index("<main"):])
    assert "案件が終結" in _text(html)
    english = staff("secretariat")
    english.post("/lang", {"lang": "en"})
    assert '<span class="status status--completed">Closed</span>' in english.get(f"/cases/{case_id}").get_data(as_text=True)


def test_consent_not_recorded_reads_the_same_in_both_places(staff, driver: Driver, personas: Personas) -> None:  # noqa: ANN001
    case_id = driver.start(personas.caseworker)
    html = staff("caseworker").get(f"/cases/{case_id}").get_data(as_text=True)
    facts = _text(html[html.index('id="facts-title"'):html.index('id="open-title"')])
    consent = _text(html[html.index('id="consent-title"'):])
    assert "本人同意 未記録" in facts and "—" not in facts
    assert consent.split("本人同意", 1)[1].split()[0] == "未記録"


def test_a_task_the_workflow_brings_up_is_the_systems(staff, api, driver: Driver, personas: Personas,  # noqa: ANN001
                                                     session) -> None:
    p = personas
    case_id = driver.start(p.caseworker)
    driver.clock.advance(timedelta(minutes=5))
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    # A row as written before the rule: credited to whoever completed the step before.
    session.execute(update(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.kind == EventKind.TASK_CREATED,
                                            CaseEvent.step == "assessment").values(actor_id=p.caseworker.id))
    session.commit()
    history = api("caseworker").get(f"/api/cases/{case_id}").json["history"]
    assert [(e["kind"], e["step"], e["actor"]) for e in history] == [
        ("case_started", None, "hokatsu.sato"), ("task_created", "intake", None),
        ("task_completed", "intake", "hokatsu.sato"), ("task_created", "assessment", None)]
    html = staff("caseworker").get(f"/cases/{case_id}").get_data(as_text=True)
    items = re.findall(r'data-kind="(\w+)".*?class="timeline__actor">([^<]*)<', html, re.S)
    assert items == [("task_created", "システム"), ("task_completed", "佐藤 花子"), ("task_created", "システム"),
                     ("case_started", "佐藤 花子")]
