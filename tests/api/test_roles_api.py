"""GET /api/roles: the roles the caller's groups hold (issue 12)."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FrozenClock
from engine.env import Env
from tests.conftest import Personas
from tests.engine.support import ASSESSMENT, Driver, intake, plan


def test_a_role_holder_lists_its_roles_and_the_report_awaited(session_factory: sessionmaker[Session], env: Env,
                                                              clock: FrozenClock, personas: Personas,
                                                              api) -> None:  # noqa: ANN001
    driver = Driver(session_factory, env, clock)
    p = personas
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    driver.complete_step(p.secretariat, case_id, "assessment", ASSESSMENT)
    driver.complete_step(p.secretariat, case_id, "plan", plan("2週間"))
    driver.complete_step(p.secretariat, case_id, "meeting",
                         {"held_on": "2026-04-20", "participants": ["choju-anshin"],
                          "roles": [{"group": "choju-anshin", "role": "母の介護サービスの調整"}]})
    r = api("elder_care").get("/api/roles")
    assert r.status_code == 200
    (role,) = r.json
    assert (role["case_id"], role["group"], role["role"]) == (case_id, "choju-anshin", "母の介護サービスの調整")
    assert role["current_steps"] == ["モニタリング期日"] and role["report_task"] is None
    clock.advance(days=15)
    driver.fire()
    (role,) = api("elder_care").get("/api/roles").json
    report = driver.task(case_id, "role_report")
    assert role["current_steps"] == ["5. モニタリング"]
    assert role["report_task"]["id"] == report.id
    # The task is the role holder's to open and complete through the task API.
    assert api("elder_care").get(f"/api/tasks/{report.id}").status_code == 200
    done = api("elder_care").post(f"/api/tasks/{report.id}/complete",
                                  json={"data": {"status": "on_track", "report": "週2回通所"}})
    assert done.status_code == 200, done.json
    (role,) = api("elder_care").get("/api/roles").json
    assert role["report_task"] is None
    # Groups holding no role list none; the caller must be signed in.
    assert api("outsider").get("/api/roles").json == []
    assert api("caseworker").get("/api/roles").json == []
