"""Shared helpers for the engine tests: a driver that runs every command in a fresh
session (so each step reads the case back from the database, never from memory), the
form data of each step, and consistency checks between the stored workflow state and
the rows that mirror it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.casework import cases, timers, writes
from engine.clock import FrozenClock
from engine.env import Env
from engine.models import Case, CaseEvent, HumanTask, ProcessDefinition, Timer, User
from engine.status import EventKind, TaskState, TimerStatus
from engine.workflow import runtime
from tests.conftest import Personas

# user task id -> its dueIn as a timedelta (the diagrams' contract)
DUE_IN: dict[str, timedelta] = {
    "intake": timedelta(days=3),
    "advice": timedelta(days=5),
    "advice_received": timedelta(days=7),
    "assessment": timedelta(days=14),
    "plan": timedelta(days=14),
    "meeting": timedelta(days=14),
    "monitoring": timedelta(days=7),
    "role_report": timedelta(days=5),
    "closure": timedelta(days=14),
    "judge_urgency": timedelta(hours=4),
    "respond": timedelta(days=1),
    "confirm_request": timedelta(hours=4),
    "end_emergency": timedelta(days=7),
    "continuing_support": timedelta(days=3),
    "assign": timedelta(days=3),
    "attempt": timedelta(days=7),
    "home_visit": timedelta(days=7),
    "decide": timedelta(days=7),
    "close": timedelta(days=7),
}


def intake(multiple_targets: bool = True, all_targets_have_lead_department: bool = False,
           lead_department_can_handle_alone: bool = False, coordination_problem: bool = True,
           **extra: Any) -> dict[str, Any]:
    """Intake form data; the defaults make an eligible case (図4 第5列)."""
    return {
        "multiple_targets": multiple_targets,
        "all_targets_have_lead_department": all_targets_have_lead_department,
        "lead_department_can_handle_alone": lead_department_can_handle_alone,
        "coordination_problem": coordination_problem,
        "summary": "80代の母と50代の息子の世帯。息子は無職で引きこもり、母は要介護。",
        "consent": "not_given",
        **extra,
    }


ASSESSMENT: dict[str, Any] = {"members": ["chiiki-kyosei", "choju-anshin"], "assessment": "母の介護と息子の就労支援が必要"}


def plan(interval: str = "P14D") -> dict[str, Any]:
    return {"issues": "介護・就労・家計", "policy": "長寿安心課が母を、くらし支援課が息子を支援する",
            "monitoring_interval": interval}


def meeting(*participants: str) -> dict[str, Any]:
    groups = list(participants) or ["kurashi-shien"]
    return {"held_on": "2026-04-20", "participants": groups,
            "roles": [{"group": g, "role": "見守りと連絡調整"} for g in groups]}


def monitoring(next_step: str) -> dict[str, Any]:
    return {"next": next_step, "progress": "支援は予定どおり進んでいる"}


# What a role holder reports at a monitoring round (モニタリング：役割の報告).
ROLE_REPORT: dict[str, Any] = {"status": "on_track", "report": "母はデイサービスに週2回通所している"}
# A monitoring round's open steps: the secretariat's decision and one report per role holder
# (meeting() gives one group one role).
MONITORING_ROUND = ["monitoring", "role_report"]
CLOSURE: dict[str, Any] = {"evaluation": "支援が定着した", "outcome": "established"}
ADVICE: dict[str, Any] = {"advice": "長寿安心課と連携して対応してください"}
ADVICE_ACK: dict[str, Any] = {"acknowledged": True}
JUDGEMENT: dict[str, Any] = {"urgency": "high", "danger_to": ["life"], "situation": "ごみ屋敷で高齢者が倒れている"}
RESPONSE: dict[str, Any] = {"action": "request", "requested_groups": ["choju-anshin"], "response": "救急搬送を要請"}
# What a requested agency records on its 緊急連携の確認 task.
REQUEST_ACK: dict[str, Any] = {"acknowledged": True, "action_taken": "保健師が同行し受診につないだ"}
EMERGENCY_END: dict[str, Any] = {"outcome": "入院により安全を確保", "ended_on": "2026-04-02"}


@dataclass
class Driver:
    """Runs domain commands and queries, each in its own session."""

    factory: sessionmaker[Session]
    env: Env
    clock: FrozenClock

    # ------------------------------------------------------------ commands

    @staticmethod
    def user(session: Session, who: User) -> User:
        user = session.get(User, who.id)
        assert user is not None
        return user

    def start(self, who: User, process: str = "multi_agency", data: dict[str, Any] | None = None,
              group: str | None = None) -> str:
        with self.factory() as s:
            if data is None:
                # What a caseworker writes on the start page: our processes refuse a case without it.
                data = {"summary": "相談"} if process in writes.SUMMARY_AT_START else {}
            case = cases.start_case(s, self.env, self.user(s, who), process, data, group, self.clock.now())
            return case.id

    def complete(self, who: User, task_id: str, data: dict[str, Any]) -> None:
        with self.factory() as s:
            cases.complete_task(s, self.env, self.user(s, who), task_id, data, self.clock.now())

    def complete_step(self, who: User, case_id: str, step: str, data: dict[str, Any]) -> HumanTask:
        """Complete the one open task of `step`; return its row as it was before."""
        task = self.task(case_id, step)
        self.complete(who, task.id, data)
        return task

    def fire(self) -> int:
        return timers.fire_due(self.factory, self.env, self.clock.now())

    # ------------------------------------------------------------ queries

    def case(self, case_id: str) -> Case:
        with self.factory() as s:
            case = s.get(Case, case_id)
            assert case is not None
            return case

    def open_tasks(self, case_id: str) -> list[HumanTask]:
        with self.factory() as s:
            return list(s.scalars(select(HumanTask).where(HumanTask.case_id == case_id,
                                                          HumanTask.state == TaskState.OPEN)))

    def open_steps(self, case_id: str) -> list[str]:
        return sorted(t.step for t in self.open_tasks(case_id))

    def task(self, case_id: str, step: str) -> HumanTask:
        rows = [t for t in self.open_tasks(case_id) if t.step == step]
        assert len(rows) == 1, f"expected one open {step} task, open: {self.open_steps(case_id)}"
        return rows[0]

    def task_row(self, task_id: str) -> HumanTask:
        with self.factory() as s:
            row = s.get(HumanTask, task_id)
            assert row is not None
            return row

    def history(self, case_id: str, kind: str | None = None) -> list[CaseEvent]:
        with self.factory() as s:
            stmt = select(CaseEvent).where(CaseEvent.case_id == case_id)
            if kind:
                stmt = stmt.where(CaseEvent.kind == kind)
            return list(s.scalars(stmt.order_by(CaseEvent.id)))

    def timers(self, case_id: str, status: str | None = None) -> list[Timer]:
        with self.factory() as s:
            stmt = select(Timer).where(Timer.case_id == case_id)
            if status:
                stmt = stmt.where(Timer.status == status)
            return list(s.scalars(stmt.order_by(Timer.id)))

    def count(self, model: type[Any]) -> int:
        with self.factory() as s:
            return s.scalar(select(func.count()).select_from(model)) or 0

    def definitions(self, process_key: str | None = None) -> list[ProcessDefinition]:
        with self.factory() as s:
            stmt = select(ProcessDefinition).order_by(ProcessDefinition.process_key, ProcessDefinition.version)
            if process_key:
                stmt = stmt.where(ProcessDefinition.process_key == process_key)
            return list(s.scalars(stmt))

    # ------------------------------------------------------------ checks

    def workflow(self, case: Case) -> Any:
        defn = self.env.specs.for_case(case)
        return runtime.load(defn, case.state, case.serializer_version)

    def check(self, case_id: str) -> Any:
        """Assert the stored state survives a load/dump round trip and the task and timer
        rows mirror it. Returns the loaded workflow."""
        case = self.case(case_id)
        defn = self.env.specs.for_case(case)
        assert case.definition_id == defn.definition_id
        wf = runtime.load(defn, case.state, case.serializer_version)
        ready = {str(t.id): (t.task_spec.bpmn_id, dict(t.data)) for t in runtime.ready_user_tasks(wf)}
        waiting = {str(t.id): due for t, due in runtime.waiting_timers(wf)}
        completed = wf.is_completed()

        dumped = runtime.dump(wf)
        again = runtime.load(defn, dumped, runtime.SERIALIZER_VERSION)
        assert {str(t.id): (t.task_spec.bpmn_id, dict(t.data)) for t in runtime.ready_user_tasks(again)} == ready
        assert {str(t.id): due for t, due in runtime.waiting_timers(again)} == waiting
        assert again.is_completed() == completed
        assert again.data == wf.data
        # Dumping what was loaded gives back what is stored: nothing is lost or added.
        assert runtime.dump(again) == dumped

        rows = self.open_tasks(case_id)
        assert {r.id: r.step for r in rows} == {k: v[0] for k, v in ready.items()}
        for row in rows:
            info = defn.steps[row.step]
            assert row.group_id == writes.task_group(self.env, case, info, ready[row.id][1])
            assert row.group_id is not None
            assert row.due_at == row.created_at + DUE_IN[row.step]
        pending = self.timers(case_id, TimerStatus.PENDING)
        assert {t.task_id: t.due_at for t in pending} == {k: datetime.fromisoformat(v) for k, v in waiting.items()}
        assert (case.status == "completed") == completed
        return wf

    def ready_data(self, case_id: str, step: str) -> dict[str, Any]:
        wf = self.workflow(self.case(case_id))
        tasks = [t for t in runtime.ready_user_tasks(wf) if t.task_spec.bpmn_id == step]
        assert len(tasks) == 1
        return dict(tasks[0].data)

    def completions(self, case_id: str) -> list[CaseEvent]:
        return self.history(case_id, EventKind.TASK_COMPLETED)


def waiting_case(driver: Driver, personas: Personas, interval: str = "P14D") -> str:
    """A case whose support meeting was just held: it waits for its first monitoring."""
    p = personas
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    driver.complete_step(p.secretariat, case_id, "assessment", ASSESSMENT)
    driver.complete_step(p.secretariat, case_id, "plan", plan(interval))
    driver.complete_step(p.secretariat, case_id, "meeting", meeting())
    assert driver.open_steps(case_id) == []
    return case_id


def walk_emergency(driver: Driver, personas: Personas, continue_support: bool) -> str:
    """Open an emergency case and complete its four steps; return its id."""
    p = personas
    case_id = driver.start(p.caseworker, "emergency")
    case = driver.case(case_id)
    assert case.number == "EM-2026-00001"
    judge = driver.task(case_id, "judge_urgency")
    assert (judge.group_id, judge.lane) == ("hokatsu-center", "発見機関")
    driver.check(case_id)
    for step, data, after in [("judge_urgency", JUDGEMENT, ["respond"]),
                              ("respond", RESPONSE, ["confirm_request", "end_emergency"]),
                              ("end_emergency", EMERGENCY_END, ["confirm_request", "continuing_support"])]:
        driver.clock.advance(hours=1)
        driver.complete_step(p.caseworker, case_id, step, data)
        assert driver.open_steps(case_id) == after
        driver.check(case_id)
    # The agency asked to help (長寿安心課) confirms in its own queue.
    confirm = driver.task(case_id, "confirm_request")
    assert confirm.group_id == "choju-anshin"
    driver.complete(p.elder_care, confirm.id, REQUEST_ACK)
    assert driver.open_steps(case_id) == ["continuing_support"]
    driver.clock.advance(hours=1)
    driver.complete_step(p.caseworker, case_id, "continuing_support",
                         {"continue_support": continue_support, "reason": "世帯に複数の課題がある"})
    driver.check(case_id)
    return case_id


# A small process for deploy tests: a user task, a script task and a gateway, each of
# which a test may replace with something hostile.
BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    id="Definitions_{key}" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="{key}" name="テスト" isExecutable="true">
    <bpmn:laneSet id="LaneSet_{key}">
      <bpmn:lane id="Lane_{key}" name="{lane}">
        <bpmn:flowNodeRef>start</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>work</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>middle</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>choice</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>end</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>other_end</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="work" name="作業">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="formKey" value="{form}" />
          <spiffworkflow:property name="dueIn" value="P1D" />
        </spiffworkflow:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:scriptTask id="middle" name="計算">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:exclusiveGateway id="choice" name="分岐" default="f_default">
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f_cond</bpmn:outgoing><bpmn:outgoing>f_default</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:endEvent id="end"><bpmn:incoming>f_cond</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="other_end"><bpmn:incoming>f_default</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work" />
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="middle" />
    <bpmn:sequenceFlow id="f3" sourceRef="middle" targetRef="choice" />
    <bpmn:sequenceFlow id="f_cond" sourceRef="choice" targetRef="end">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_default" sourceRef="choice" targetRef="other_end" />
  </bpmn:process>
</bpmn:definitions>
"""
SAFE = {"key": "probe", "lane": "事務局", "form": "advice", "script": "total = 1 + 1", "condition": "total == 2"}


def diagram(tmp_path: Path, name: str = "probe.bpmn", **overrides: str) -> Path:
    folder = tmp_path / "diagrams"
    folder.mkdir(exist_ok=True)
    values = {k: _xml_escape(v) for k, v in {**SAFE, **overrides}.items()}
    (folder / name).write_text(BPMN.format(**values), encoding="utf-8")
    return folder


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def statements_sent(driver: Driver, action: Callable[[], Any]) -> list[tuple[str, Any, bool]]:
    """Each SQL statement `action` sent through the driver's engine: its text, its parameters and
    whether it was an executemany."""
    engine = driver.factory.kw["bind"]
    seen: list[tuple[str, Any, bool]] = []

    def look(_conn, _cursor, statement, parameters, _context, executemany) -> None:  # noqa: ANN001
        seen.append((statement, parameters, executemany))

    event.listen(engine, "before_cursor_execute", look)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", look)
    return seen
