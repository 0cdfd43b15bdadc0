"""The heatmap's numbers per step on a known set of tasks, and the workload per group and
worker; both leave out cases the reader may not see."""

from __future__ import annotations

import statistics
from datetime import timedelta

import pytest

from engine.casework import cases
from engine.errors import Forbidden, Invalid
from engine.models import User
from engine.reports import heatmap, workload
from tests.conftest import Personas
from tests.engine.support import Driver, intake


def heat(driver: Driver, who: User, process: str = "multi_agency", version=None, start=None, end=None):  # noqa: ANN001, ANN201
    with driver.factory() as s:
        return heatmap.heatmap(s, driver.env, s.get(User, who.id), driver.clock.now(), process, version, start, end)


def load(driver: Driver, who: User) -> dict:
    with driver.factory() as s:
        return workload.workload(s, driver.env, s.get(User, who.id), driver.clock.now())


def by_step(result) -> dict:  # noqa: ANN001
    return {s.step: s for s in result.steps}


def test_one_row_per_user_task_in_diagram_order(driver: Driver, personas: Personas) -> None:
    steps = [s.step for s in heat(driver, personas.supervisor).steps]
    assert steps[0] == "intake" and set(steps) == {"intake", "advice", "advice_received", "assessment", "plan",
                                                   "meeting", "monitoring", "role_report", "closure"}


def test_median_and_p90_of_time_spent_on_completed_tasks(driver: Driver, personas: Personas) -> None:
    hours = [5, 30, 2, 48, 12, 100, 7]
    start = driver.clock.now()
    for h in hours:
        driver.clock.set(start)
        case_id = driver.start(personas.caseworker)
        driver.clock.set(start + timedelta(hours=h))
        driver.complete_step(personas.caseworker, case_id, "intake", intake())
    driver.clock.set(start + timedelta(hours=200))
    still_open = driver.start(personas.caseworker)
    row = by_step(heat(driver, personas.supervisor))["intake"]
    # Independently: statistics' "inclusive" method is linear interpolation between closest ranks.
    expected_p90 = statistics.quantiles(hours, n=10, method="inclusive")[8]
    assert row.median_hours == statistics.median(hours) == 12
    assert row.p90_hours == pytest.approx(expected_p90, abs=0.01)
    assert (row.entered, row.open) == (len(hours) + 1, 1)
    assessment = by_step(heat(driver, personas.supervisor))["assessment"]
    assert (assessment.open, assessment.median_hours, assessment.p90_hours) == (len(hours), None, None)
    assert still_open


def test_period_limits_the_times_and_entered(driver: Driver, personas: Personas) -> None:
    start = driver.clock.now()
    early = driver.start(personas.caseworker)
    driver.clock.advance(hours=10)
    driver.complete_step(personas.caseworker, early, "intake", intake())
    driver.clock.set(start + timedelta(days=40))
    late = driver.start(personas.caseworker)
    driver.clock.advance(hours=2)
    driver.complete_step(personas.caseworker, late, "intake", intake())
    recent = by_step(heat(driver, personas.supervisor))["intake"]  # the last 30 days
    assert (recent.entered, recent.median_hours) == (1, 2)
    whole = by_step(heat(driver, personas.supervisor, start="2026-03-31", end="2026-05-31"))["intake"]
    assert (whole.entered, whole.median_hours) == (2, 6)


def test_open_and_stuck_now(driver: Driver, personas: Personas) -> None:
    fresh = driver.start(personas.caseworker)
    driver.clock.advance(days=4)
    driver.start(personas.caseworker)
    row = by_step(heat(driver, personas.supervisor))["intake"]
    assert (row.open, row.stuck) == (2, 1)
    assert fresh


def test_bad_parameters_name_the_parameter(driver: Driver, personas: Personas) -> None:
    for kwargs, field in [({"process": ""}, "process"), ({"process": "nope"}, "process"), ({"version": 99}, "version"),
                          ({"start": "yesterday"}, "from"), ({"end": "2026-13-01"}, "to"),
                          ({"start": "2026-05-01", "end": "2026-04-01"}, "from")]:
        with pytest.raises(Invalid) as err:
            heat(driver, personas.supervisor, **kwargs)
        assert field in (err.value.fields or {})


def test_one_version_or_all(driver: Driver, personas: Personas) -> None:
    driver.start(personas.caseworker)
    result = heat(driver, personas.supervisor, version=1)
    assert result.version == 1 and by_step(result)["intake"].open == 1
    assert heat(driver, personas.supervisor).versions == [1]


def test_reports_are_refused_to_staff(driver: Driver, personas: Personas) -> None:
    with pytest.raises(Forbidden):
        heat(driver, personas.caseworker)
    with pytest.raises(Forbidden):
        load(driver, personas.secretariat)


def test_heatmap_counts_leave_hidden_cases_out(driver: Driver, personas: Personas, hokatsu_supervisor: User) -> None:
    driver.start(personas.caseworker)
    driver.start(personas.outsider)
    assert by_step(heat(driver, personas.supervisor))["intake"].open == 2
    assert by_step(heat(driver, hokatsu_supervisor))["intake"].open == 1


def test_workload_per_group_and_worker(driver: Driver, personas: Personas, hokatsu_supervisor: User) -> None:
    a, b, c = (driver.start(personas.caseworker) for _ in range(3))
    with driver.factory() as s:
        cases.claim_task(s, driver.env, s.get(User, personas.caseworker.id), driver.task(a, "intake").id,
                         driver.clock.now())
    driver.complete_step(personas.caseworker, b, "intake", intake())  # → assessment at the secretariat
    driver.start(personas.outsider)
    driver.clock.advance(days=4)  # every intake still open is past its limit (P3D)
    result = load(driver, personas.supervisor)
    groups = {r.key: r for r in result["groups"]}
    hokatsu = groups["hokatsu-center"]
    assert (hokatsu.open, hokatsu.overdue, hokatsu.claimed, hokatsu.completed_this_month) == (2, 2, 1, 1)
    assert (groups["secretariat"].open, groups["secretariat"].overdue) == (1, 0)
    assert groups["wakamono-sodan"].open == 1
    sato = {r.key: r for r in result["users"]}["hokatsu.sato"]
    assert (sato.open, sato.overdue, sato.claimed, sato.completed_this_month) == (1, 1, 1, 1)
    assert sato.name == "佐藤 花子" and hokatsu.name == "地域包括支援センター"
    hidden = {r.key for r in load(driver, hokatsu_supervisor)["groups"]}
    assert "wakamono-sodan" not in hidden and "hokatsu-center" in hidden
    assert c


def test_completed_this_month_is_japans_month(driver: Driver, personas: Personas) -> None:
    # 2026-04-30 15:30 UTC is already 1 May in Japan.
    driver.clock.set(driver.clock.now().replace(day=30, hour=15, minute=30))
    case_id = driver.start(personas.caseworker)
    driver.complete_step(personas.caseworker, case_id, "intake", intake())
    assert {r.key: r for r in load(driver, personas.supervisor)["groups"]}["hokatsu-center"].completed_this_month == 1
    driver.clock.advance(days=31)  # June in Japan: nothing left to count for the group
    assert "hokatsu-center" not in {r.key for r in load(driver, personas.supervisor)["groups"]}
