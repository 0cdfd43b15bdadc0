"""Incoming messages in the engine: a message start event starts a case, a waiting catch
event or receive task receives the message meant for its case (found by correlation through
the message_waits index), and what a case waits for is kept on rows and checked."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from SpiffWorkflow.util.task import TaskState as SpiffState
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, sessionmaker

from engine.casework import cases
from engine.casework.messages import correlation_key
from engine.clock import FrozenClock
from engine.env import Env
from engine.errors import Conflict, Forbidden, Malformed, NotFound
from engine.models import AuditRecord, Case, CaseEvent, MessageWait, OutboxEvent, User
from engine.ops import check
from engine.status import CaseStatus, EventKind
from engine.workflow import runtime, waiting
from tests.conftest import Personas
from tests.engine.messages_support import REFERRAL, WAITING, deploy_message_diagrams
from tests.engine.support import Driver


@pytest.fixture
def driver(session_factory: sessionmaker[Session], env: Env, clock: FrozenClock) -> Driver:
    deploy_message_diagrams(session_factory, env, clock)
    return Driver(session_factory, env, clock)


def send(driver: Driver, who: User | None, name: str, data: dict[str, Any] | None = None,
         correlation: dict[str, Any] | None = None) -> str:
    with driver.factory() as s:
        actor = s.get(User, who.id) if who is not None else None
        return cases.receive_message(s, driver.env, actor, name, data, correlation, driver.clock.now()).id


def kinds(driver: Driver, case_id: str) -> list[tuple[str, str]]:
    with driver.factory() as s:
        return [(w["kind"], w["step"]) for w in waiting.case_waiting(s, s.get(Case, case_id))]


def counts(driver: Driver) -> tuple[int, ...]:
    return tuple(driver.count(m) for m in (Case, CaseEvent, OutboxEvent, AuditRecord, MessageWait))


def test_message_start_event_starts_a_case_with_the_message_data(driver: Driver, personas: Personas) -> None:
    case_id = send(driver, personas.secretariat, "test_referral", {"summary": "転居先の世帯", "note": "x"},
                   {"household_ref": "H-1"})
    case = driver.case(case_id)
    assert (case.process_key, case.status, case.summary) == (REFERRAL, CaseStatus.ACTIVE, "転居先の世帯")
    # The secretariat member refers it from their case-wide group.
    assert case.referring_group_id == "secretariat"
    assert kinds(driver, case_id) == [("message", "wait_reply")]
    wf = driver.workflow(case)
    (task,) = [t for t in wf.get_tasks() if t.task_spec.bpmn_id == "wait_reply"]
    assert task.data["household_ref"] == "H-1" and task.data["note"] == "x"
    received = driver.history(case_id, EventKind.MESSAGE_RECEIVED)
    assert [(e.data["message"], e.data["correlation"]) for e in received] == [("test_referral", {"household_ref": "H-1"})]
    # The data is kept once, on case_started.
    assert received[0].data["data"] is None
    assert driver.history(case_id, EventKind.CASE_STARTED)[0].data["note"] == "x"
    with driver.factory() as s:
        outbox = s.scalars(select(OutboxEvent).where(OutboxEvent.case_id == case_id,
                                                     OutboxEvent.kind == "message.received")).one()
        assert "H-1" not in str(outbox.payload) and "転居" not in str(outbox.payload)
        record = s.scalars(select(AuditRecord).where(AuditRecord.action == "message.receive")).one()
        assert "H-1" not in str(record.detail) and record.detail["correlation"] == ["household_ref"]


def test_a_case_waits_in_turn_for_each_kind_and_says_so(driver: Driver, personas: Personas) -> None:
    case_id = send(driver, personas.secretariat, "test_referral", {}, {"household_ref": "H-7"})
    assert kinds(driver, case_id) == [("message", "wait_reply")]
    assert send(driver, personas.secretariat, "test_reply", {"reply": "了解"}, {"household_ref": "H-7"}) == case_id
    assert kinds(driver, case_id) == [("message", "receive_ack")]
    assert send(driver, personas.secretariat, "test_ack", {}, {"household_ref": "H-7"}) == case_id
    assert kinds(driver, case_id) == [("task", "check")]
    driver.complete_step(personas.secretariat, case_id, "check", {"note": "確認済"})
    assert kinds(driver, case_id) == [("timer", "pause")]
    driver.clock.advance(days=1, seconds=1)
    assert driver.fire() == 1
    assert kinds(driver, case_id) == [("signal", "wait_stop")]
    with driver.factory() as s:
        assert check.check_case(s, driver.env, s.get(Case, case_id)) == []
    wf = driver.workflow(driver.case(case_id))
    (task,) = [t for t in wf.get_tasks() if t.task_spec.bpmn_id == "wait_stop"]
    assert task.data["reply"] == "了解"


def test_message_for_another_household_is_not_received(driver: Driver, personas: Personas) -> None:
    case_id = send(driver, personas.secretariat, "test_referral", {}, {"household_ref": "H-1"})
    before = counts(driver)
    with pytest.raises(NotFound) as err:
        send(driver, personas.secretariat, "test_reply", {}, {"household_ref": "H-2"})
    assert err.value.code == "no_match"
    with pytest.raises(NotFound):
        send(driver, personas.secretariat, "test_reply", {})  # uncorrelated: the catch expects a household
    assert counts(driver) == before
    assert kinds(driver, case_id) == [("message", "wait_reply")]


def make_waiting_cases(driver: Driver, session: Session, actor: User, n: int, by_engine: int) -> list[str]:
    """`n` cases of WAITING, each waiting for test_result with household_ref H-<i>. The first
    `by_engine` are opened through the engine; the rest are copies of the first with their own
    ids, household and catch task id (in the stored state and the message_waits row), inserted
    in bulk so that the test stays quick."""
    ids = [cases.start_case(session, driver.env, actor, WAITING, {"household_ref": f"H-{i:04d}"}, None,
                            driver.clock.now()).id for i in range(by_engine)]
    template = session.get(Case, ids[0])
    wait = session.scalars(select(MessageWait).where(MessageWait.case_id == template.id)).one()
    case_rows, wait_rows = [], []
    for i in range(by_engine, n):
        case_id, task_id, ref = str(uuid.uuid4()), str(uuid.uuid4()), f"H-{i:04d}"
        state = template.state.replace(wait.task_id, task_id).replace('"H-0000"', f'"{ref}"')
        case_rows.append({"id": case_id, "number": f"TW-{i:05d}", "process_key": WAITING,
                          "definition_id": template.definition_id, "status": CaseStatus.ACTIVE,
                          "referring_group_id": template.referring_group_id, "summary": "", "state": state,
                          "serializer_version": template.serializer_version, "created_at": template.created_at,
                          "updated_at": template.updated_at, "version": 1})
        wait_rows.append({"case_id": case_id, "process_key": WAITING, "task_id": task_id, "kind": wait.kind,
                          "name": wait.name, "step": wait.step, "step_name": wait.step_name,
                          "correlation": {"household_ref": ref}, "correlation_key": correlation_key({"household_ref": ref}),
                          "since": wait.since})
        ids.append(case_id)
    session.execute(insert(Case), case_rows)
    session.execute(insert(MessageWait), wait_rows)
    session.commit()
    return ids


def test_correlated_message_reaches_the_right_case_among_1000_waiting(
        driver: Driver, personas: Personas, session: Session) -> None:
    ids = make_waiting_cases(driver, session, session.get(User, personas.caseworker.id), 1000, by_engine=100)
    assert driver.count(MessageWait) == 1000
    versions = {c: driver.case(c).version for c in ids}
    for i in (637, 42):  # a copied case and one opened by the engine
        assert send(driver, personas.secretariat, "test_result", {"result": f"結果 {i}"},
                    {"household_ref": f"H-{i:04d}"}) == ids[i]
        assert [e.data["data"] for e in driver.history(ids[i], EventKind.MESSAGE_RECEIVED)] == [{"result": f"結果 {i}"}]
        wf = driver.workflow(driver.case(ids[i]))
        assert wf.is_completed() and wf.last_task.data["household_ref"] == f"H-{i:04d}"
    with driver.factory() as s:
        done = set(s.scalars(select(Case.id).where(Case.status == CaseStatus.COMPLETED)))
        assert done == {ids[637], ids[42]}
        assert set(s.scalars(select(MessageWait.case_id))) == set(ids) - done
        changed = {c for c, v in s.execute(select(Case.id, Case.version).where(Case.id.in_(ids))) if versions[c] != v}
        assert changed == done


def test_values_correlate_as_text(driver: Driver, personas: Personas, session: Session) -> None:
    actor = session.get(User, personas.caseworker.id)
    case_id = cases.start_case(session, driver.env, actor, WAITING, {"household_ref": 42}, None, driver.clock.now()).id
    assert send(driver, personas.secretariat, "test_result", {}, {"household_ref": "42"}) == case_id


def test_two_cases_waiting_with_the_same_correlation_is_refused(
        driver: Driver, personas: Personas, session: Session) -> None:
    actor = session.get(User, personas.caseworker.id)
    for _ in range(2):
        cases.start_case(session, driver.env, actor, WAITING, {"household_ref": "H-9"}, None, driver.clock.now())
    before = counts(driver)
    with pytest.raises(Conflict):
        send(driver, personas.secretariat, "test_result", {}, {"household_ref": "H-9"})
    assert counts(driver) == before


def nested(levels: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(levels):
        node["x"] = {}
        node = node["x"]
    return root


@pytest.mark.parametrize(("name", "data", "correlation", "field"), [
    pytest.param("", {}, None, "type", id="empty-name"),
    pytest.param(7, {}, None, "type", id="name-not-text"),
    pytest.param("test_referral", [1, 2], None, "data", id="data-not-object"),
    pytest.param("test_referral", {"bad key": 1}, None, "data.bad key", id="data-key"),
    pytest.param("test_referral", {"_hidden": 1}, None, "data._hidden", id="data-private-key"),
    pytest.param("test_referral", nested(40), None, "data", id="data-too-deep"),
    pytest.param("test_referral", {"note": "x" * 300_000}, None, "data", id="data-too-large"),
    pytest.param("test_referral", {}, ["H-1"], "correlation", id="correlation-not-object"),
    pytest.param("test_referral", {}, {"household_ref": {"x": 1}}, "correlation.household_ref",
                 id="correlation-value-object"),
])
def test_malformed_message_is_refused_naming_the_field(driver: Driver, personas: Personas, name: Any, data: Any,
                                                       correlation: Any, field: str) -> None:
    before = counts(driver)
    with pytest.raises(Malformed) as err:
        send(driver, personas.secretariat, name, data, correlation)
    assert field in (err.value.fields or {})
    assert counts(driver) == before


def test_only_secretariat_and_administrators_send_messages(driver: Driver, personas: Personas) -> None:
    before = counts(driver)
    with pytest.raises(Forbidden):
        send(driver, personas.caseworker, "test_referral", {}, {"household_ref": "H-1"})
    assert counts(driver) == before
    assert send(driver, personas.admin, "test_referral", {}, {"household_ref": "H-1"})


def test_check_reports_missing_message_wait_rows(driver: Driver, personas: Personas) -> None:
    case_id = send(driver, personas.secretariat, "test_referral", {}, {"household_ref": "H-3"})
    with driver.factory() as s:
        s.execute(delete(MessageWait).where(MessageWait.case_id == case_id))
        s.commit()
        problems = [p.what for p in check.check_case(s, driver.env, s.get(Case, case_id))]
    assert len(problems) == 1 and problems[0].startswith("waiting catch wait_reply ")
    assert problems[0].endswith("(test_reply) has no message_waits row")


def test_check_reports_an_active_case_waiting_for_nothing(driver: Driver, personas: Personas, session: Session) -> None:
    case_id = cases.start_case(session, driver.env, session.get(User, personas.caseworker.id), WAITING,
                               {"household_ref": "H-5"}, None, driver.clock.now()).id
    with driver.factory() as s:
        assert check.check_case(s, driver.env, s.get(Case, case_id)) == []
        # As a faulty diagram or a hand-edited state would leave it: the catch no longer waits,
        # and nothing after it can start.
        case = s.get(Case, case_id)
        wf = driver.workflow(case)
        (task,) = wf.get_tasks(state=SpiffState.WAITING)
        task._set_state(SpiffState.FUTURE)
        case.state = runtime.dump(wf)
        s.execute(delete(MessageWait).where(MessageWait.case_id == case_id))
        s.commit()
        problems = [p.what for p in check.check_case(s, driver.env, s.get(Case, case_id))]
    assert problems == ["the case is active but waits for nothing: no ready task, timer, message or signal"]
