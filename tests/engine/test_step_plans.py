"""A step's reads of its own case's rows go by an index that starts with the case, whatever else
the database holds: on SQLite also without statistics (no ANALYZE has run on a production
database), where the planner chooses by the indexes' shape alone. How fast a step is, is
measured by `python -m bench`, not asserted here."""

from __future__ import annotations

import re

import pytest

from engine.casework import cases, role_holders
from engine.models import Case, User
from tests.conftest import Personas
from tests.engine.support import ASSESSMENT, Driver, intake, monitoring, plan, statements_sent, waiting_case

_BY_CASE = re.compile(r"\bcase_id (= \?|IN \()")


def reads_by_case(driver: Driver, action) -> list[tuple[str, tuple]]:  # noqa: ANN001
    """The SELECTs `action` sent that test a case_id, with their parameters."""
    return [(statement, tuple(parameters)) for statement, parameters, many in statements_sent(driver, action)
            if not many and statement.lstrip().upper().startswith("SELECT") and _BY_CASE.search(statement)]


def read_case_page(driver: Driver, case_id: str) -> None:
    """What the case's page lists of it besides its row: open tasks, then pending timers soonest first."""
    with driver.factory() as s:
        case = s.get(Case, case_id)
        cases.case_open_tasks(s, case)
        cases.case_timers(s, case)


def assert_by_case(driver: Driver, reads: list[tuple[str, tuple]]) -> None:
    """Each read's plan looks its rows up by the case (and by the state or status it tests)."""
    raw = driver.factory.kw["bind"].raw_connection()
    try:
        for statement, parameters in reads:
            plan = "\n".join(row[3] for row in raw.cursor().execute("EXPLAIN QUERY PLAN " + statement, parameters))
            assert "(case_id=?" in plan, (statement, plan)
            if re.search(r"\b(state|status) = \?", statement):
                # the state or status is fixed by the same index, not tested row by row
                assert re.search(r"\(case_id=\? AND (state|status)=\?", plan), (statement, plan)
            assert not re.search(r"^SCAN (?!page|queue|anon)", plan, re.M), (statement, plan)
    finally:
        raw.close()


def sqlite_only(driver: Driver) -> None:
    if driver.factory.kw["bind"].dialect.name != "sqlite":
        pytest.skip("PostgreSQL plans by its statistics, which ANALYZE keeps (autovacuum)")


def test_a_step_and_the_case_page_read_the_case_by_its_index(driver: Driver, personas: Personas) -> None:
    sqlite_only(driver)
    for _ in range(3):  # other cases' open tasks and pending timers, which a read by the case must not touch
        waiting_case(driver, personas)
    case_id = waiting_case(driver, personas)
    driver.clock.advance(days=15)
    reads = reads_by_case(driver, driver.fire)
    reads += reads_by_case(driver, lambda: driver.complete_step(personas.secretariat, case_id, "monitoring",
                                                                monitoring("continue")))
    reads += reads_by_case(driver, lambda: read_case_page(driver, case_id))
    assert len(reads) >= 7
    assert_by_case(driver, reads)


def test_the_roles_a_group_holds_are_read_by_their_cases(driver: Driver, personas: Personas) -> None:
    sqlite_only(driver)
    p = personas
    for _ in range(3):
        waiting_case(driver, p)
    held = []
    for _ in range(2):  # two cases: their reads are by a list of cases, not one
        case_id = driver.start(p.caseworker)
        driver.complete_step(p.caseworker, case_id, "intake", intake())
        driver.complete_step(p.secretariat, case_id, "assessment", ASSESSMENT)
        driver.complete_step(p.secretariat, case_id, "plan", plan("P14D"))
        driver.complete_step(p.secretariat, case_id, "meeting", {
            "held_on": "2026-04-20", "participants": ["choju-anshin"], "roles": [{"group": "choju-anshin", "role": "見守り"}]})
        held.append(case_id)

    def roles_of(who: User) -> list[role_holders.HeldRole]:
        with driver.factory() as s:
            return role_holders.held_roles(s, driver.env, driver.user(s, who), driver.clock.now())

    found: list[list[role_holders.HeldRole]] = []
    reads = reads_by_case(driver, lambda: found.append(roles_of(p.elder_care)))
    assert sorted(r.case_id for r in found[0]) == sorted(held)
    assert all(r.current_steps == ["モニタリング期日"] for r in found[0])
    assert any("FROM timers" in statement for statement, _ in reads)
    assert_by_case(driver, reads)
    # A group holding no role reads no case's tasks or timers at all.
    assert reads_by_case(driver, lambda: found.append(roles_of(p.outsider))) == [] and found[1] == []
