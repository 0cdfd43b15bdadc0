"""Test runs of a draft (engine.workflow.sandbox): the path a draft takes with sample answers, where it
stops and why, a runaway script stopped with its element named, and nothing written."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.clock import FrozenClock
from engine.env import Env
from engine.errors import DeployError, Forbidden, Invalid
from engine.models import AuditRecord, Case, HumanTask, ProcessDefinition, User
from engine.security import users
from engine.settings import ROOT, Limits
from engine.workflow import drafts, sandbox
from engine.workflow.expressions import TIME_LIMIT_MESSAGE
from tests.conftest import Personas
from tests.engine.support import ADVICE, ASSESSMENT, CLOSURE, diagram, intake, meeting, monitoring, plan

SIX_STEPS = (ROOT / "processes" / "multi_agency.bpmn").read_text(encoding="utf-8")


@pytest.fixture
def designer(session: Session, clock: FrozenClock) -> User:
    user = users.add_user(session, "sekkei.mori", ["secretariat"], ["designer"], clock.now(), "森 設計者")
    session.commit()
    return user


def run(session: Session, env: Env, actor: User, bpmn: str, answers: dict, now, limits: Limits | None = None):  # noqa: ANN001, ANN201
    sources = drafts.known_sources(session, env.settings, bpmn)
    return sandbox.test_run(actor, sources, env.org, answers, now, limits)


def counts(session: Session) -> tuple[int, ...]:
    return tuple(session.scalar(select(func.count()).select_from(m)) for m in
                 (Case, HumanTask, ProcessDefinition, AuditRecord))


def test_six_steps_run_to_the_end_with_answers_for_every_step(session: Session, env: Env, designer: User,
                                                              clock: FrozenClock) -> None:
    before = counts(session)
    answers = {"intake": intake(), "assessment": ASSESSMENT, "plan": plan(), "meeting": meeting(),
               "monitoring": monitoring("close"), "closure": CLOSURE}
    result = run(session, env, designer, SIX_STEPS, answers, clock.now())
    assert result.status == sandbox.RunStatus.COMPLETED, " ".join(result.path[:30])
    steps = [e for e in result.path if e in answers]
    assert steps == ["intake", "assessment", "plan", "meeting", "monitoring", "closure"]
    # the decision table and the monitoring timer are on the path, in order
    assert result.path.index("screening") < result.path.index("assessment")
    assert result.path.index("monitoring_due") < result.path.index("monitoring")
    assert result.path[0] == "start" and result.path[-1] == "closed"
    assert result.error is None
    assert counts(session) == before


def test_a_run_stops_at_the_first_step_without_answers(session: Session, env: Env, designer: User,
                                                       clock: FrozenClock) -> None:
    result = run(session, env, designer, SIX_STEPS, {"intake": intake(False, True, True, False)}, clock.now())
    # not eligible (図4): the path goes to the advice step, which has no answers
    assert result.status == sandbox.RunStatus.WAITING
    assert result.waiting == [{"element": "advice", "kind": "task"}]
    assert "assessment" not in result.path and "screening" in result.path


def test_answers_the_form_refuses_stop_the_run_at_that_step(session: Session, env: Env, designer: User,
                                                          clock: FrozenClock) -> None:
    result = run(session, env, designer, SIX_STEPS, {"intake": {"summary": 3}}, clock.now())
    assert result.status == sandbox.RunStatus.ERROR
    assert result.error["element"] == "intake"
    assert "summary" in result.error["fields"]


def test_answers_that_loop_forever_are_stopped_after_the_step_limit(session: Session, env: Env, designer: User,
                                                                    clock: FrozenClock) -> None:
    answers = {"intake": intake(), "assessment": ASSESSMENT, "plan": plan(), "meeting": meeting(),
               "monitoring": monitoring("continue")}
    result = run(session, env, designer, SIX_STEPS, answers, clock.now())
    assert result.status == sandbox.RunStatus.STEP_LIMIT
    assert result.path.count("monitoring") > 10


def test_a_runaway_script_is_stopped_with_its_element_named(session: Session, env: Env, designer: User,
                                                            clock: FrozenClock, tmp_path: Path) -> None:
    bpmn = (diagram(tmp_path, script="i = 0\nwhile i >= 0:\n    i = i + 1") / "probe.bpmn").read_text()
    before = counts(session)
    result = run(session, env, designer, bpmn, {"work": ADVICE}, clock.now(), Limits(cpu_seconds=0.2))
    assert result.status == sandbox.RunStatus.ERROR
    assert result.error["element"] == "middle"
    assert result.error["message"] == TIME_LIMIT_MESSAGE
    assert result.path == ["start", "work"]
    assert counts(session) == before


def test_a_script_reaching_outside_task_data_is_refused_before_it_runs(session: Session, env: Env,
                                                                        designer: User, clock: FrozenClock,
                                                                        tmp_path: Path) -> None:
    bpmn = (diagram(tmp_path, script="x = ().__class__.__bases__") / "probe.bpmn").read_text()
    with pytest.raises(DeployError) as caught:
        run(session, env, designer, bpmn, {"work": ADVICE}, clock.now())
    assert caught.value.element == "middle"


def test_a_condition_that_fails_names_its_gateway(session: Session, env: Env, designer: User, clock: FrozenClock,
                                                  tmp_path: Path) -> None:
    bpmn = (diagram(tmp_path, condition="undefined_name == 2") / "probe.bpmn").read_text()
    result = run(session, env, designer, bpmn, {"work": ADVICE}, clock.now())
    assert result.status == sandbox.RunStatus.ERROR
    assert result.error["element"] == "choice"
    assert "undefined_name" in result.error["message"]


@pytest.mark.parametrize("answers", ["intake", ["intake"], {"intake": "yes"}, {"intake": [1]}])
def test_answers_not_an_object_per_step_are_refused(session: Session, env: Env, designer: User,
                                                    clock: FrozenClock, answers: object) -> None:
    with pytest.raises(Invalid) as caught:
        run(session, env, designer, SIX_STEPS, answers, clock.now())
    assert any(k.startswith("answers") for k in caught.value.fields)


def test_only_designers_and_administrators_may_test_run(session: Session, env: Env, personas: Personas,
                                                        clock: FrozenClock) -> None:
    with pytest.raises(Forbidden):
        run(session, env, personas.secretariat, SIX_STEPS, {}, clock.now())
    result = run(session, env, personas.admin, SIX_STEPS, {}, clock.now())
    assert result.waiting == [{"element": "intake", "kind": "task"}]


def test_a_test_run_dict_is_what_the_api_sends(session: Session, env: Env, designer: User,
                                               clock: FrozenClock) -> None:
    result = run(session, env, designer, SIX_STEPS, {}, clock.now())
    assert set(result.as_dict()) == {f.name for f in dataclasses.fields(result)}
