"""Checks of the process diagrams, the 図4 decision table and the form schemas.

These tests use SpiffWorkflow and jsonschema directly (no engine/ or web/ code), so they
pin down the contract the engine relies on: element ids and names, lanes, form keys and
form fields, DMN outputs, gateway conditions and the emergency -> multi-agency message.
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from lxml import etree
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

from engine.clock import spiff_time

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ROOT / "processes"
FORMS = ROOT / "forms"
BPMN_FILES = {"multi_agency": PROCESSES / "multi_agency.bpmn", "emergency": PROCESSES / "emergency.bpmn",
              "outreach": PROCESSES / "outreach.bpmn", "participation": PROCESSES / "participation.bpmn"}
DMN_FILE = PROCESSES / "intake_criteria.dmn"

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
    "dmn": "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "dmndi": "https://www.omg.org/spec/DMN/20191111/DMNDI/",
    "dmndc": "http://www.omg.org/spec/DMN/20180521/DC/",
}
FLOW_NODE_TAGS = (
    "startEvent",
    "endEvent",
    "intermediateCatchEvent",
    "intermediateThrowEvent",
    "boundaryEvent",
    "task",
    "userTask",
    "manualTask",
    "scriptTask",
    "serviceTask",
    "sendTask",
    "receiveTask",
    "businessRuleTask",
    "callActivity",
    "subProcess",
    "exclusiveGateway",
    "parallelGateway",
    "inclusiveGateway",
    "eventBasedGateway",
)
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff00-\uffef]")
KNOWN_GROUPS = {"chiiki_kyosei", "choju_anshin", "shogai_fukushi", "kurashi_shien", "kodomo_soudan"}

# The contract: element id -> (BPMN element, Japanese name, lane name).
MULTI_AGENCY_NODES = {
    "start": ("startEvent", "相談の受付", "つなぎ元"),
    "intake": ("userTask", "1. 相談・調整", "つなぎ元"),
    "screening": ("businessRuleTask", "対象判定（図4の基準）", "連携責任者"),
    "screening_result": ("exclusiveGateway", "多機関協働事業の対象か", "連携責任者"),
    "advice": ("userTask", "対象外：つなぎ元への助言", "連携責任者"),
    "advice_received": ("userTask", "助言の確認（つなぎ元で支援を継続）", "つなぎ元"),
    "returned": ("endEvent", "つなぎ元の機関に戻す", "つなぎ元"),
    "to_assessment": ("exclusiveGateway", None, "事務局"),
    "assessment": ("userTask", "2. アセスメント", "事務局"),
    "plan": ("userTask", "3. 課題整理・支援方針の作成", "事務局"),
    "to_meeting": ("exclusiveGateway", None, "事務局"),
    "meeting": ("userTask", "4. 支援会議（支援方針と役割分担の決定）", "事務局"),
    "needs_participation": ("exclusiveGateway", "参加支援が必要か", "事務局"),
    "to_participation": ("intermediateThrowEvent", "参加支援へつなぐ", "事務局"),
    "to_monitoring": ("exclusiveGateway", None, "事務局"),
    "monitoring_due": ("intermediateCatchEvent", "モニタリング期日", "事務局"),
    "gather_role_holders": ("scriptTask", "役割を担う機関", "連携機関"),
    "monitoring_round": ("parallelGateway", "役割の報告を依頼", "連携機関"),
    "role_report": ("userTask", "モニタリング：役割の報告", "連携機関"),
    "reports_closed": ("boundaryEvent", "事務局が判断", "連携機関"),
    "reports_in": ("endEvent", "報告がそろった", "連携機関"),
    "reports_not_awaited": ("endEvent", "残りの報告は不要", "連携機関"),
    "monitoring": ("userTask", "5. モニタリング", "事務局"),
    "monitoring_decided": ("intermediateThrowEvent", "判断した", "事務局"),
    "monitoring_result": ("exclusiveGateway", "モニタリングの結果", "事務局"),
    "closure": ("userTask", "6. 終結（終結時の評価）", "事務局"),
    "closed": ("endEvent", "終結", "事務局"),
}
EMERGENCY_NODES = {
    "start": ("startEvent", "緊急事案の発見", "発見機関"),
    "judge_urgency": ("userTask", "1. 危険度・緊急度の判断", "発見機関"),
    "respond": ("userTask", "2. 対応もしくは連携を要請", "発見機関"),
    "requested": ("parallelGateway", "要請先へ", "連携機関"),
    "confirm_request": ("userTask", "緊急連携の確認", "連携機関"),
    "request_confirmed": ("endEvent", "要請先が確認", "連携機関"),
    "end_emergency": ("userTask", "3. 緊急対応終了", "発見機関"),
    "continuing_support": ("userTask", "4. 継続的な支援の判断", "発見機関"),
    "needs_continuation": ("exclusiveGateway", "継続的な支援が必要か", "発見機関"),
    "handover": ("endEvent", "多機関協働事業へ引継ぎ（事務局と調整）", "事務局"),
    "ended": ("endEvent", "緊急対応の終了", "発見機関"),
}
OUTREACH_NODES = {
    "start": ("startEvent", "滞納情報からのアウトリーチ依頼", "アウトリーチ受付"),
    "set_defaults": ("scriptTask", "接触の進め方の初期値", "アウトリーチ受付"),
    "assign": ("userTask", "1. 受付・担当者の決定", "アウトリーチ受付"),
    "to_attempt": ("exclusiveGateway", "接触の試みへ", "アウトリーチ担当者"),
    "attempt": ("userTask", "2. 接触の試み（手紙・電話・訪問・同行訪問）", "アウトリーチ担当者"),
    "count_attempt": ("scriptTask", "接触回数の記録", "アウトリーチ担当者"),
    "contact_result": ("exclusiveGateway", "接触できたか", "アウトリーチ担当者"),
    "wait_next": ("intermediateCatchEvent", "次の接触まで待つ（接触の間隔）", "アウトリーチ担当者"),
    "home_visit": ("userTask", "3. 家庭訪問の記録", "アウトリーチ担当者"),
    "decide": ("userTask", "4. つなぐ／終了の判断", "アウトリーチ担当者"),
    "decision": ("exclusiveGateway", "つなぐか", "アウトリーチ担当者"),
    "handover": ("endEvent", "多機関協働事業へつなぐ（事務局と調整）", "アウトリーチ担当者"),
    "consulted": ("endEvent", "相談につないで終了", "アウトリーチ担当者"),
    "to_close": ("exclusiveGateway", "終了へ", "アウトリーチ担当者"),
    "close": ("userTask", "5. 終了の記録（理由）", "アウトリーチ担当者"),
    "closed": ("endEvent", "アウトリーチの終了", "アウトリーチ担当者"),
}
PARTICIPATION_NODES = {
    "start": ("startEvent", "支援プランの参加ニーズ", "事務局"),
    "to_match": ("exclusiveGateway", "マッチングへ", "事務局"),
    "match": ("userTask", "1. 参加先とのマッチング", "事務局"),
    "to_checkin": ("exclusiveGateway", "試行期間", "参加支援担当者"),
    "checkin_due": ("intermediateCatchEvent", "確認日（チェックイン）", "参加支援担当者"),
    "checkin": ("userTask", "2. 試行期間の確認", "参加支援担当者"),
    "checkin_result": ("exclusiveGateway", "定着したか", "参加支援担当者"),
    "settled": ("endEvent", "参加の定着", "参加支援担当者"),
    "ended": ("endEvent", "参加支援の終了", "参加支援担当者"),
}
NODES = {"multi_agency": MULTI_AGENCY_NODES, "emergency": EMERGENCY_NODES, "outreach": OUTREACH_NODES,
         "participation": PARTICIPATION_NODES}
PROCESS_NAMES = {"multi_agency": "多機関協働事業による支援の流れ", "emergency": "緊急対応",
                 "outreach": "アウトリーチ等継続支援", "participation": "参加支援"}
LANES = {"multi_agency": ["つなぎ元", "連携責任者", "事務局", "連携機関"], "emergency": ["発見機関", "事務局", "連携機関"],
         "outreach": ["アウトリーチ受付", "アウトリーチ担当者"], "participation": ["事務局", "参加支援担当者"]}

# user task id -> (formKey, dueIn)
USER_TASKS = {
    "multi_agency": {
        "intake": ("intake", "P3D"),
        "advice": ("advice", "P5D"),
        "advice_received": ("advice_ack", "P7D"),
        "assessment": ("assessment", "P14D"),
        "plan": ("support_plan", "P14D"),
        "meeting": ("support_meeting", "P14D"),
        "monitoring": ("monitoring", "P7D"),
        "role_report": ("role_report", "P5D"),
        "closure": ("closure", "P14D"),
    },
    "emergency": {
        "judge_urgency": ("emergency_judgement", "PT4H"),
        "respond": ("emergency_response", "P1D"),
        "confirm_request": ("emergency_request_ack", "PT4H"),
        "end_emergency": ("emergency_end", "P7D"),
        "continuing_support": ("emergency_handover", "P3D"),
    },
    "outreach": {
        "assign": ("outreach_assign", "P3D"),
        "attempt": ("outreach_contact", "P7D"),
        "home_visit": ("outreach_home_visit", "P7D"),
        "decide": ("outreach_decision", "P7D"),
        "close": ("outreach_close", "P7D"),
    },
    "participation": {
        "match": ("participation_match", "P14D"),
        "checkin": ("participation_checkin", "P7D"),
    },
}

# user task id -> the step whose completer gets the task (sameAssigneeAs), per process
SAME_ASSIGNEE = {"outreach": {"attempt": "attempt", "home_visit": "attempt", "decide": "attempt", "close": "attempt"}}
# `reportAs`: the record a timer asks for, which the stuck report follows up (monitoring_overdue).
REPORT_AS = {"multi_agency": {"monitoring": "monitoring", "role_report": "role_report"}}
# `groupFrom`: the task's group is the one its (multi-instance) data names, not its lane's.
GROUP_FROM = {"multi_agency": {"role_report": 'role_holder["group"]'}, "emergency": {"confirm_request": "requested_group"}}

# The national standard sheets' fields added to our forms (NATIONAL_FORMS.md), all optional.
NATIONAL_FIELDS = {
    "intake": {"received_on", "visitor", "visitor_name", "visitor_phone", "visitor_relation", "email", "concerns",
               "main_concern", "concerns_other", "wishes", "work_status", "housing_type", "health_insurance", "pension",
               "applied", "privacy_acknowledged", "applied_on", "signed_by", "representative_name"},
    "assessment": {"background", "chief_complaint", "health", "work", "finances", "monthly_income_yen", "debts", "living",
                   "relations", "issue_kinds", "strengths"},
    "support_plan": {"person_wish", "goal_long", "goal_short", "person_actions", "services", "outreach", "plan_made_on",
                     "plan_start", "plan_end", "plan_confirmed", "plan_signed_on"},
    "closure": {"evaluated_on", "goal_achievement", "changes", "person_view"},
}
# formKey -> (all fields, required fields): the public API contract of the forms.
FORM_FIELDS = {
    "intake": (
        {
            "multiple_targets",
            "all_targets_have_lead_department",
            "lead_department_can_handle_alone",
            "coordination_problem",
            "summary",
            "consent",
        } | NATIONAL_FIELDS["intake"],
        {
            "multiple_targets",
            "all_targets_have_lead_department",
            "lead_department_can_handle_alone",
            "coordination_problem",
            "summary",
            "consent",
        },
    ),
    "advice": ({"advice", "resources"}, {"advice"}),
    "advice_ack": ({"acknowledged", "note"}, {"acknowledged"}),
    "assessment": ({"members", "assessment", "household"} | NATIONAL_FIELDS["assessment"], {"members", "assessment"}),
    "support_plan": (
        {"issues", "policy", "monitoring_interval", "participation", "participation_need"} | NATIONAL_FIELDS["support_plan"],
        {"issues", "policy", "monitoring_interval"},
    ),
    "support_meeting": (
        {"held_on", "participants", "roles", "decided_policy", "minutes", "plan_review_held_on", "plan_review_result",
         "plan_review_comments"},
        {"held_on", "participants", "roles"},
    ),
    "monitoring": ({"next", "progress", "new_issues"}, {"next", "progress"}),
    "role_report": ({"status", "report"}, {"status", "report"}),
    "closure": ({"evaluation", "outcome", "evaluation_review_held_on", "evaluation_review_result",
                 "evaluation_review_comments", "resource_gaps"} | NATIONAL_FIELDS["closure"], {"evaluation", "outcome"}),
    "emergency_judgement": ({"urgency", "danger_to", "situation"}, {"urgency", "situation"}),
    "emergency_response": ({"action", "requested_groups", "response"}, {"action", "response"}),
    "emergency_end": ({"outcome", "ended_on"}, {"outcome"}),
    "emergency_request_ack": ({"acknowledged", "action_taken"}, {"acknowledged", "action_taken"}),
    "emergency_handover": ({"continue_support", "reason"}, {"continue_support"}),
    "outreach_referral": (
        {"source", "household_ref", "amount_yen", "months_in_arrears"},
        {"source", "household_ref", "amount_yen", "months_in_arrears"},
    ),
    "outreach_assign": (
        {"summary", "attempt_interval", "max_attempts", "priority", "notes"},
        {"summary", "attempt_interval", "max_attempts"},
    ),
    "outreach_contact": ({"method", "joint_group", "attempted_on", "result", "notes"}, {"method", "result"}),
    "outreach_home_visit": (
        {"visited_on", "companions", "situation", "needs", "consent"},
        {"visited_on", "situation", "consent"},
    ),
    "outreach_decision": ({"next", "reason", "consultation_group", "consultation"}, {"next"}),
    "outreach_close": ({"close_reason", "other_agency", "note"}, {"close_reason"}),
    "participation_match": ({"place_id", "trial_plan", "checkin_interval"}, {"place_id"}),
    "participation_checkin": ({"progress", "next"}, {"progress", "next"}),
}
FORM_CHOICES = {
    ("intake", "consent"): {"given", "not_given", "unknown"},
    ("monitoring", "next"): {"continue", "reassess", "meeting", "close"},
    ("closure", "outcome"): {"established", "transferred", "other"},
    ("emergency_judgement", "urgency"): {"high", "medium", "low"},
    ("emergency_judgement", "danger_to"): {"life", "property", "rights"},
    ("emergency_response", "action"): {"self", "request"},
    ("outreach_referral", "source"): {"tax", "insurance", "water"},
    ("outreach_contact", "method"): {"letter", "phone", "visit", "joint_visit"},
    ("outreach_contact", "result"): {"reached", "not_reached"},
    ("outreach_home_visit", "consent"): {"given", "not_given", "unknown"},
    ("outreach_decision", "next"): {"connect", "consultation", "close"},
    ("outreach_close", "close_reason"): {"unreachable", "not_needed", "moved", "other_agency", "other"},
    ("participation_checkin", "next"): {"continue", "settle", "rematch", "end"},
}

# Valid submissions used by the walks (each is checked against its schema before use).
INTAKE_ELIGIBLE = {
    "multiple_targets": True,
    "all_targets_have_lead_department": False,
    "lead_department_can_handle_alone": False,
    "coordination_problem": False,
}
SAMPLE = {
    "advice": {
        "advice": "地域包括支援センターと介護保険サービスの利用を調整してください。",
        "resources": "介護保険",
    },
    "advice_ack": {"acknowledged": True},
    "assessment": {
        "members": ["chiiki_kyosei", "choju_anshin"],
        "assessment": "母と子の二人世帯。母に認知症の疑い。",
    },
    "support_plan": {
        "issues": "介護と就労",
        "policy": "長寿安心課を中心に支援",
        "monitoring_interval": "PT0S",
        "participation": False,
    },
    "support_meeting": {
        "held_on": "2021-06-01",
        "participants": ["chiiki_kyosei", "choju_anshin", "kurashi_shien"],
        "roles": [
            {"group": "choju_anshin", "role": "介護サービスの調整"},
            {"group": "kurashi_shien", "role": "就労支援"},
        ],
    },
    "closure": {"evaluation": "支援が定着した。", "outcome": "established"},
    "role_report": {"status": "on_track", "report": "週1回の訪問を続けている。"},
    "emergency_request_ack": {"acknowledged": True, "action_taken": "保健師が同行した。"},
    "emergency_judgement": {"urgency": "high", "danger_to": ["life"], "situation": "室内で倒れている。"},
    "emergency_response": {
        "action": "request",
        "requested_groups": ["choju_anshin"],
        "response": "救急搬送を要請",
    },
    "emergency_end": {"outcome": "入院した。", "ended_on": "2021-06-02"},
}


# ---------------------------------------------------------------- helpers and fixtures


def load_form(form_key: str) -> dict:
    return json.loads((FORMS / f"{form_key}.json").read_text(encoding="utf-8"))


def format_checker() -> FormatChecker:
    checker = FormatChecker()

    @checker.checks("group")
    def _is_group(value: object) -> bool:
        return not isinstance(value, str) or value in KNOWN_GROUPS

    @checker.checks("duration", raises=ValueError)
    def _is_duration(value: object) -> bool:
        if isinstance(value, str):
            TimerEventDefinition.parse_iso_duration(value) if value.startswith("P") else _bad(value)
        return True

    return checker


def _bad(value: str) -> None:
    raise ValueError(f"not an ISO 8601 duration: {value}")


def form_validator(form_key: str) -> Draft202012Validator:
    return Draft202012Validator(load_form(form_key), format_checker=format_checker())


@pytest.fixture(scope="module")
def parser() -> SpiffBpmnParser:
    p = SpiffBpmnParser(validator=VALIDATOR)  # XSD-validates BPMN (with spiff extensions) and DMN
    p.add_dmn_file(str(DMN_FILE))
    p.add_bpmn_files([str(f) for f in BPMN_FILES.values()])
    return p


def start(parser: SpiffBpmnParser, process_id: str) -> BpmnWorkflow:
    wf = BpmnWorkflow(
        parser.get_spec(process_id),
        parser.get_subprocess_specs(process_id),
        script_engine=PythonScriptEngine(),
    )
    wf.do_engine_steps()
    return wf


def ready(wf: BpmnWorkflow) -> list[str]:
    return sorted(t.task_spec.bpmn_id for t in wf.get_tasks(state=TaskState.READY, manual=True))


def element(spec: Any, node_id: str) -> Any:
    """The task spec of a diagram element: a multi-instance task's is its instances' (`<id> [child]`)."""
    return spec.task_specs.get(f"{node_id} [child]") or spec.task_specs[node_id]


def settle(wf: BpmnWorkflow) -> None:
    """Run engine steps; fire timers that are already due (a PT0S timer is due 'now')."""
    wf.do_engine_steps()
    for _ in range(50):
        if wf.is_completed() or ready(wf) or not wf.waiting_events():
            return
        due = [datetime.fromisoformat(e.value) for e in wf.waiting_events() if e.value]
        if any(d > datetime.now(UTC) + timedelta(seconds=1) for d in due):
            return  # a real wait: leave it to the caller
        # Let Spiff see the clock just past the due time instead of sleeping until then.
        with spiff_time(max(due) + timedelta(milliseconds=1)):
            wf.refresh_timers()
            wf.do_engine_steps()


def complete(wf: BpmnWorkflow, task_id: str, data: dict | None = None) -> None:
    """Complete the READY user task `task_id` with form data valid against its schema."""
    tasks = [t for t in wf.get_tasks(state=TaskState.READY, manual=True) if t.task_spec.bpmn_id == task_id]
    assert tasks, f"{task_id} is not ready; ready: {ready(wf)}"
    task = tasks[0]
    form_key = task.task_spec.extensions["properties"]["formKey"]
    data = dict(SAMPLE.get(form_key, {}) if data is None else data)
    errors = [e.message for e in form_validator(form_key).iter_errors(data)]
    assert not errors, f"{form_key}: {errors}"
    task.set_data(**data)
    task.run()
    settle(wf)


def intake_data(**criteria: bool) -> dict:
    return {**criteria, "summary": "相談内容", "consent": "given"}


def completed_path(wf: BpmnWorkflow) -> list[str]:
    done = [t for t in wf.get_tasks(state=TaskState.COMPLETED) if t.task_spec.bpmn_id]
    return [t.task_spec.bpmn_id for t in sorted(done, key=lambda t: t.last_state_change)]


def xml(path: Path) -> etree._ElementTree:
    return etree.parse(str(path))


def flow_nodes(process: etree._Element) -> list[etree._Element]:
    return [el for el in process if etree.QName(el).localname in FLOW_NODE_TAGS]


def bounds(shape: etree._Element) -> tuple[float, float, float, float]:
    b = shape.find("dc:Bounds", NS)
    return float(b.get("x")), float(b.get("y")), float(b.get("width")), float(b.get("height"))


def inside(point: tuple[float, float], box: tuple[float, float, float, float], tol: float = 1.0) -> bool:
    x, y, w, h = box
    return x - tol <= point[0] <= x + w + tol and y - tol <= point[1] <= y + h + tol


def overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


# ---------------------------------------------------------------- parsing and structure


@pytest.mark.parametrize("process_id", BPMN_FILES)
def test_diagram_parses_and_is_executable(parser: SpiffBpmnParser, process_id: str) -> None:
    spec = parser.get_spec(process_id)
    assert spec.name == process_id
    assert spec.description == PROCESS_NAMES[process_id]
    process = xml(BPMN_FILES[process_id]).find("bpmn:process", NS)
    assert process.get("isExecutable") == "true"
    assert process.getroottree().getroot().nsmap["spiffworkflow"] == NS["spiffworkflow"]


def test_adding_both_diagrams_and_the_table_to_one_parser_has_no_id_clash(parser: SpiffBpmnParser) -> None:
    assert set(parser.get_process_ids()) >= {"multi_agency", "emergency"}


@pytest.mark.parametrize("process_id", BPMN_FILES)
def test_flow_nodes_match_the_contract(parser: SpiffBpmnParser, process_id: str) -> None:
    spec = parser.get_spec(process_id)
    process = xml(BPMN_FILES[process_id]).find("bpmn:process", NS)
    found = {el.get("id"): etree.QName(el).localname for el in flow_nodes(process)}
    expected = NODES[process_id]
    assert found == {k: v[0] for k, v in expected.items()}
    for node_id, (_, name, lane) in expected.items():
        task_spec = element(spec, node_id)
        if name is not None:
            assert task_spec.bpmn_name == name
        assert task_spec.lane == lane, node_id


@pytest.mark.parametrize("process_id", BPMN_FILES)
def test_pool_has_one_participant_and_the_named_lanes(process_id: str) -> None:
    root = xml(BPMN_FILES[process_id]).getroot()
    participants = root.findall("bpmn:collaboration/bpmn:participant", NS)
    assert len(participants) == 1
    assert participants[0].get("processRef") == process_id
    process = root.find("bpmn:process", NS)
    lanes = process.findall("bpmn:laneSet/bpmn:lane", NS)
    assert [lane.get("name") for lane in lanes] == LANES[process_id]
    refs = [ref.text for lane in lanes for ref in lane.findall("bpmn:flowNodeRef", NS)]
    assert sorted(refs) == sorted(el.get("id") for el in flow_nodes(process))


@pytest.mark.parametrize("process_id", BPMN_FILES)
def test_every_element_has_a_japanese_name(process_id: str) -> None:
    root = xml(BPMN_FILES[process_id]).getroot()
    process = root.find("bpmn:process", NS)
    named = [
        process,
        *root.findall("bpmn:collaboration/bpmn:participant", NS),
        *process.findall("bpmn:laneSet/bpmn:lane", NS),
        *flow_nodes(process),
    ]
    # Flows that carry a decision (conditional or default) are named; plain flows need no label.
    defaults = {el.get("default") for el in flow_nodes(process) if el.get("default")}
    named += [
        f
        for f in process.findall("bpmn:sequenceFlow", NS)
        if f.find("bpmn:conditionExpression", NS) is not None or f.get("id") in defaults
    ]
    missing = [el.get("id") for el in named if not JAPANESE.search(el.get("name") or "")]
    assert not missing


@pytest.mark.parametrize("process_id", BPMN_FILES)
def test_gateway_conditions_are_simple_python_and_exhaustive(process_id: str) -> None:
    process = xml(BPMN_FILES[process_id]).find("bpmn:process", NS)
    for gateway in process.findall("bpmn:exclusiveGateway", NS):
        outgoing = [
            f for f in process.findall("bpmn:sequenceFlow", NS) if f.get("sourceRef") == gateway.get("id")
        ]
        if len(outgoing) < 2:
            continue
        conditions = [f.findtext("bpmn:conditionExpression", namespaces=NS) for f in outgoing]
        has_default = gateway.get("default") in {f.get("id") for f in outgoing}
        assert has_default or all(conditions), gateway.get("id")
        for condition in filter(None, conditions):
            assert "(" not in condition and "import" not in condition and "._" not in condition
            compile(condition, "<condition>", "eval")
    conditions = {
        f.get("targetRef"): f.findtext("bpmn:conditionExpression", namespaces=NS)
        for f in process.findall("bpmn:sequenceFlow", NS)
        if f.get("sourceRef") == "monitoring_result"
    }
    if process_id == "multi_agency":
        assert conditions == {
            "to_monitoring": 'next == "continue"',
            "to_assessment": 'next == "reassess"',
            "to_meeting": 'next == "meeting"',
            "closure": 'next == "close"',
        }
        # the four conditions cover exactly the choices the monitoring form allows
        assert {c.split('"')[1] for c in conditions.values()} == FORM_CHOICES[("monitoring", "next")]


# ---------------------------------------------------------------- diagram interchange


@pytest.mark.parametrize("process_id", BPMN_FILES)
def test_every_node_lane_and_participant_has_a_shape_and_every_flow_an_edge(process_id: str) -> None:
    root = xml(BPMN_FILES[process_id]).getroot()
    process = root.find("bpmn:process", NS)
    plane = root.find("bpmndi:BPMNDiagram/bpmndi:BPMNPlane", NS)
    assert plane.get("bpmnElement") == root.find("bpmn:collaboration", NS).get("id")
    shapes = {s.get("bpmnElement"): s for s in plane.findall("bpmndi:BPMNShape", NS)}
    edges = {e.get("bpmnElement"): e for e in plane.findall("bpmndi:BPMNEdge", NS)}
    ids = [el.get("id") for el in flow_nodes(process)]
    ids += [lane.get("id") for lane in process.findall("bpmn:laneSet/bpmn:lane", NS)]
    ids += [p.get("id") for p in root.findall("bpmn:collaboration/bpmn:participant", NS)]
    assert not [i for i in ids if i not in shapes]
    flows = process.findall("bpmn:sequenceFlow", NS)
    assert not [f.get("id") for f in flows if f.get("id") not in edges]
    assert len(shapes) == len(ids) and len(edges) == len(flows)


@pytest.mark.parametrize("process_id", BPMN_FILES)
def test_edges_are_orthogonal_and_connect_their_shapes(process_id: str) -> None:
    root = xml(BPMN_FILES[process_id]).getroot()
    plane = root.find("bpmndi:BPMNDiagram/bpmndi:BPMNPlane", NS)
    shapes = {s.get("bpmnElement"): bounds(s) for s in plane.findall("bpmndi:BPMNShape", NS)}
    edges = {e.get("bpmnElement"): e for e in plane.findall("bpmndi:BPMNEdge", NS)}
    for flow in root.findall("bpmn:process/bpmn:sequenceFlow", NS):
        points = [
            (float(w.get("x")), float(w.get("y"))) for w in edges[flow.get("id")].findall("di:waypoint", NS)
        ]
        assert len(points) >= 2
        for (x1, y1), (x2, y2) in itertools.pairwise(points):
            assert x1 == x2 or y1 == y2, f"{flow.get('id')} has a diagonal segment"
        assert inside(points[0], shapes[flow.get("sourceRef")]), flow.get("id")
        assert inside(points[-1], shapes[flow.get("targetRef")]), flow.get("id")


@pytest.mark.parametrize("process_id", BPMN_FILES)
def test_shapes_do_not_overlap_and_sit_in_their_lanes(process_id: str) -> None:
    root = xml(BPMN_FILES[process_id]).getroot()
    process = root.find("bpmn:process", NS)
    plane = root.find("bpmndi:BPMNDiagram/bpmndi:BPMNPlane", NS)
    shapes = {s.get("bpmnElement"): bounds(s) for s in plane.findall("bpmndi:BPMNShape", NS)}
    node_ids = [el.get("id") for el in flow_nodes(process)]
    # A boundary event sits on its task's edge.
    attached = {(el.get("id"), el.get("attachedToRef")) for el in process.findall("bpmn:boundaryEvent", NS)}
    for a, b in itertools.combinations(node_ids, 2):
        if (a, b) in attached or (b, a) in attached:
            continue
        assert not overlaps(shapes[a], shapes[b]), (a, b)
    pool = shapes[root.find("bpmn:collaboration/bpmn:participant", NS).get("id")]
    lanes = process.findall("bpmn:laneSet/bpmn:lane", NS)
    for lane_a, lane_b in itertools.combinations(lanes, 2):
        assert not overlaps(shapes[lane_a.get("id")], shapes[lane_b.get("id")])
    for lane in lanes:
        lx, ly, lw, lh = shapes[lane.get("id")]
        assert inside((lx, ly), pool, 0) and inside((lx + lw, ly + lh), pool, 0)
        for ref in lane.findall("bpmn:flowNodeRef", NS):
            x, y, w, h = shapes[ref.text]
            assert inside((x, y), (lx, ly, lw, lh), 0) and inside((x + w, y + h), (lx, ly, lw, lh), 0), (
                ref.text
            )


@pytest.mark.parametrize("process_id", BPMN_FILES)
def test_layout_runs_left_to_right(process_id: str) -> None:
    root = xml(BPMN_FILES[process_id]).getroot()
    plane = root.find("bpmndi:BPMNDiagram/bpmndi:BPMNPlane", NS)
    shapes = {s.get("bpmnElement"): bounds(s) for s in plane.findall("bpmndi:BPMNShape", NS)}
    loop_backs = {"flow_continue", "flow_meeting_again", "flow_reassess", "flow_again", "flow_rematch"}
    for flow in root.findall("bpmn:process/bpmn:sequenceFlow", NS):
        if flow.get("id") in loop_backs:
            continue
        assert shapes[flow.get("sourceRef")][0] <= shapes[flow.get("targetRef")][0], flow.get("id")


# ---------------------------------------------------------------- forms


def all_user_tasks() -> list[tuple[str, str, str, str]]:
    return [(p, t, key, due) for p, tasks in USER_TASKS.items() for t, (key, due) in tasks.items()]


@pytest.mark.parametrize(("process_id", "task_id", "form_key", "due_in"), all_user_tasks())
def test_user_task_has_form_key_with_valid_schema_and_due_in(
    parser: SpiffBpmnParser, process_id: str, task_id: str, form_key: str, due_in: str
) -> None:
    properties = element(parser.get_spec(process_id), task_id).extensions["properties"]
    same = SAME_ASSIGNEE.get(process_id, {}).get(task_id)
    report_as = REPORT_AS.get(process_id, {}).get(task_id)
    group_from = GROUP_FROM.get(process_id, {}).get(task_id)
    assert properties == {"formKey": form_key, "dueIn": due_in} | ({"sameAssigneeAs": same} if same else {}) | (
        {"reportAs": report_as} if report_as else {}) | ({"groupFrom": group_from} if group_from else {})
    assert (FORMS / f"{form_key}.json").is_file()
    Draft202012Validator.check_schema(load_form(form_key))
    TimerEventDefinition.parse_iso_duration(due_in)  # raises if not an ISO 8601 duration


@pytest.mark.parametrize("process_id", BPMN_FILES)
def test_every_user_task_is_in_the_contract(parser: SpiffBpmnParser, process_id: str) -> None:
    spec = parser.get_spec(process_id)
    user_tasks = {ts.bpmn_id for ts in spec.task_specs.values() if ts.manual}
    assert user_tasks == set(USER_TASKS[process_id])


# process id -> the form of the data its cases are opened with (the start event's formKey)
START_FORMS = {"outreach": "outreach_referral"}


def test_every_form_file_is_used() -> None:
    used = {key for tasks in USER_TASKS.values() for key, _ in tasks.values()} | set(START_FORMS.values())
    assert {f.stem for f in FORMS.glob("*.json")} == used == set(FORM_FIELDS)


def _walk_schema(schema: dict, path: str):
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _walk_schema(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _walk_schema(schema["items"], f"{path}[]")


@pytest.mark.parametrize("form_key", sorted(FORM_FIELDS))
def test_form_follows_the_conventions(form_key: str) -> None:
    schema = load_form(form_key)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    fields, required = FORM_FIELDS[form_key]
    assert set(schema["properties"]) == fields
    assert set(schema["required"]) == required
    for path, sub in _walk_schema(schema, form_key):
        if "oneOf" in sub:  # choices
            assert all(set(o) == {"const", "title"} and JAPANESE.search(o["title"]) for o in sub["oneOf"]), (
                path
            )
        if path.endswith("[]") and sub.get("type") != "object":
            continue  # items of a list of choices / group ids
        assert JAPANESE.search(sub.get("title", "")), f"{path} has no Japanese title"
        assert JAPANESE.search(sub.get("description", "あ")), path
        if sub.get("type") == "object":
            assert sub.get("additionalProperties") is False, path
            assert set(sub.get("required", [])) <= set(sub["properties"]), path
        if sub.get("type") == "array":
            assert "items" in sub, path
        if sub.get("type") == "string" and not {"format", "oneOf", "const"} & set(sub):
            assert isinstance(sub.get("maxLength"), int), f"{path} free text needs maxLength"
    for name in required:
        sub = schema["properties"][name]
        if sub.get("type") == "string" and not {"format", "oneOf"} & set(sub):
            assert sub.get("minLength") == 1, f"{form_key}.{name} is required free text"


@pytest.mark.parametrize(("form_key", "field"), sorted(FORM_CHOICES))
def test_form_choices_are_the_contract(form_key: str, field: str) -> None:
    sub = load_form(form_key)["properties"][field]
    if sub["type"] == "array":
        assert sub["uniqueItems"] is True
        sub = sub["items"]
    assert {o["const"] for o in sub["oneOf"]} == FORM_CHOICES[(form_key, field)]


@pytest.mark.parametrize(
    ("form_key", "field", "kind"),
    [
        ("assessment", "members", "groups"),
        ("support_meeting", "participants", "groups"),
        ("emergency_response", "requested_groups", "groups"),
        ("support_plan", "monitoring_interval", "duration"),
        ("support_meeting", "held_on", "date"),
        ("emergency_end", "ended_on", "date"),
    ],
)
def test_group_duration_and_date_fields_use_formats(form_key: str, field: str, kind: str) -> None:
    sub = load_form(form_key)["properties"][field]
    if kind == "groups":
        assert sub["type"] == "array" and sub["uniqueItems"] is True
        assert sub["items"]["format"] == "group"
        assert sub.get("minItems", 0) == (0 if form_key == "emergency_response" else 1)
    else:
        assert sub["type"] == "string" and sub["format"] == kind


@pytest.mark.parametrize(
    ("form_key", "data"),
    [
        pytest.param(
            "intake", intake_data(**INTAKE_ELIGIBLE) | {"consent": "maybe"}, id="intake-bad-consent"
        ),
        pytest.param("intake", {"summary": "x", "consent": "given"}, id="intake-missing-criteria"),
        pytest.param("advice_ack", {"acknowledged": False}, id="advice_ack-not-acknowledged"),
        pytest.param("assessment", {"members": [], "assessment": "x"}, id="assessment-no-members"),
        pytest.param(
            "assessment", {"members": ["nowhere"], "assessment": "x"}, id="assessment-unknown-group"
        ),
        pytest.param(
            "support_plan",
            {"issues": "x", "policy": "y", "monitoring_interval": "14日"},
            id="plan-bad-duration",
        ),
        pytest.param(
            "support_meeting",
            SAMPLE["support_meeting"] | {"roles": [{"group": "choju_anshin"}]},
            id="meeting-role-without-text",
        ),
        pytest.param(
            "support_meeting", SAMPLE["support_meeting"] | {"held_on": "2021-13-01"}, id="meeting-bad-date"
        ),
        pytest.param("monitoring", {"next": "stop", "progress": "x"}, id="monitoring-bad-next"),
        pytest.param(
            "emergency_judgement",
            SAMPLE["emergency_judgement"] | {"danger_to": ["life", "life"]},
            id="judgement-duplicate-danger",
        ),
        pytest.param("emergency_end", {"outcome": ""}, id="end-empty-outcome"),
        pytest.param("emergency_handover", {"continue_support": True, "extra": 1}, id="handover-extra-field"),
    ],
)
def test_form_rejects_invalid_submission(form_key: str, data: dict) -> None:
    assert list(form_validator(form_key).iter_errors(data))


def test_empty_danger_list_is_allowed() -> None:
    data = SAMPLE["emergency_judgement"] | {"danger_to": []}
    assert not list(form_validator("emergency_judgement").iter_errors(data))


# ---------------------------------------------------------------- DMN (図4)

CRITERIA = (
    "multiple_targets",
    "all_targets_have_lead_department",
    "lead_department_can_handle_alone",
    "coordination_problem",
)


def decide(parser: SpiffBpmnParser, **inputs: bool) -> tuple[str, int]:
    """Run the table; return (decision, row number of the first matching rule)."""
    engine = parser.get_engine("intake_criteria", None)
    task = SimpleNamespace(data=dict(inputs), workflow=SimpleNamespace(script_engine=PythonScriptEngine()))
    rules = engine.decide(task)
    assert rules, f"no rule matched {inputs}"
    return engine.result(task)["decision"], rules[0].row_number


def figure4(
    multiple_targets: bool,
    all_targets_have_lead_department: bool,
    lead_department_can_handle_alone: bool,
    coordination_problem: bool,
) -> tuple[str, int]:
    """An independent reading of 図4: (decision, rule row)."""
    if not multiple_targets:
        if not all_targets_have_lead_department:
            return "eligible", 4  # 18-64, not in poverty: no lead department
        if lead_department_can_handle_alone:
            return ("consult_only", 1) if coordination_problem else ("not_eligible", 2)
        return "eligible", 3  # several issues or no usable service
    return ("eligible", 5) if all_targets_have_lead_department else ("eligible", 6)


@pytest.mark.parametrize(
    "values",
    list(itertools.product([True, False], repeat=4)),
    ids=lambda v: "-".join("T" if x else "F" for x in v),
)
def test_dmn_decides_every_combination_as_figure4(parser: SpiffBpmnParser, values: tuple[bool, ...]) -> None:
    inputs = dict(zip(CRITERIA, values, strict=True))
    assert decide(parser, **inputs) == figure4(**inputs)


def test_dmn_table_shape_and_every_rule_is_reachable(parser: SpiffBpmnParser) -> None:
    root = xml(DMN_FILE).getroot()
    assert root.nsmap[None] == NS["dmn"]
    decision = root.find("dmn:decision", NS)
    assert decision.get("id") == "intake_criteria"
    assert decision.get("name") == "多機関協働事業で取り扱うケースの基準（図4）"
    table = decision.find("dmn:decisionTable", NS)
    assert table.get("hitPolicy") == "FIRST"
    inputs = table.findall("dmn:input", NS)
    assert [i.findtext("dmn:inputExpression/dmn:text", namespaces=NS) for i in inputs] == list(CRITERIA)
    assert all(i.find("dmn:inputExpression", NS).get("typeRef") == "boolean" for i in inputs)
    assert all(JAPANESE.search(i.get("label")) for i in inputs)
    [output] = table.findall("dmn:output", NS)
    assert (output.get("name"), output.get("typeRef")) == ("decision", "string")
    rules = table.findall("dmn:rule", NS)
    assert len(rules) == 6
    assert all("図4" in r.findtext("dmn:description", namespaces=NS) for r in rules)
    shapes = root.findall("dmndi:DMNDI/dmndi:DMNDiagram/dmndi:DMNShape", NS)
    assert [s.get("dmnElementRef") for s in shapes] == ["intake_criteria"]
    rows = {
        decide(parser, **dict(zip(CRITERIA, v, strict=True)))[1]
        for v in itertools.product([True, False], repeat=4)
    }
    assert rows == {1, 2, 3, 4, 5, 6}


def test_dmn_any_entries_are_written_as_dash() -> None:
    entries = xml(DMN_FILE).getroot().findall(".//dmn:rule/dmn:inputEntry/dmn:text", NS)
    assert {e.text for e in entries} == {"True", "False", "-"}


def _case(row: int, decision: str, *values: bool, id: str):
    return pytest.param(dict(zip(CRITERIA, values, strict=True)), decision, row, id=id)


@pytest.mark.parametrize(
    ("inputs", "decision", "row"),
    [
        # 図4 第1列: 支援対象者1人・担当部局あり・制度やサービスあり -> 担当部局のみで対応可能
        _case(2, "not_eligible", False, True, True, False, id="支援拒否の高齢者だが利用できるサービスあり"),
        _case(
            1,
            "consult_only",
            False,
            True,
            True,
            True,
            id="支援拒否の高齢者だが利用できるサービスあり（連携調整に課題あり）",
        ),
        # 第2列: 担当部局はあるが支援ツールが無い
        _case(3, "eligible", False, True, False, False, id="セルフネグレクトの高齢者"),
        # 第3列: 18〜64歳で生活困窮でない -> 担当部局が無い
        _case(4, "eligible", False, False, False, False, id="50歳男性ひとり暮らし・滞納"),
        # 第4列: 複数の対象者・各々に担当部局あり（複数部局が関わる／情報共有が必要）
        _case(5, "eligible", True, True, False, True, id="孫らしき小学生が平日在宅"),
        _case(5, "eligible", True, True, True, True, id="個人情報の問題で各機関の支援がわからない家族"),
        # 第5列: 担当部局が無い人がいる
        _case(6, "eligible", True, False, False, True, id="中心となる機関がない複合課題の家族"),
        _case(6, "eligible", True, False, False, False, id="アルコール依存・DV・介護の家族"),
        _case(6, "eligible", True, False, False, False, id="30歳女性・認知症の親・不登校の子・ごみ屋敷"),
    ],
)
def test_dmn_worked_examples_of_figure4(
    parser: SpiffBpmnParser, inputs: dict, decision: str, row: int
) -> None:
    assert decide(parser, **inputs) == (decision, row)


# ---------------------------------------------------------------- raw walks: multi_agency


@pytest.mark.parametrize(
    ("values", "decision"),
    [
        pytest.param((False, True, True, False), "not_eligible", id="not_eligible"),
        pytest.param((False, True, True, True), "consult_only", id="consult_only"),
    ],
)
def test_ineligible_case_is_advised_and_returned_to_the_referrer(
    parser: SpiffBpmnParser, values: tuple[bool, ...], decision: str
) -> None:
    wf = start(parser, "multi_agency")
    assert ready(wf) == ["intake"]
    complete(wf, "intake", intake_data(**dict(zip(CRITERIA, values, strict=True))))
    assert ready(wf) == ["advice"]
    [advice] = wf.get_tasks(state=TaskState.READY, manual=True)
    assert advice.data["decision"] == decision  # the DMN output lands in task data
    assert advice.task_spec.lane == "連携責任者"
    complete(wf, "advice")
    assert ready(wf) == ["advice_received"]
    complete(wf, "advice_received")
    assert wf.is_completed()
    path = completed_path(wf)
    assert path[-1] == "returned" and "assessment" not in path
    assert path == [
        "start",
        "intake",
        "screening",
        "screening_result",
        "advice",
        "advice_received",
        "returned",
    ]


@pytest.mark.parametrize(
    "values",
    [v for v in itertools.product([True, False], repeat=4) if figure4(*v)[0] == "eligible"],
    ids=lambda v: "-".join("T" if x else "F" for x in v),
)
def test_eligible_case_goes_to_assessment(parser: SpiffBpmnParser, values: tuple[bool, ...]) -> None:
    wf = start(parser, "multi_agency")
    complete(wf, "intake", intake_data(**dict(zip(CRITERIA, values, strict=True))))
    assert ready(wf) == ["assessment"]
    [task] = wf.get_tasks(state=TaskState.READY, manual=True)
    assert task.data["decision"] == "eligible"
    assert task.task_spec.lane == "事務局"


def _to_first_monitoring(parser: SpiffBpmnParser, interval: str = "PT0S") -> BpmnWorkflow:
    wf = start(parser, "multi_agency")
    complete(wf, "intake", intake_data(**INTAKE_ELIGIBLE))
    complete(wf, "assessment")
    complete(wf, "plan", SAMPLE["support_plan"] | {"monitoring_interval": interval})
    complete(wf, "meeting")
    return wf


# A monitoring round: the decision, and a report of each of SAMPLE's two role holders.
ROUND = ["monitoring", "role_report", "role_report"]


def monitoring(next_step: str) -> dict:
    return {"next": next_step, "progress": "支援は順調", "new_issues": "特になし"}


@pytest.mark.parametrize(
    ("next_step", "expected"),
    [
        ("continue", ROUND),
        ("reassess", ["assessment"]),
        ("meeting", ["meeting"]),
        ("close", ["closure"]),
    ],
)
def test_monitoring_outcome_routes_to_the_right_step(
    parser: SpiffBpmnParser, next_step: str, expected: list[str]
) -> None:
    wf = _to_first_monitoring(parser)
    assert ready(wf) == ROUND
    complete(wf, "monitoring", monitoring(next_step))
    assert ready(wf) == expected
    if next_step == "close":
        complete(wf, "closure")
        assert wf.is_completed()
        assert completed_path(wf)[-2:] == ["closure", "closed"]


def test_full_walk_through_every_monitoring_outcome(parser: SpiffBpmnParser) -> None:
    wf = _to_first_monitoring(parser)
    complete(wf, "monitoring", monitoring("continue"))
    complete(wf, "monitoring", monitoring("reassess"))
    complete(wf, "assessment")
    complete(wf, "plan")
    complete(wf, "meeting")
    complete(wf, "monitoring", monitoring("meeting"))
    complete(wf, "meeting")
    complete(wf, "monitoring", monitoring("close"))
    complete(wf, "closure")
    assert wf.is_completed()
    user_steps = [t for t in completed_path(wf) if t in USER_TASKS["multi_agency"]]
    assert user_steps == [
        "intake",
        "assessment",
        "plan",
        "meeting",
        "monitoring",
        "monitoring",
        "assessment",
        "plan",
        "meeting",
        "monitoring",
        "meeting",
        "monitoring",
        "closure",
    ]
    assert completed_path(wf).count("monitoring_due") == 4
    assert completed_path(wf)[-1] == "closed"


def test_monitoring_timer_waits_for_the_interval_in_task_data(parser: SpiffBpmnParser) -> None:
    wf = _to_first_monitoring(parser, interval="P14D")
    assert ready(wf) == []
    [event] = wf.waiting_events()
    assert event.event_type == "DurationTimerEventDefinition"
    due = datetime.fromisoformat(event.value)
    assert abs(due - (datetime.now(UTC) + timedelta(days=14))) < timedelta(minutes=1)
    wf.refresh_timers()
    wf.do_engine_steps()
    assert ready(wf) == []  # not due yet
    # Move the due time into the past, as if 14 days had gone by.
    [timer] = wf.get_tasks(state=TaskState.WAITING, spec_name="monitoring_due")
    timer._set_internal_data(event_value=(datetime.now(UTC) - timedelta(seconds=1)).isoformat())
    wf.do_engine_steps()
    assert ready(wf) == []  # do_engine_steps alone does not re-check timers
    wf.refresh_timers()
    wf.do_engine_steps()
    assert ready(wf) == ROUND


# ---------------------------------------------------------------- raw walks: emergency


def _emergency_until_judgement(parser: SpiffBpmnParser) -> BpmnWorkflow:
    wf = start(parser, "emergency")
    for task_id in ("judge_urgency", "respond"):
        assert ready(wf) == [task_id]
        assert wf.get_tasks(state=TaskState.READY, manual=True)[0].task_spec.lane == "発見機関"
        complete(wf, task_id)
    # The requested agency confirms in parallel with the finder's next step.
    assert ready(wf) == ["confirm_request", "end_emergency"]
    [confirm] = [t for t in wf.get_tasks(state=TaskState.READY, manual=True) if t.task_spec.bpmn_id == "confirm_request"]
    assert confirm.data["requested_group"] == "choju_anshin"
    complete(wf, "confirm_request")
    complete(wf, "end_emergency")
    assert ready(wf) == ["continuing_support"]
    return wf


def test_emergency_with_continuation_throws_the_referral_message(parser: SpiffBpmnParser) -> None:
    wf = _emergency_until_judgement(parser)
    complete(wf, "continuing_support", {"continue_support": True, "reason": "家族全体への支援が必要"})
    assert wf.is_completed()
    assert completed_path(wf)[-1] == "handover"
    handover = wf.spec.task_specs["handover"]
    assert handover.lane == "事務局"
    assert handover.extensions["properties"] == {"startsProcess": "multi_agency"}
    events = wf.get_events()
    assert [e.event_definition.name for e in events] == ["multi_agency_referral"]
    assert events[0].payload == {}  # no payload expression: the engine reads the case data itself
    assert wf.get_events() == []  # the queue is cleared once read


def test_emergency_without_continuation_just_ends(parser: SpiffBpmnParser) -> None:
    wf = _emergency_until_judgement(parser)
    complete(wf, "continuing_support", {"continue_support": False})
    assert wf.is_completed()
    path = completed_path(wf)
    assert path[-1] == "ended" and "handover" not in path
    assert wf.get_events() == []


def test_emergency_end_event_declares_the_message(parser: SpiffBpmnParser) -> None:
    root = xml(BPMN_FILES["emergency"]).getroot()
    [message] = root.findall("bpmn:message", NS)
    assert (message.get("id"), message.get("name")) == ("Message_referral", "multi_agency_referral")
    definition = root.find("bpmn:process/bpmn:endEvent[@id='handover']/bpmn:messageEventDefinition", NS)
    assert definition.get("messageRef") == "Message_referral"


# ---------------------------------------------------------------- raw walks: outreach

REFERRAL = {"source": "water", "household_ref": "W-0412", "amount_yen": 42000, "months_in_arrears": 5}
OUTREACH_SAMPLE = {
    "outreach_home_visit": {"visited_on": "2021-06-01", "situation": "単身世帯。", "consent": "not_given"},
    "outreach_close": {"close_reason": "unreachable"},
}


def _outreach_referred(parser: SpiffBpmnParser, interval: str = "PT0S", max_attempts: int = 3) -> BpmnWorkflow:
    """An outreach workflow that received its referral and whose reception set the pace."""
    wf = BpmnWorkflow(parser.get_spec("outreach"), parser.get_subprocess_specs("outreach"),
                      script_engine=PythonScriptEngine())
    wf.get_tasks(state=TaskState.READY)[0].set_data(**REFERRAL)
    wf.do_engine_steps()
    assert ready(wf) == []
    [waiting] = wf.get_tasks(state=TaskState.WAITING)
    assert waiting.task_spec.name == "start"
    definition = waiting.task_spec.event_definition
    assert definition.name == "outreach_referral"
    wf.send_event(BpmnEvent(definition, payload=dict(REFERRAL)))
    wf.do_engine_steps()
    assert ready(wf) == ["assign"]
    data = wf.get_tasks(state=TaskState.READY, manual=True)[0].data
    assert {k: data[k] for k in ("attempts", "attempt_interval", "max_attempts", "summary")} == {
        "attempts": 0, "attempt_interval": "P7D", "max_attempts": 3,
        "summary": "上下水道料金の滞納 5か月・42,000円（世帯番号 W-0412）"}
    complete(wf, "assign", {"summary": data["summary"], "attempt_interval": interval, "max_attempts": max_attempts})
    return wf


def _attempt(wf: BpmnWorkflow, result: str) -> None:
    assert ready(wf) == ["attempt"]
    complete(wf, "attempt", {"method": "phone", "result": result})


@pytest.mark.parametrize(
    ("results", "decision", "end"),
    [
        pytest.param(["reached"], "connect", "handover", id="reached-connect"),
        pytest.param(["not_reached", "reached"], "consultation", "consulted", id="second-try-consultation"),
        pytest.param(["reached"], "close", "closed", id="reached-close"),
        pytest.param(["not_reached"] * 3, None, "closed", id="never-reached"),
    ],
)
def test_outreach_branches(parser: SpiffBpmnParser, results: list[str], decision: str | None, end: str) -> None:
    wf = _outreach_referred(parser)
    for result in results:
        _attempt(wf, result)
    if decision is not None:
        assert ready(wf) == ["home_visit"]
        complete(wf, "home_visit", OUTREACH_SAMPLE["outreach_home_visit"])
        complete(wf, "decide", {"next": decision, "reason": "理由"})
    if end == "closed":
        assert ready(wf) == ["close"]
        complete(wf, "close", OUTREACH_SAMPLE["outreach_close"])
    assert wf.is_completed()
    path = completed_path(wf)
    assert path[-1] == end
    assert path.count("attempt") == len(results) and path.count("wait_next") == len(results) - 1
    assert wf.last_task.data["attempts"] == len(results)
    events = [e.event_definition.name for e in wf.get_events()]
    assert events == (["multi_agency_referral"] if end == "handover" else [])


def test_outreach_stops_at_the_case_maximum_of_attempts(parser: SpiffBpmnParser) -> None:
    wf = _outreach_referred(parser, max_attempts=1)
    _attempt(wf, "not_reached")
    assert ready(wf) == ["close"] and wf.waiting_events() == []


def test_outreach_waits_the_case_interval_between_attempts(parser: SpiffBpmnParser) -> None:
    wf = _outreach_referred(parser, interval="P7D")
    _attempt(wf, "not_reached")
    assert ready(wf) == []
    [event] = wf.waiting_events()
    assert event.event_type == "DurationTimerEventDefinition"
    due = datetime.fromisoformat(event.value)
    assert abs(due - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=1)
    with spiff_time(due + timedelta(seconds=1)):
        wf.refresh_timers()
        wf.do_engine_steps()
    assert ready(wf) == ["attempt"]


def test_outreach_hand_over_and_referral_messages(parser: SpiffBpmnParser) -> None:
    root = xml(BPMN_FILES["outreach"]).getroot()
    messages = {m.get("id"): m.get("name") for m in root.findall("bpmn:message", NS)}
    assert messages == {"Message_outreach_referral": "outreach_referral",
                        "Message_outreach_handover": "multi_agency_referral"}
    start_def = root.find("bpmn:process/bpmn:startEvent[@id='start']/bpmn:messageEventDefinition", NS)
    assert start_def.get("messageRef") == "Message_outreach_referral"
    spec = parser.get_spec("outreach")
    assert spec.task_specs["start"].extensions["properties"] == {"formKey": START_FORMS["outreach"]}
    assert not list(form_validator("outreach_referral").iter_errors(REFERRAL))
    handover = spec.task_specs["handover"]
    assert handover.extensions["properties"] == {"startsProcess": "multi_agency"}
    assert handover.event_definition.name == "multi_agency_referral"
