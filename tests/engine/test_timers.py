"""The monitoring timer (モニタリング期日) driven by the controllable clock and the sweep."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm.exc import StaleDataError

from engine.casework import timers, writes
from engine.errors import Invalid
from engine.models import AuditRecord, Case, OutboxEvent, Timer
from engine.ops import worker
from engine.security import audit
from engine.status import EventKind, OutboxKind, TimerStatus
from tests.conftest import Personas
from tests.engine.support import (
    ASSESSMENT,
    MONITORING_ROUND,
    Driver,
    intake,
    monitoring,
    plan,
    waiting_case,
)

START = datetime(2026, 4, 1, tzinfo=UTC)


def test_timer_is_scheduled_with_a_pending_row_and_history(driver: Driver, personas: Personas) -> None:
    case_id = waiting_case(driver, personas)
    (timer,) = driver.timers(case_id)
    assert timer.status == TimerStatus.PENDING
    assert timer.step == "monitoring_due" and timer.step_name == "モニタリング期日"
    assert timer.due_at == START + timedelta(days=14)
    assert timer.fired_at is None
    (scheduled,) = driver.history(case_id, EventKind.TIMER_SCHEDULED)
    assert scheduled.data == {"due_at": (START + timedelta(days=14)).isoformat()}
    driver.check(case_id)


def test_timer_does_not_fire_before_it_is_due(driver: Driver, personas: Personas) -> None:
    case_id = waiting_case(driver, personas)
    assert driver.fire() == 0
    driver.clock.advance(days=13, hours=23, minutes=59)
    assert driver.fire() == 0
    assert driver.open_steps(case_id) == []
    (timer,) = driver.timers(case_id)
    assert timer.status == TimerStatus.PENDING
    assert driver.history(case_id, EventKind.TIMER_FIRED) == []
    driver.check(case_id)


def test_timer_fires_after_it_is_due(driver: Driver, personas: Personas) -> None:
    case_id = waiting_case(driver, personas)
    now = driver.clock.advance(days=14, minutes=1)
    assert driver.fire() == 1
    (timer,) = driver.timers(case_id)
    assert timer.status == TimerStatus.FIRED
    assert timer.fired_at == now
    assert driver.open_steps(case_id) == MONITORING_ROUND
    task = driver.task(case_id, "monitoring")
    assert task.group_id == "secretariat"
    assert task.created_at == now and task.due_at == now + timedelta(days=7)
    (fired,) = driver.history(case_id, EventKind.TIMER_FIRED)
    assert fired.actor_id is None and fired.at == now and fired.step == "monitoring_due"
    driver.check(case_id)


def test_timer_due_while_the_server_was_down_fires_once_at_the_next_sweep(
        driver: Driver, personas: Personas) -> None:
    case_ids = [waiting_case(driver, personas) for _ in range(3)]
    driver.clock.advance(days=120)  # nobody swept for four months
    assert driver.fire() == 3
    assert driver.fire() == 0
    driver.clock.advance(days=1)
    assert driver.fire() == 0  # monitoring waits for people, not for the clock
    for case_id in case_ids:
        assert driver.open_steps(case_id) == MONITORING_ROUND
        assert [t.status for t in driver.timers(case_id)] == [TimerStatus.FIRED]
        assert len(driver.history(case_id, EventKind.TIMER_FIRED)) == 1
        assert len(driver.history(case_id, "task_created")) == 6  # intake .. meeting, monitoring, role_report
        driver.check(case_id)


def test_fire_due_counts_only_the_timers_due(driver: Driver, personas: Personas) -> None:
    short = [waiting_case(driver, personas, "P7D") for _ in range(2)]
    long = waiting_case(driver, personas, "P1M")
    driver.clock.advance(days=8)
    assert driver.fire() == 2
    assert all(driver.open_steps(c) == MONITORING_ROUND for c in short)
    assert driver.open_steps(long) == []
    driver.clock.advance(days=30)
    assert driver.fire() == 1
    assert driver.open_steps(long) == MONITORING_ROUND
    assert driver.fire() == 0


def test_fire_due_honours_its_limit(driver: Driver, personas: Personas) -> None:
    case_ids = [waiting_case(driver, personas, "P1D") for _ in range(3)]
    driver.clock.advance(days=2)
    assert timers.fire_due(driver.factory, driver.env, driver.clock.now(), limit=2) == 2
    assert timers.fire_due(driver.factory, driver.env, driver.clock.now(), limit=2) == 1
    assert sorted(len(driver.open_tasks(c)) for c in case_ids) == [2, 2, 2]  # monitoring and a role report


def test_fire_one_claims_a_timer_only_once(driver: Driver, personas: Personas) -> None:
    case_id = waiting_case(driver, personas, "P1D")
    (timer,) = driver.timers(case_id)
    now = driver.clock.advance(days=2)
    with driver.factory() as s:
        assert timers.fire_one(s, driver.env, timer.id, now) is True
    with driver.factory() as s:
        assert timers.fire_one(s, driver.env, timer.id, now) is False
    assert driver.open_steps(case_id) == MONITORING_ROUND
    assert len(driver.history(case_id, EventKind.TIMER_FIRED)) == 1


def test_continue_schedules_a_new_timer_each_round(driver: Driver, personas: Personas) -> None:
    case_id = waiting_case(driver, personas, "P14D")
    for round_no in range(1, 4):
        driver.clock.advance(days=15)
        assert driver.fire() == 1
        driver.complete_step(personas.secretariat, case_id, "monitoring", monitoring("continue"))
        statuses = [t.status for t in driver.timers(case_id)]
        assert statuses == [TimerStatus.FIRED] * round_no + [TimerStatus.PENDING]
        (pending,) = driver.timers(case_id, TimerStatus.PENDING)
        assert pending.due_at == driver.clock.now() + timedelta(days=14)
        driver.check(case_id)


@pytest.mark.parametrize(("interval", "due"), [
    ("P1M", datetime(2026, 5, 1, tzinfo=UTC)),
    ("PT1H", datetime(2026, 4, 1, 1, tzinfo=UTC)),
    ("P1Y2M3DT4H", datetime(2027, 6, 4, 4, tzinfo=UTC)),
    ("P2W", datetime(2026, 4, 15, tzinfo=UTC)),
    ("P14D", datetime(2026, 4, 15, tzinfo=UTC)),
])
def test_any_iso_duration_sets_the_monitoring_interval(driver: Driver, personas: Personas, interval: str,
                                                       due: datetime) -> None:
    case_id = waiting_case(driver, personas, interval)
    (timer,) = driver.timers(case_id)
    assert timer.due_at == due
    driver.clock.set(due - timedelta(seconds=1))
    assert driver.fire() == 0
    driver.clock.set(due + timedelta(seconds=1))
    assert driver.fire() == 1
    assert driver.open_steps(case_id) == MONITORING_ROUND


@pytest.mark.parametrize("interval", ["14 days", "P", "PT", "P1X", "14D", "", "P1DT", "2026-05-01"])
def test_invalid_monitoring_interval_is_refused(driver: Driver, personas: Personas, interval: str) -> None:
    p = personas
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    driver.complete_step(p.secretariat, case_id, "assessment", ASSESSMENT)
    before = driver.case(case_id)
    task = driver.task(case_id, "plan")
    with pytest.raises(Invalid) as err:
        driver.complete(p.secretariat, task.id, plan(interval))
    assert err.value.status == 422
    assert err.value.fields is not None and "monitoring_interval" in err.value.fields
    assert "monitoring_interval" in err.value.message
    after = driver.case(case_id)
    assert (after.version, after.state) == (before.version, before.state)
    assert driver.open_steps(case_id) == ["plan"]
    assert driver.timers(case_id) == []


def test_two_sweepers_at_once_fire_each_timer_exactly_once(driver: Driver, personas: Personas) -> None:
    case_ids = [waiting_case(driver, personas, "P1D") for _ in range(6)]
    now = driver.clock.advance(days=2)
    barrier = threading.Barrier(2)
    counts: list[int] = []

    def sweep() -> None:
        barrier.wait()
        counts.append(timers.fire_due(driver.factory, driver.env, now))

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive()
    assert sum(counts) == 6
    for case_id in case_ids:
        assert driver.open_steps(case_id) == MONITORING_ROUND
        assert len(driver.history(case_id, EventKind.TIMER_FIRED)) == 1
        driver.check(case_id)


def test_a_broken_timer_is_undone_alone_and_the_rest_of_its_batch_fires(
        driver: Driver, personas: Personas, monkeypatch: pytest.MonkeyPatch) -> None:
    case_ids = [waiting_case(driver, personas, "P1D") for _ in range(5)]
    broken = case_ids[2]
    with driver.factory() as s:
        s.get(Case, broken).state = "{not json"
        s.commit()
    before = driver.case(broken)
    # Batches of two: the broken timer shares its transaction with a good one.
    monkeypatch.setattr(timers, "BATCH_TIMERS", 2)
    now = driver.clock.advance(days=2)

    assert driver.fire() == 4

    for case_id in case_ids:
        (timer,) = driver.timers(case_id)
        if case_id == broken:
            # Its savepoint was undone (no claim, no history, the case as it was); the failure
            # is counted and the timer tried again later.
            assert timer.status == TimerStatus.PENDING and timer.fired_at is None
            assert timer.attempts == 1 and "StateError" in (timer.last_error or "")
            assert timer.due_at == now + timedelta(seconds=2)
            assert driver.history(case_id, EventKind.TIMER_FIRED) == []
            after = driver.case(case_id)
            assert (after.version, after.state) == (before.version, before.state)
        else:
            assert timer.status == TimerStatus.FIRED and timer.fired_at == now
            assert driver.open_steps(case_id) == MONITORING_ROUND
            assert len(driver.history(case_id, EventKind.TIMER_FIRED)) == 1
            driver.check(case_id)
    with driver.factory() as s:
        fires = s.scalars(select(AuditRecord.case_id).where(AuditRecord.action == audit.Action.TIMER_FIRE)).all()
        assert sorted(fires) == sorted(c for c in case_ids if c != broken)
        assert audit.verify(s).ok


def test_timers_fired_in_one_batch_each_leave_their_own_records(driver: Driver, personas: Personas) -> None:
    case_ids = [waiting_case(driver, personas, "P1D") for _ in range(6)]
    now = driver.clock.advance(days=2)
    with driver.factory() as s:
        events_before = s.scalar(select(func.count()).select_from(OutboxEvent))
    with driver.factory() as s:
        assert timers.fire_one(s, driver.env, driver.timers(case_ids[0])[0].id, now) is True

    assert driver.fire() == 5

    with driver.factory() as s:
        records = s.execute(select(AuditRecord.case_id, AuditRecord.detail)
                            .where(AuditRecord.action == audit.Action.TIMER_FIRE)).all()
        assert sorted(r.case_id for r in records) == sorted(case_ids)
        assert {r.case_id: r.detail["timer_id"] for r in records} == {
            c: driver.timers(c)[0].id for c in case_ids}
        # Each fire tells the outbox the timer fired and the round's tasks opened (the
        # secretariat's monitoring and the role holder's report).
        kinds = s.scalars(select(OutboxEvent.kind).order_by(OutboxEvent.id).offset(events_before)).all()
        assert sorted(kinds) == sorted(([OutboxKind.TIMER_FIRED] + [OutboxKind.TASK_CREATED] * len(MONITORING_ROUND)) * 6)
        assert audit.verify(s).ok
    for case_id in case_ids:
        assert driver.case(case_id).last_event_at == now
        driver.check(case_id)


def test_a_timer_whose_case_moved_meanwhile_is_left_pending(driver: Driver, personas: Personas) -> None:
    case_id = waiting_case(driver, personas, "P1D")
    (timer,) = driver.timers(case_id)
    now = driver.clock.advance(days=2)
    with driver.factory() as s:
        case = writes.read_case(s, case_id)
        s.execute(update(Case).where(Case.id == case_id).values(version=Case.version + 1))
        with pytest.raises(StaleDataError):
            writes.save_case(s, case)
        s.rollback()
    with driver.factory() as s:
        claimed = s.execute(select(Timer).where(Timer.id == timer.id)).scalar_one()
        assert claimed.status == TimerStatus.PENDING
    assert driver.fire() == 1
    assert driver.timers(case_id)[0].fired_at == now


def test_the_sweeper_wakes_when_the_next_timer_falls_due(driver: Driver, personas: Personas) -> None:
    case_id = waiting_case(driver, personas, "P1D")
    (timer,) = driver.timers(case_id)
    due = timer.due_at

    def wait(at: datetime, swept: datetime) -> float:
        driver.clock.set(at)
        return worker.until_next_sweep(driver.factory, driver.clock, 0.5, swept)

    assert wait(due - timedelta(hours=1), due - timedelta(hours=1)) == 0.5
    assert wait(due - timedelta(seconds=0.2), due - timedelta(seconds=0.2)) == pytest.approx(0.2)
    # Due since the last pass began: sweep again at once.
    assert wait(due + timedelta(seconds=0.1), due - timedelta(seconds=0.1)) == 0.0
    # That pass tried it and left it pending (not due for Spiff, say): the next interval.
    assert wait(due + timedelta(seconds=0.2), due + timedelta(seconds=0.1)) == 0.5
@pytest.mark.parametrize(("interval", "stored", "due"), [
    ("2週間", "P2W", datetime(2026, 4, 15, tzinfo=UTC)),
    ("３週間", "P3W", datetime(2026, 4, 22, tzinfo=UTC)),
    ("14日", "P14D", datetime(2026, 4, 15, tzinfo=UTC)),
    ("1か月", "P1M", datetime(2026, 5, 1, tzinfo=UTC)),
    ("1ヶ月", "P1M", datetime(2026, 5, 1, tzinfo=UTC)),
    ("半月", "P15D", datetime(2026, 4, 16, tzinfo=UTC)),
])
def test_the_monitoring_interval_as_a_caseworker_writes_it(driver: Driver, personas: Personas, interval: str,
                                                           stored: str, due: datetime) -> None:
    case_id = waiting_case(driver, personas, interval)
    (timer,) = driver.timers(case_id)
    assert timer.due_at == due
    # The workflow and the record hold the period the timer reads.
    (plan_done,) = [e for e in driver.completions(case_id) if e.step == "plan"]
    assert plan_done.data["monitoring_interval"] == stored


@pytest.mark.parametrize("interval", ["2月", "そのうち", "0日", "週2回"])
def test_a_period_not_understood_is_explained_in_the_caseworkers_terms(driver: Driver, personas: Personas,
                                                                        interval: str) -> None:
    p = personas
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    driver.complete_step(p.secretariat, case_id, "assessment", ASSESSMENT)
    with pytest.raises(Invalid) as err:
        driver.complete(p.secretariat, driver.task(case_id, "plan").id, plan(interval))
    ja, _, en = err.value.fields["monitoring_interval"].partition(" / ")
    assert "2週間" in ja and "1か月" in ja and "ISO" not in ja
    assert en and ja.isascii() is False
    assert driver.timers(case_id) == []
