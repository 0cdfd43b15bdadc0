"""Process versions (engine.workflow.versions): immutable versions, the shared-process-id rule, diff,
migration of running cases (preview, bulk with a result per case, timers keep their due times,
history/audit/outbox, moving back), forms stored as versions, and export."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.errors import DeployError, Invalid
from engine.models import AuditRecord, Case, CaseEvent, OutboxEvent, ProcessDefinition, User
from engine.ops.check import check_all
from engine.security import users
from engine.settings import ROOT
from engine.status import EventKind, OutboxKind, TaskState, TimerStatus
from engine.workflow import form_store, lint, runtime, specs, versions
from tests.conftest import Personas
from tests.engine.support import ASSESSMENT, JUDGEMENT, Driver, intake, meeting, plan

EMERGENCY = (ROOT / "processes" / "emergency.bpmn").read_text(encoding="utf-8")
MULTI_AGENCY = (ROOT / "processes" / "multi_agency.bpmn").read_text(encoding="utf-8")
RENAMED = EMERGENCY.replace("2. 対応もしくは連携を要請", "2. 対応・連携の要請")
REPLACED = EMERGENCY.replace("judge_urgency", "judge_danger")


def _without_first_step(xml: str) -> str:
    """The emergency diagram without its first step: the start event leads straight to `respond`."""
    for pattern, replacement in [
        (r"\s*<bpmn:flowNodeRef>judge_urgency</bpmn:flowNodeRef>", ""),
        (r"\s*<bpmn:userTask id=\"judge_urgency\".*?</bpmn:userTask>", ""),
        (r"<bpmn:incoming>flow_judge_respond</bpmn:incoming>", "<bpmn:incoming>flow_start_judge</bpmn:incoming>"),
        (r'targetRef="judge_urgency"', 'targetRef="respond"'),
        (r"\s*<bpmn:sequenceFlow id=\"flow_judge_respond\"[^>]*/>", ""),
        (r"\s*<bpmndi:BPMNShape id=\"judge_urgency_di\".*?</bpmndi:BPMNShape>", ""),
        (r"\s*<bpmndi:BPMNEdge id=\"flow_judge_respond_di\".*?</bpmndi:BPMNEdge>", ""),
    ]:
        xml, n = re.subn(pattern, replacement, xml, flags=re.DOTALL)
        assert n == 1, pattern
    return xml


WITHOUT_FIRST_STEP = _without_first_step(EMERGENCY)


@pytest.fixture
def designer(driver: Driver) -> int:
    with driver.factory() as s:
        user = users.add_user(s, "sekkei.nakamura", ["chiiki-kyosei"], ["designer"], driver.clock.now(), "中村 亮")
        s.commit()
        return user.id


def deploy(driver: Driver, designer: int, xml: str, comment: str = "変更") -> specs.DeployResult:
    with driver.factory() as s:
        return versions.deploy_diagram(s, driver.env, s.get(User, designer), xml, comment, driver.clock.now())


def migrate(driver: Driver, designer: int, key: str, old: int, new: int,
            cases: list[str] | None = None) -> versions.MigrationResult:
    with driver.factory() as s:
        return versions.migrate(s, driver.env, s.get(User, designer), key, old, new, cases, driver.clock.now())


def preview(driver: Driver, designer: int, key: str, old: int, new: int) -> tuple[list, list]:
    with driver.factory() as s:
        return versions.preview(s, driver.env, s.get(User, designer), key, old, new)


def version_of(driver: Driver, case_id: str) -> int:
    with driver.factory() as s:
        return s.get(ProcessDefinition, s.get(Case, case_id).definition_id).version


def problems(driver: Driver) -> list[str]:
    with driver.factory() as s:
        return [str(p) for p in check_all(s, driver.env).problems]


def waiting_for_monitoring(driver: Driver, p: Personas) -> str:
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    driver.complete_step(p.secretariat, case_id, "assessment", ASSESSMENT)
    driver.complete_step(p.secretariat, case_id, "plan", plan("P14D"))
    driver.complete_step(p.secretariat, case_id, "meeting", meeting())
    assert driver.open_steps(case_id) == []
    return case_id


def test_a_new_case_uses_the_new_version_while_an_old_one_stays(driver: Driver, personas: Personas,
                                                                 designer: int) -> None:
    old = driver.start(personas.caseworker, "emergency")
    assert deploy(driver, designer, RENAMED).version == 2
    new = driver.start(personas.caseworker, "emergency")
    assert (version_of(driver, old), version_of(driver, new)) == (1, 2)
    driver.complete_step(personas.caseworker, old, "judge_urgency", JUDGEMENT)
    driver.complete_step(personas.caseworker, new, "judge_urgency", JUDGEMENT)
    assert driver.task(old, "respond").name == "2. 対応もしくは連携を要請"
    assert driver.task(new, "respond").name == "2. 対応・連携の要請"


def test_a_deployed_version_is_never_changed(driver: Driver, designer: int) -> None:
    before = driver.definitions("emergency")[0]
    deploy(driver, designer, RENAMED)
    first, second = driver.definitions("emergency")
    assert (first.id, first.content_hash, first.bundle, first.deployed_at) == \
        (before.id, before.content_hash, before.bundle, before.deployed_at)
    assert second.version == 2 and second.content_hash != first.content_hash


def test_a_changed_form_takes_effect_with_the_next_deployed_version(driver: Driver, personas: Personas,
                                                                   designer: int) -> None:
    old_case = driver.start(personas.caseworker, "emergency")
    with driver.factory() as s:
        schema = dict(form_store.get_form(s, None, "emergency_judgement").schema)
        schema["title"] = "危険度の判断（改）"
        row, stored = form_store.put_form(s, s.get(User, designer), "emergency_judgement", schema,
                                          driver.clock.now())
        assert stored and row.version == 2
    # not yet: the deployed version pins the schema it was deployed with
    with driver.factory() as s:
        assert driver.env.specs.for_case(s.get(Case, old_case)).forms["emergency_judgement"]["title"] != schema["title"]
    assert deploy(driver, designer, RENAMED).version == 2
    new_case = driver.start(personas.caseworker, "emergency")
    with driver.factory() as s:
        assert driver.env.specs.for_case(s.get(Case, new_case)).forms["emergency_judgement"]["title"] == schema["title"]
        assert driver.env.specs.for_case(s.get(Case, old_case)).forms["emergency_judgement"]["title"] != schema["title"]


def test_a_form_that_is_not_a_valid_schema_is_refused_naming_the_problem(driver: Driver, designer: int) -> None:
    bad = {"type": "object", "properties": {"when": {"type": "string", "format": "time"}}, "required": ["who"]}
    with driver.factory() as s, pytest.raises(Invalid) as refused:
        form_store.put_form(s, s.get(User, designer), "visit", bad, driver.clock.now())
    assert set(refused.value.fields) == {"properties.when.format", "required.who"}
    with driver.factory() as s, pytest.raises(Invalid) as refused:
        form_store.put_form(s, s.get(User, designer), "visit", {"type": 5}, driver.clock.now())
    assert "type" in refused.value.fields


def test_diff_names_added_removed_and_changed_elements(driver: Driver, designer: int) -> None:
    deploy(driver, designer, RENAMED)
    deploy(driver, designer, REPLACED)
    with driver.factory() as s:
        assert versions.diff(s, driver.env, None, "emergency", 1, 2) == {"added": [], "removed": [],
                                                                       "changed": ["respond"]}
        three = versions.diff(s, driver.env, None, "emergency", 2, 3)
    assert three["added"] == ["judge_danger"] and three["removed"] == ["judge_urgency"]
    assert "respond" in three["changed"]  # its incoming flow changed

def test_preview_and_bulk_migration_with_one_blocked_case(driver: Driver, personas: Personas, designer: int,
                                                         database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.main import main

    at_first_step = driver.start(personas.caseworker, "emergency")
    at_second_step = driver.start(personas.caseworker, "emergency")
    driver.complete_step(personas.caseworker, at_second_step, "judge_urgency", JUDGEMENT)
    respond = driver.task(at_second_step, "respond")
    deploy(driver, designer, WITHOUT_FIRST_STEP)

    movable, blocked = preview(driver, designer, "emergency", 1, 2)
    assert [m["case_id"] for m in movable] == [at_second_step]
    assert [b["case_id"] for b in blocked] == [at_first_step]
    assert "judge_urgency" in blocked[0]["reason"]

    driver.clock.advance(hours=1)
    result = migrate(driver, designer, "emergency", 1, 2, [at_first_step, at_second_step])
    assert result.migrated == [{"case_id": at_second_step}]
    assert [f["case_id"] for f in result.failed] == [at_first_step] and "judge_urgency" in result.failed[0]["reason"]
    assert (version_of(driver, at_first_step), version_of(driver, at_second_step)) == (1, 2)
    # the open task is the same task (its id, draft and assignee kept)
    assert [t.id for t in driver.open_tasks(at_second_step)] == [respond.id]
    assert problems(driver) == []
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["check"]) == 0  # tsunagu check
    # and the case runs on under version 2
    driver.complete_step(personas.caseworker, at_second_step, "respond",
                         {"action": "request", "requested_groups": ["choju-anshin"], "response": "救急搬送を要請"})
    assert driver.open_steps(at_second_step) == ["confirm_request", "end_emergency"]


def test_a_migration_is_recorded_in_history_audit_and_outbox(driver: Driver, personas: Personas,
                                                             designer: int) -> None:
    case_id = driver.start(personas.caseworker, "emergency")
    deploy(driver, designer, RENAMED)
    assert migrate(driver, designer, "emergency", 1, 2).migrated == [{"case_id": case_id}]
    with driver.factory() as s:
        event = s.scalar(select(CaseEvent).where(CaseEvent.case_id == case_id,
                                                 CaseEvent.kind == EventKind.CASE_MIGRATED))
        assert event.data == {"from": 1, "to": 2} and event.actor_id == designer
        outbox = s.scalar(select(OutboxEvent).where(OutboxEvent.case_id == case_id,
                                                    OutboxEvent.kind == OutboxKind.CASE_MIGRATED))
        assert outbox.payload["from_version"] == 1 and outbox.payload["to_version"] == 2
        record = s.scalar(select(AuditRecord).where(AuditRecord.case_id == case_id,
                                                    AuditRecord.action == "case.migrate"))
        assert record.actor_name == "sekkei.nakamura" and record.detail == {"process": "emergency", "from": 1,
                                                                            "to": 2}


def test_timers_keep_their_due_times_across_a_migration_and_back(driver: Driver, personas: Personas,
                                                                 designer: int) -> None:
    case_id = waiting_for_monitoring(driver, personas)
    (timer,) = driver.timers(case_id, TimerStatus.PENDING)
    renamed = MULTI_AGENCY.replace('name="5. モニタリング"', 'name="5. モニタリング（定期）"')
    assert deploy(driver, designer, renamed).version == 2
    driver.clock.advance(days=3)
    assert preview(driver, designer, "multi_agency", 1, 2)[1] == []
    assert migrate(driver, designer, "multi_agency", 1, 2).migrated == [{"case_id": case_id}]
    (after,) = driver.timers(case_id, TimerStatus.PENDING)
    assert (after.id, after.task_id, after.due_at) == (timer.id, timer.task_id, timer.due_at)
    with driver.factory() as s:
        wf = runtime.load(driver.env.specs.for_case(s.get(Case, case_id)), s.get(Case, case_id).state,
                          s.get(Case, case_id).serializer_version)
        assert [due for _, due in runtime.waiting_timers(wf)] == [timer.due_at.isoformat()]
    assert problems(driver) == []

    # moving back is possible while the older version exists
    assert migrate(driver, designer, "multi_agency", 2, 1).migrated == [{"case_id": case_id}]
    assert version_of(driver, case_id) == 1
    (back,) = driver.timers(case_id, TimerStatus.PENDING)
    assert back.due_at == timer.due_at
    assert migrate(driver, designer, "multi_agency", 1, 2).migrated == [{"case_id": case_id}]

    # the timer fires when it was due, and the next step is the new version's
    driver.clock.advance(days=10)
    assert driver.fire() == 0
    driver.clock.advance(days=2)
    assert driver.fire() == 1
    assert driver.task(case_id, "monitoring").name == "5. モニタリング（定期）"
    assert problems(driver) == []


def test_a_case_not_on_the_from_version_fails_alone(driver: Driver, personas: Personas, designer: int) -> None:
    on_one = driver.start(personas.caseworker, "emergency")
    deploy(driver, designer, RENAMED)
    on_two = driver.start(personas.caseworker, "emergency")
    result = migrate(driver, designer, "emergency", 1, 2, [on_two, on_one, "no-such-case"])
    assert result.migrated == [{"case_id": on_one}]
    assert [f["case_id"] for f in result.failed] == [on_two, "no-such-case"]
    assert "version 2" in result.failed[0]["reason"]


def test_migration_refuses_bad_versions(driver: Driver, designer: int) -> None:
    deploy(driver, designer, RENAMED)
    with pytest.raises(Invalid) as same:
        migrate(driver, designer, "emergency", 1, 1)
    assert "to" in same.value.fields
    with pytest.raises(Invalid):
        migrate(driver, designer, "emergency", "1", 2)  # type: ignore[arg-type]


def test_cli_deploy_refuses_another_diagram_with_the_same_process_id(
        driver: Driver, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    other = tmp_path / "other"
    other.mkdir()
    # Another diagram (another <definitions id>) whose process happens to be called emergency.
    (other / "emergency.bpmn").write_text(RENAMED.replace('id="Definitions_emergency"', 'id="Definitions_x"'),
                                          encoding="utf-8")
    assert main(["deploy", str(other)]) != 0
    assert "--new-version" in capsys.readouterr().err
    assert len(driver.definitions("emergency")) == 1
    assert main(["deploy", str(other), "--new-version", "--comment", "別の図から"]) == 0
    assert "emergency v2 deployed" in capsys.readouterr().out
    second = driver.definitions("emergency")[1]
    assert second.comment == "別の図から" and second.deployed_by

    # the same diagram needs no flag
    (other / "emergency.bpmn").write_text(EMERGENCY.replace('id="Definitions_emergency"', 'id="Definitions_x"'),
                                          encoding="utf-8")
    assert main(["deploy", str(other)]) == 0


def test_shared_process_id_rule(driver: Driver) -> None:
    sources = specs.read_sources(ROOT / "processes", ROOT / "forms")
    sources.bpmn = {"emergency.bpmn": RENAMED.replace('id="Definitions_emergency"', 'id="Definitions_other"')}
    with driver.factory() as s, pytest.raises(DeployError) as refused:
        specs.deploy(s, sources, driver.env.org, driver.clock.now())
    assert refused.value.element == "emergency"
    with driver.factory() as s:
        (result,) = specs.deploy(s, sources, driver.env.org, driver.clock.now(), new_version=True)
    assert result.version == 2


def test_export_then_a_fresh_init_gives_the_same_content_hashes(
        driver: Driver, designer: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.main import main

    deploy(driver, designer, RENAMED)
    with driver.factory() as s:
        written = versions.export(s, tmp_path / "out")
        hashes = {r.process_key: r.content_hash for r in versions.latest_rows(s)}
    names = {p.relative_to(tmp_path / "out").as_posix() for p in written}
    assert {"emergency.bpmn", "multi_agency.bpmn", "outreach.bpmn", "intake_criteria.dmn",
            "forms/intake.json"} <= names
    assert json.loads((tmp_path / "out" / "forms" / "intake.json").read_text(encoding="utf-8")) == \
        json.loads((ROOT / "forms" / "intake.json").read_text(encoding="utf-8"))

    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("DATABASE_URL", fresh)
    monkeypatch.setenv("TSUNAGU_PROCESSES", str(tmp_path / "out"))
    assert main(["init"]) == 0
    from engine.ops.db import make_engine, make_session_factory

    engine = make_engine(fresh)
    try:
        with make_session_factory(engine)() as s:
            again = {r.process_key: r.content_hash for r in versions.latest_rows(s)}
    finally:
        engine.dispose()
    assert again == hashes


def test_cli_export_writes_files(driver: Driver, tmp_path: Path, database_url: str,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.main import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["export", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "emergency.bpmn").read_text(encoding="utf-8") == EMERGENCY


def test_no_open_task_loses_its_row_in_a_migration(driver: Driver, personas: Personas, designer: int) -> None:
    case_id = driver.start(personas.caseworker, "emergency")
    before = driver.open_tasks(case_id)
    deploy(driver, designer, RENAMED)
    migrate(driver, designer, "emergency", 1, 2)
    after = driver.open_tasks(case_id)
    assert [(t.id, t.state, t.due_at) for t in after] == [(t.id, TaskState.OPEN, t.due_at) for t in before]
    assert driver.history(case_id, EventKind.TASK_CANCELLED) == []


def test_a_case_at_a_step_whose_id_changed_moves_to_the_aligned_step(driver: Driver, personas: Personas,
                                                                     designer: int) -> None:
    # SpiffWorkflow aligns judge_urgency with judge_danger (same place in the flow).
    case_id = driver.start(personas.caseworker, "emergency")
    (task,) = driver.open_tasks(case_id)
    deploy(driver, designer, REPLACED)
    assert migrate(driver, designer, "emergency", 1, 2).migrated == [{"case_id": case_id}]
    (moved,) = driver.open_tasks(case_id)
    assert (moved.id, moved.step) == (task.id, "judge_danger")
    assert problems(driver) == []
    driver.complete_step(personas.caseworker, case_id, "judge_danger", JUDGEMENT)
    assert driver.open_steps(case_id) == ["respond"]


def test_a_stored_version_cannot_be_changed(driver: Driver) -> None:
    with driver.factory() as s:
        row = s.scalar(select(ProcessDefinition).where(ProcessDefinition.process_key == "emergency"))
        row.comment = "書き換え"
        with pytest.raises(ValueError, match="immutable"):
            s.flush()
        s.rollback()


@pytest.mark.parametrize("path", sorted((ROOT / "processes").glob("*.bpmn")), ids=lambda p: p.name)
def test_the_shipped_diagrams_pass_bpmnlint(path: Path) -> None:
    assert lint.lint(path.read_text(encoding="utf-8")) == ([], [])


def test_without_node_the_diagram_is_not_linted_and_a_warning_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    errors, warnings = lint.lint(EMERGENCY)
    assert errors == [] and len(warnings) == 1 and "node is not installed" in warnings[0].message
