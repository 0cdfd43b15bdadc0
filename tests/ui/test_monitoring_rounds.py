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


def test_role_holders_see_their_roles_and_the_secretariat_sees_whose_report_is_awaited(
        session_factory: sessionmaker[Session], env: Env, clock: FrozenClock, personas: Personas,
        staff) -> None:  # noqa: ANN001
    driver = Driver(session_factory, env, clock)
    p = personas
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    driver.complete_step(p.secretariat, case_id, "assessment", ASSESSMENT)
    driver.complete_step(p.secretariat, case_id, "plan", plan("P14D"))
    driver.complete_step(p.secretariat, case_id, "meeting",
                         {"held_on": "2026-04-20", "participants": ["choju-anshin", "kurashi-shien"],
                          "roles": [{"group": "choju-anshin", "role": "母の介護サービスの調整"},
                                    {"group": "kurashi-shien", "role": "息子の就労相談"}]})
    clock.advance(days=15)
    driver.fire()
    elder = staff("elder_care")
    queue = elder.get("/").get_data(as_text=True)
    section = queue.split('id="held-roles"', 1)[1].split("</section>", 1)[0]
    assert "担当している役割" in section and "母の介護サービスの調整" in section and "息子の就労相談" not in section
    report = next(t for t in driver.open_tasks(case_id) if t.step == "role_report" and t.group_id == "choju-anshin")
    assert f"/tasks/{report.id}" in section
    page = elder.get(f"/tasks/{report.id}").get_data(as_text=True)
    assert "この機関の役割" in page and "母の介護サービスの調整" in page
    r = elder.post(f"/tasks/{report.id}", {"status": "concern", "report": "通所が減っている", "ui-action": "complete"})
    assert r.status_code == 302
    monitoring_page = staff("secretariat").get(f"/tasks/{driver.task(case_id, 'monitoring').id}").get_data(as_text=True)
    reports = monitoring_page.split('class="round-reports"', 1)[1].split("</section>", 1)[0]
    assert "報告待ち" in reports and "くらし支援課" in reports.split("報告待ち", 1)[1].split("。", 1)[0]
    assert "通所が減っている" in reports
