"""The reports' form of the visibility clause (`visible_cases_bulk_clause`) keeps exactly the
cases the per-case form (`visible_cases_clause`) keeps, for every way a case becomes visible."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from engine.clock import FrozenClock
from engine.env import Env
from engine.models import Case, CaseMember, HumanTask, ProcessDefinition
from engine.security import users
from engine.security.access import visible_cases_bulk_clause, visible_cases_clause
from engine.status import CaseStatus, TaskState
from tests.conftest import Personas


def _case(session: Session, now, number: str, referring: str) -> str:  # noqa: ANN001
    cid = str(uuid.uuid4())
    definition = session.scalar(select(ProcessDefinition.id).where(ProcessDefinition.process_key == "multi_agency"))
    session.execute(insert(Case), [{"id": cid, "number": number, "process_key": "multi_agency", "definition_id": definition,
                                    "status": CaseStatus.ACTIVE, "referring_group_id": referring, "summary": number,
                                    "created_at": now, "updated_at": now, "last_event_at": now, "state": "",
                                    "serializer_version": "1", "version": 1}])
    return cid


def _task(session: Session, now, case_id: str, assignee: int | None = None, completed_by: int | None = None) -> None:  # noqa: ANN001
    session.execute(insert(HumanTask), [{
        "id": str(uuid.uuid4()), "case_id": case_id, "process_key": "multi_agency", "step": "intake",
        "name": "1. 相談・調整", "lane": "事務局", "group_id": "secretariat", "assignee_id": assignee,
        "completed_by_id": completed_by, "form_key": None,
        "state": TaskState.COMPLETED if completed_by else TaskState.OPEN, "created_at": now,
        "due_at": now + timedelta(days=3)}])


def test_bulk_visibility_keeps_the_same_cases(session: Session, env: Env, personas: Personas,
                                              clock: FrozenClock) -> None:
    now = clock.now()
    reader = users.add_user(session, "hokatsu.kakaricho", ["hokatsu-center"], ["supervisor"], now, "係長 ベンチ")
    session.flush()
    referred = _case(session, now, "MA-1", "hokatsu-center")
    member = _case(session, now, "MA-2", "wakamono-sodan")
    session.add(CaseMember(case_id=member, group_id="hokatsu-center", source="meeting", since=now))
    held = _case(session, now, "MA-3", "wakamono-sodan")
    _task(session, now, held, assignee=reader.id)
    done = _case(session, now, "MA-4", "wakamono-sodan")
    _task(session, now, done, completed_by=reader.id)
    hidden = _case(session, now, "MA-5", "wakamono-sodan")
    _task(session, now, hidden, assignee=personas.outsider.id)
    session.add(CaseMember(case_id=hidden, group_id="choju-anshin", source="meeting", since=now))
    session.flush()

    for actor in (reader, personas.caseworker, personas.outsider, personas.elder_care, personas.supervisor,
                  personas.admin):
        per_case = set(session.scalars(select(Case.id).where(visible_cases_clause(actor, env.org))))
        bulk = set(session.scalars(select(Case.id).where(visible_cases_bulk_clause(actor, env.org))))
        assert bulk == per_case, actor.name
    assert set(session.scalars(select(Case.id).where(visible_cases_bulk_clause(reader, env.org)))) == {
        referred, member, held, done}
