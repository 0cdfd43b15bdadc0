"""Designers' drafts (engine.workflow.drafts): one per designer and process, replaced on save, refused
when it is not BPMN/DMN XML, private to its designer."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.clock import FrozenClock
from engine.errors import Conflict, Forbidden, Invalid, NotFound
from engine.models import ProcessDraft, User
from engine.security import users
from engine.settings import ROOT
from engine.workflow import drafts
from tests.conftest import Personas

SIX_STEPS = (ROOT / "processes" / "multi_agency.bpmn").read_text(encoding="utf-8")
CRITERIA = (ROOT / "processes" / "intake_criteria.dmn").read_text(encoding="utf-8")


@pytest.fixture
def designer(session: Session, clock: FrozenClock) -> User:
    user = users.add_user(session, "sekkei.mori", ["secretariat"], ["designer"], clock.now(), "森 設計者")
    session.commit()
    return user


def test_a_draft_is_saved_replaced_and_deleted(session: Session, designer: User, clock: FrozenClock) -> None:
    drafts.save_draft(session, designer, "multi_agency", SIX_STEPS, {"intake_criteria.dmn": CRITERIA}, 1,
                      clock.now())
    clock.advance(hours=1)
    changed = SIX_STEPS.replace("1. 相談・調整", "1. 相談")
    drafts.save_draft(session, designer, "multi_agency", changed, None, 1, clock.now())
    draft = drafts.get_draft(session, designer, "multi_agency")
    assert (draft.bpmn, draft.dmn, draft.base_version, draft.updated_at) == (changed, {}, 1, clock.now())
    assert session.scalar(select(func.count()).select_from(ProcessDraft)) == 1
    drafts.delete_draft(session, designer, "multi_agency")
    with pytest.raises(NotFound):
        drafts.get_draft(session, designer, "multi_agency")


def test_each_designer_sees_only_their_own_draft(session: Session, designer: User, personas: Personas,
                                                 clock: FrozenClock) -> None:
    drafts.save_draft(session, designer, "multi_agency", SIX_STEPS, {}, None, clock.now())
    with pytest.raises(NotFound):
        drafts.get_draft(session, personas.admin, "multi_agency")
    assert [d.process_key for d in drafts.list_drafts(session, designer)] == ["multi_agency"]
    assert drafts.list_drafts(session, personas.admin) == []


def test_drafts_are_for_designers_and_administrators(session: Session, personas: Personas,
                                                     clock: FrozenClock) -> None:
    with pytest.raises(Forbidden):
        drafts.save_draft(session, personas.secretariat, "multi_agency", SIX_STEPS, {}, None, clock.now())
    assert session.scalar(select(func.count()).select_from(ProcessDraft)) == 0


@pytest.mark.parametrize(("key", "bpmn", "dmn", "base", "field"), [
    ("multi agency", SIX_STEPS, {}, None, "process_key"),
    ("1st", SIX_STEPS, {}, None, "process_key"),
    ("p" * 101, SIX_STEPS, {}, None, "process_key"),
    ("multi_agency", "", {}, None, "bpmn"),
    ("multi_agency", 42, {}, None, "bpmn"),
    ("multi_agency", "<bpmn:definitions", {}, None, "bpmn"),
    ("multi_agency", "<html/>", {}, None, "bpmn"),
    ("multi_agency", "<a>" + "x" * drafts.MAX_XML_CHARS + "</a>", {}, None, "bpmn"),
    ("multi_agency", SIX_STEPS, ["x"], None, "dmn"),
    ("multi_agency", SIX_STEPS, {"../x.dmn": CRITERIA}, None, "dmn.../x.dmn"),
    ("multi_agency", SIX_STEPS, {"c.dmn": "<x"}, None, "dmn.c.dmn"),
    ("multi_agency", SIX_STEPS, {}, 0, "base_version"),
    ("multi_agency", SIX_STEPS, {}, True, "base_version"),
    ("multi_agency", SIX_STEPS, {}, "1", "base_version"),
])
def test_a_draft_that_is_not_bpmn_is_refused_naming_the_field(session: Session, designer: User,
                                                              clock: FrozenClock, key: str, bpmn: object,
                                                              dmn: object, base: object, field: str) -> None:
    with pytest.raises(Invalid) as caught:
        drafts.save_draft(session, designer, key, bpmn, dmn, base, clock.now())
    assert field in caught.value.fields
    assert session.scalar(select(func.count()).select_from(ProcessDraft)) == 0


def test_deploying_a_draft_makes_the_next_version_and_drops_the_draft(session: Session, env, designer: User,  # noqa: ANN001
                                                                      clock: FrozenClock) -> None:
    changed = SIX_STEPS.replace("1. 相談・調整", "1. 相談")
    drafts.save_draft(session, designer, "multi_agency", changed, {}, 1, clock.now())
    result = drafts.deploy_draft(session, env, designer, changed, {}, "multi_agency", False, clock.now())
    assert (result.process_key, result.version, result.created) == ("multi_agency", 2, True)
    assert drafts.list_drafts(session, designer) == []
    listed = {p["key"]: p for p in drafts.catalogue(session, designer)}
    assert [v["version"] for v in listed["multi_agency"]["versions"]] == [2, 1]
    assert listed["multi_agency"]["versions"][0]["author"] == "sekkei.mori"
    assert listed["multi_agency"]["versions"][1]["dmn"] == ["intake_criteria.dmn"]
    assert drafts.version(session, designer, "multi_agency", 2).bundle["bpmn"] == {"multi_agency.bpmn": changed}


def test_deploying_over_a_process_not_opened_needs_confirmation(session: Session, env, designer: User,  # noqa: ANN001
                                                                clock: FrozenClock) -> None:
    changed = SIX_STEPS.replace("1. 相談・調整", "1. 相談")
    with pytest.raises(Conflict) as caught:
        drafts.deploy_draft(session, env, designer, changed, {}, None, False, clock.now())
    assert "process_key" in caught.value.fields
    assert drafts.version(session, designer, "multi_agency", 1)
    with pytest.raises(NotFound):
        drafts.version(session, designer, "multi_agency", 2)
    assert drafts.deploy_draft(session, env, designer, changed, {}, None, True, clock.now()).version == 2


def test_validating_a_draft_names_the_element_at_fault(session: Session, env, designer: User) -> None:  # noqa: ANN001
    assert drafts.validate_draft(session, env, designer, SIX_STEPS) == {"errors": [], "warnings": []}
    broken = SIX_STEPS.replace('value="intake" />', 'value="no_such_form" />', 1)
    report = drafts.validate_draft(session, env, designer, broken)
    assert [e["element"] for e in report["errors"]] == ["intake"]
    assert "no_such_form" in report["errors"][0]["message"]
