"""Each monitoring round starts empty, with the previous round shown beside the form (issue 12,
defect 1)."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FrozenClock
from engine.env import Env
from tests.conftest import Personas
from tests.engine.support import ASSESSMENT, Driver, intake, meeting, plan


def _second_round(driver: Driver, p: Personas) -> tuple[str, str]:
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    driver.complete_step(p.secretariat, case_id, "assessment", ASSESSMENT)
    driver.complete_step(p.secretariat, case_id, "plan", plan("P14D"))
    driver.complete_step(p.secretariat, case_id, "meeting", meeting())
    driver.clock.advance(days=15)
    driver.fire()
    driver.complete_step(p.secretariat, case_id, "monitoring",
                         {"next": "continue", "progress": "母は週2回デイサービスに通所", "new_issues": "家賃の滞納"})
    driver.clock.advance(days=15)
    driver.fire()
    return case_id, driver.task(case_id, "monitoring").id


def test_the_next_monitoring_round_starts_empty(session_factory: sessionmaker[Session], env: Env,
                                                clock: FrozenClock, personas: Personas, api) -> None:  # noqa: ANN001
    driver = Driver(session_factory, env, clock)
    _, task_id = _second_round(driver, personas)
    r = api("secretariat").get(f"/api/tasks/{task_id}")
    assert r.status_code == 200
    assert not {"next", "progress", "new_issues"} & set(r.get_json()["data"])


def test_the_previous_round_is_shown_beside_the_empty_form(session_factory: sessionmaker[Session], env: Env,
                                                           clock: FrozenClock, personas: Personas,
                                                           staff) -> None:  # noqa: ANN001
    driver = Driver(session_factory, env, clock)
    _, task_id = _second_round(driver, personas)
    page = staff("secretariat").get(f"/tasks/{task_id}").get_data(as_text=True)
    form, _, aside = page.partition('<aside class="task-aside"')
    assert "checked" not in re.sub(r"<input[^>]*type=\"hidden\"[^>]*>", "", form.split('class="stack schema-form"', 1)[1])
    assert "母は週2回デイサービスに通所" not in form and "家賃の滞納" not in form
    previous = aside.split('class="card previous-round"', 1)[1].split("</section>", 1)[0]
    assert "前回の記録" in previous
    assert "母は週2回デイサービスに通所" in previous and "家賃の滞納" in previous
    assert "モニタリングを継続" in previous


def test_the_first_round_has_no_previous_round(session_factory: sessionmaker[Session], env: Env,
                                               clock: FrozenClock, personas: Personas,
                                               staff) -> None:  # noqa: ANN001
    driver = Driver(session_factory, env, clock)
    p = personas
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    page = staff("secretariat").get(f"/tasks/{driver.task(case_id, 'assessment').id}").get_data(as_text=True)
    assert "previous-round" not in page
