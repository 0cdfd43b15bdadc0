"""The stuck-case report: each reason found just after its threshold and not just before,
filters, paging and sorting, and only the cases the reader may see."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.casework import cases, writes
from engine.errors import Forbidden, Invalid
from engine.models import CaseEvent, HumanTask, User
from engine.reports import stuck
from engine.security import users
from engine.settings import StuckThresholds, load_stuck_thresholds
from tests.conftest import Personas
from tests.engine.messages_support import WAITING
from tests.engine.support import ASSESSMENT, ROLE_REPORT, Driver, intake, meeting, plan

SECOND = timedelta(seconds=1)


def report(driver: Driver, who: User, **filters) -> stuck.Page:  # noqa: ANN003
    sort, limit, offset = filters.pop("sort", "-age"), filters.pop("limit", 50), filters.pop("offset", 0)
    with driver.factory() as s:
        return stuck.query(s, driver.env, s.get(User, who.id), driver.clock.now(), stuck.check_filters(**filters),
                           sort=sort, limit=limit, offset=offset)


def reasons(driver: Driver, who: User, case_id: str) -> set[str]:
    return {r.reason for r in report(driver, who, limit=500).items if r.case_id == case_id}


def claim(driver: Driver, who: User, case_id: str, step: str) -> None:
    with driver.factory() as s:
        cases.claim_task(s, driver.env, s.get(User, who.id), driver.task(case_id, step).id, driver.clock.now())


def test_default_thresholds_come_from_config() -> None:
    from engine.settings import ROOT

    assert load_stuck_thresholds(ROOT / "config") == StuckThresholds(3, 7, 30, 14)


def test_overdue_from_the_steps_due_time_not_before(driver: Driver, personas: Personas) -> None:
    case_id = driver.start(personas.caseworker)
    claim(driver, personas.caseworker, case_id, "intake")  # so `unassigned` does not also apply
    due = driver.task(case_id, "intake").due_at
    driver.clock.set(due - SECOND)
    assert reasons(driver, personas.supervisor, case_id) == set()
    driver.clock.set(due + SECOND)
    (row,) = report(driver, personas.supervisor, reason="overdue").items
    assert (row.case_id, row.step, row.step_name, row.since, row.age_days) == (case_id, "intake", "1. 相談・調整", due, 0)
    assert (row.group, row.assignee, row.process, row.version) == ("hokatsu-center", "hokatsu.sato", "multi_agency", 1)
    driver.clock.set(due + timedelta(days=8))
    assert report(driver, personas.supervisor, reason="overdue").items[0].age_days == 8


def test_unassigned_after_n_days_unclaimed_and_not_once_claimed(driver: Driver, personas: Personas) -> None:
    opened = driver.clock.now()
    waiting_case, claimed_case = driver.start(personas.caseworker), driver.start(personas.caseworker)
    claim(driver, personas.caseworker, claimed_case, "intake")
    driver.clock.set(opened + timedelta(days=3) - SECOND)
    assert "unassigned" not in reasons(driver, personas.supervisor, waiting_case)
    driver.clock.set(opened + timedelta(days=3) + SECOND)
    rows = report(driver, personas.supervisor, reason="unassigned").items
    assert [(r.case_id, r.since, r.assignee) for r in rows] == [(waiting_case, opened, None)]


def to_monitoring(driver: Driver, personas: Personas) -> str:
    case_id = driver.start(personas.caseworker)
    driver.complete_step(personas.caseworker, case_id, "intake", intake())
    driver.complete_step(personas.secretariat, case_id, "assessment", ASSESSMENT)
    driver.complete_step(personas.secretariat, case_id, "plan", plan("P14D"))
    driver.complete_step(personas.secretariat, case_id, "meeting", meeting())
    driver.clock.advance(days=14, seconds=1)
    assert driver.fire() == 1
    return case_id


def test_monitoring_overdue_n_days_after_its_timer_fired(driver: Driver, personas: Personas) -> None:
    case_id = to_monitoring(driver, personas)
    fired = driver.clock.now()
    claim(driver, personas.secretariat, case_id, "monitoring")
    # The role holder (くらし支援課) reports at once, so only the monitoring itself can be late.
    with driver.factory() as s:
        holder = users.add_user(s, "kurashi.mori", ["kurashi-shien"], ["staff"], fired, "森 次郎")
        s.commit()
    driver.complete_step(holder, case_id, "role_report", ROLE_REPORT)
    driver.clock.set(fired + timedelta(days=7) - SECOND)
    assert reasons(driver, personas.supervisor, case_id) == set()
    driver.clock.set(fired + timedelta(days=7) + SECOND)
    # The monitoring task's own limit (P7D) passed at the same moment: both are named, once each.
    assert reasons(driver, personas.supervisor, case_id) == {"monitoring_overdue", "overdue"}
    (row,) = report(driver, personas.supervisor, reason="monitoring_overdue").items
    assert (row.step, row.since) == ("monitoring", fired)


def test_monitoring_step_is_the_one_the_diagram_marks(driver: Driver, personas: Personas) -> None:
    with driver.factory() as s:
        assert stuck.monitoring_steps(s, driver.env) == {("multi_agency", "monitoring")}


def test_idle_after_n_days_without_history(driver: Driver, personas: Personas) -> None:
    quiet = driver.start(personas.caseworker)
    busy = driver.start(personas.caseworker)
    started = driver.clock.now()
    driver.clock.advance(days=20)
    claim(driver, personas.caseworker, busy, "intake")
    driver.clock.set(started + timedelta(days=30) - SECOND)
    assert "idle" not in reasons(driver, personas.supervisor, quiet)
    driver.clock.set(started + timedelta(days=30) + SECOND)
    rows = report(driver, personas.supervisor, reason="idle").items
    assert [(r.case_id, r.since, r.age_days, r.step) for r in rows] == [(quiet, started, 30, None)]


def test_last_event_at_follows_the_newest_history_row(driver: Driver, personas: Personas) -> None:
    case_id = driver.start(personas.caseworker)
    driver.clock.advance(days=2)
    claim(driver, personas.caseworker, case_id, "intake")
    with driver.factory() as s:
        newest = s.scalar(select(CaseEvent.at).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id.desc()))
    assert driver.case(case_id).last_event_at == newest == driver.clock.now()


def test_error_at_once_with_its_text(driver: Driver, personas: Personas) -> None:
    broken, fine = driver.start(personas.caseworker), driver.start(personas.caseworker)
    with driver.factory() as s:
        writes.mark_error(s, broken, "スクリプトが失敗しました: boom", driver.clock.now())
    rows = report(driver, personas.supervisor, reason="error").items
    assert [(r.case_id, r.detail, r.age_days) for r in rows] == [(broken, "スクリプトが失敗しました: boom", 0)]
    assert reasons(driver, personas.supervisor, fine) == set()


def test_waiting_for_a_message_after_n_days(driver: Driver, personas: Personas) -> None:
    started = driver.clock.now()
    case_id = driver.start(personas.secretariat, WAITING, {"household_ref": "H-1"}, "secretariat")
    driver.clock.set(started + timedelta(days=14) - SECOND)
    assert "waiting" not in reasons(driver, personas.supervisor, case_id)
    driver.clock.set(started + timedelta(days=14) + SECOND)
    (row,) = report(driver, personas.supervisor, reason="waiting").items
    assert (row.case_id, row.since, row.detail) == (case_id, started, "test_result")
    assert row.step is not None and row.step_name


def aged(driver: Driver, personas: Personas, days: list[int]) -> list[str]:
    """Cases whose intake task went overdue `d` days before now, one per d (claimed, so only
    `overdue` applies... until `idle` does)."""
    start = driver.clock.now()
    ids = []
    latest = max(days)
    for d in days:
        driver.clock.set(start + timedelta(days=latest - d))
        ids.append(driver.start(personas.caseworker))
        claim(driver, personas.caseworker, ids[-1], "intake")
    driver.clock.set(start + timedelta(days=latest + 3, seconds=1))
    return ids


def test_sorted_oldest_first_or_newest_first_and_paged(driver: Driver, personas: Personas) -> None:
    ids = aged(driver, personas, [1, 10, 5, 40])
    oldest_first = [ids[3], ids[1], ids[2], ids[0]]
    page = report(driver, personas.supervisor, reason="overdue")
    assert [r.case_id for r in page.items] == oldest_first and page.total == 4
    assert [r.age_days for r in page.items] == [40, 10, 5, 1]
    assert [r.case_id for r in report(driver, personas.supervisor, reason="overdue", sort="age").items] == \
        oldest_first[::-1]
    second = report(driver, personas.supervisor, reason="overdue", limit=2, offset=2)
    assert [r.case_id for r in second.items] == oldest_first[2:] and second.total == 4


def test_age_bucket_and_min_age_filters(driver: Driver, personas: Personas) -> None:
    ids = aged(driver, personas, [6, 7, 29, 30, 90])
    def ages(**f) -> list[int]:  # noqa: ANN003
        return sorted(r.age_days for r in report(driver, personas.supervisor, reason="overdue", **f).items)
    assert ages(age="lt7") == [6]
    assert ages(age="7-30") == [7, 29]
    assert ages(age="30-90") == [30]
    assert ages(age="gt90") == [90]
    assert ages(min_age_days=29) == [29, 30, 90]
    assert len(ids) == 5


def test_process_step_and_group_filters(driver: Driver, personas: Personas) -> None:
    ma = driver.start(personas.caseworker)
    em = driver.start(personas.caseworker, "emergency", {"summary": "独居高齢者宅から異臭"})
    driver.clock.advance(days=4)
    assert {r.case_id for r in report(driver, personas.supervisor, process="multi_agency").items} == {ma}
    assert {r.case_id for r in report(driver, personas.supervisor, process="emergency").items} == {em}
    assert {r.case_id for r in report(driver, personas.supervisor, step="intake").items} == {ma}
    assert report(driver, personas.supervisor, group="hokatsu-center").total >= 1
    assert report(driver, personas.supervisor, group="jutaku").total == 0
    assert report(driver, personas.supervisor, step="no_such_step").items == []


def test_bad_filters_name_the_parameter(driver: Driver, personas: Personas) -> None:
    for kwargs, field in [({"reason": "late"}, "reason"), ({"age": "old"}, "age"), ({"min_age_days": -1}, "min_age_days"),
                          ({"sort": "since"}, "sort"), ({"limit": 0}, "limit"), ({"limit": 501}, "limit"),
                          ({"offset": -1}, "offset")]:
        with pytest.raises(Invalid) as err:
            report(driver, personas.supervisor, **kwargs)
        assert field in (err.value.fields or {})


def test_only_supervisors_the_lead_and_admins_may_read(driver: Driver, personas: Personas) -> None:
    for who in (personas.caseworker, personas.secretariat, personas.outsider):
        with pytest.raises(Forbidden):
            report(driver, who)
    for who in (personas.supervisor, personas.lead, personas.admin):
        report(driver, who)


def test_a_supervisor_sees_rows_and_counts_of_visible_cases_only(driver: Driver, personas: Personas,
                                                                 hokatsu_supervisor: User) -> None:
    mine = driver.start(personas.caseworker)
    theirs = driver.start(personas.outsider)
    driver.clock.advance(days=4)
    assert {r.case_id for r in report(driver, personas.supervisor).items} == {mine, theirs}
    page = report(driver, hokatsu_supervisor)
    assert {r.case_id for r in page.items} == {mine} and page.total == 2  # overdue and unassigned
    with driver.factory() as s:
        counts = stuck.counts(s, driver.env, s.get(User, hokatsu_supervisor.id), driver.clock.now())
        everyone = stuck.counts(s, driver.env, s.get(User, personas.supervisor.id), driver.clock.now())
    assert counts["by_reason"] == {"overdue": 1, "unassigned": 1, "monitoring_overdue": 0, "idle": 0, "error": 0,
                                   "waiting": 0}
    assert (counts["rows"], counts["cases"], counts["by_age"]["lt7"]) == (2, 1, 2)
    assert (everyone["rows"], everyone["cases"]) == (4, 2)


def test_a_page_read_is_on_the_audit_trail(driver: Driver, personas: Personas) -> None:
    from engine.models import AuditRecord

    case_id = driver.start(personas.caseworker)
    driver.clock.advance(days=4)
    with driver.factory() as s:
        stuck.stuck_page(s, driver.env, s.get(User, personas.supervisor.id), driver.clock.now(), stuck.Filters())
        record = s.scalars(select(AuditRecord).order_by(AuditRecord.seq.desc())).first()
    assert record.action == "report.read"
    assert record.detail["cases"] == [driver.case(case_id).number] and record.detail["results"] == 2


def test_csv_has_bom_japanese_headers_and_every_row(driver: Driver, personas: Personas) -> None:
    import csv
    import io

    aged(driver, personas, [1, 2, 3])
    with driver.factory() as s:
        rows = stuck.stuck_export(s, driver.env, s.get(User, personas.supervisor.id), driver.clock.now(),
                                  stuck.Filters(reason="overdue"))
    text = stuck.to_csv(rows, {"hokatsu-center": "地域包括支援センター"})
    assert text.startswith("\ufeff")
    table = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert table[0] == stuck.CSV_HEADERS and len(table) == 4
    assert table[1][6] == "地域包括支援センター" and table[1][9] == "期限超過" and table[1][5] == "1. 相談・調整"


def test_task_rows_are_not_reported_once_done(driver: Driver, personas: Personas) -> None:
    case_id = driver.start(personas.caseworker)
    driver.clock.advance(days=4)
    assert reasons(driver, personas.supervisor, case_id) == {"overdue", "unassigned"}
    driver.complete_step(personas.caseworker, case_id, "intake", intake())
    assert reasons(driver, personas.supervisor, case_id) == set()
    with driver.factory() as s:
        assert s.scalar(select(HumanTask.state).where(HumanTask.case_id == case_id, HumanTask.step == "intake")) \
            == "completed"
