"""Support records (支援経過記録) through the API: recorded at any time with a kind, a time and a
text; listed newest first; editable by their author for 24 hours with the earlier text kept;
refused with the field named; every read audited; the case's 404 for an outsider."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine.models import AuditRecord, CaseNote, CaseNoteRevision
from engine.security import audit


def _case(api) -> dict:  # noqa: ANN001
    return api("caseworker").post("/api/cases", json={"process": "multi_agency",
                                                      "data": {"summary": "家賃の滞納と引きこもり"}}).json


def _trail(session, action: str) -> list[AuditRecord]:  # noqa: ANN001
    session.rollback()  # a fresh snapshot: the requests committed after the session's last read
    return list(session.scalars(select(AuditRecord).where(AuditRecord.action == action).order_by(AuditRecord.seq)))


def test_a_note_is_recorded_and_listed_newest_first(api, clock, personas) -> None:  # noqa: ANN001
    case = _case(api)
    ref = api("caseworker")
    earlier = (clock.now() - timedelta(days=2)).isoformat()
    r1 = ref.post(f"/api/cases/{case['id']}/notes", json={"kind": "visit", "text": "自宅を訪問。本人と面談。",
                                                          "occurred_at": earlier})
    assert r1.status_code == 201, r1.json
    note = r1.json
    assert (note["kind"], note["kind_label"], note["text"], note["author"]) == \
        ("visit", "訪問", "自宅を訪問。本人と面談。", personas.caseworker.name)
    assert note["at"].startswith(earlier[:19]) and note["edited_at"] is None and note["revisions"] == []
    r2 = ref.post(f"/api/cases/{case['id']}/notes", json={"kind": "phone", "text": "母から電話。"})
    assert r2.status_code == 201 and r2.json["at"] == r2.json["recorded_at"]

    listed = ref.get(f"/api/cases/{case['id']}/notes")
    assert listed.status_code == 200
    assert [n["kind"] for n in listed.json] == ["phone", "visit"]
    assert listed.headers["X-Total-Count"] == "2"
    assert [n["kind"] for n in ref.get(f"/api/cases/{case['id']}/notes?limit=1&offset=1").json] == ["visit"]


def test_the_secretariat_reads_the_notes_of_a_case_it_sees(api) -> None:  # noqa: ANN001
    case = _case(api)
    api("caseworker").post(f"/api/cases/{case['id']}/notes", json={"kind": "meeting", "text": "ケース会議"})
    assert [n["text"] for n in api("secretariat").get(f"/api/cases/{case['id']}/notes").json] == ["ケース会議"]


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "chat", "text": "x"}, "kind"),
    ({"kind": 3, "text": "x"}, "kind"),
    ({"text": "x"}, "kind"),
    ({"kind": "visit"}, "text"),
    ({"kind": "visit", "text": "   "}, "text"),
    ({"kind": "visit", "text": "あ" * 10_001}, "text"),
    ({"kind": "visit", "text": "x", "occurred_at": "2026-13-01T00:00:00+09:00"}, "occurred_at"),
    ({"kind": "visit", "text": "x", "occurred_at": "2026-01-01T00:00:00"}, "occurred_at"),
    ({"kind": "visit", "text": "x", "occurred_at": "FUTURE"}, "occurred_at"),
    ({"kind": "visit", "text": "x", "occurred_at": "PAST"}, "occurred_at"),
])
def test_bad_notes_are_refused_naming_the_field(api, clock, session, body, field) -> None:  # noqa: ANN001
    case = _case(api)
    if body.get("occurred_at") == "FUTURE":
        body = {**body, "occurred_at": (clock.now() + timedelta(hours=1)).isoformat()}
    elif body.get("occurred_at") == "PAST":
        body = {**body, "occurred_at": (clock.now() - timedelta(days=400)).isoformat()}
    r = api("caseworker").post(f"/api/cases/{case['id']}/notes", json=body)
    assert r.status_code == 422, r.json
    assert field in r.json["error"]["fields"]
    assert session.scalar(select(func.count()).select_from(CaseNote)) == 0


def test_a_slightly_fast_clock_is_tolerated(api, clock) -> None:  # noqa: ANN001
    case = _case(api)
    r = api("caseworker").post(f"/api/cases/{case['id']}/notes", json={
        "kind": "other", "text": "メモ", "occurred_at": (clock.now() + timedelta(minutes=2)).isoformat()})
    assert r.status_code == 201


def test_the_author_edits_within_24_hours_and_the_earlier_text_is_kept(api, clock, session, personas) -> None:  # noqa: ANN001
    case = _case(api)
    ref = api("caseworker")
    note = ref.post(f"/api/cases/{case['id']}/notes", json={"kind": "visit", "text": "初めの記録"}).json
    clock.advance(timedelta(hours=23))
    r = ref.patch(f"/api/cases/{case['id']}/notes/{note['id']}", json={"text": "直した記録"})
    assert r.status_code == 200, r.json
    assert r.json["text"] == "直した記録" and r.json["edited_at"] is not None
    assert [(v["text"], v["edited_by"]) for v in r.json["revisions"]] == [("初めの記録", personas.caseworker.name)]
    r = ref.patch(f"/api/cases/{case['id']}/notes/{note['id']}", json={"text": "もう一度直した"})
    assert [v["text"] for v in r.json["revisions"]] == ["初めの記録", "直した記録"]

    # Those who may read the note read its earlier texts too.
    [listed] = api("secretariat").get(f"/api/cases/{case['id']}/notes").json
    assert listed["text"] == "もう一度直した" and [v["text"] for v in listed["revisions"]] == ["初めの記録", "直した記録"]
    assert len(_trail(session, audit.Action.NOTE_EDIT)) == 2


def test_an_edit_after_24_hours_is_refused(api, clock, session) -> None:  # noqa: ANN001
    case = _case(api)
    ref = api("caseworker")
    note = ref.post(f"/api/cases/{case['id']}/notes", json={"kind": "visit", "text": "記録"}).json
    clock.advance(timedelta(hours=24, seconds=1))
    r = ref.patch(f"/api/cases/{case['id']}/notes/{note['id']}", json={"text": "遅すぎる修正"})
    assert r.status_code == 403
    assert "24" in r.json["error"]["message"]
    session.expire_all()
    assert session.get(CaseNote, note["id"]).text == "記録"
    assert session.scalar(select(func.count()).select_from(CaseNoteRevision)) == 0


def test_someone_else_may_not_edit_a_note(api, session) -> None:  # noqa: ANN001
    case = _case(api)
    note = api("caseworker").post(f"/api/cases/{case['id']}/notes", json={"kind": "visit", "text": "記録"}).json
    r = api("secretariat").patch(f"/api/cases/{case['id']}/notes/{note['id']}", json={"text": "他人の修正"})
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    session.expire_all()
    assert session.get(CaseNote, note["id"]).text == "記録"


def test_an_edit_names_a_bad_text_and_an_unknown_note(api) -> None:  # noqa: ANN001
    case, other = _case(api), _case(api)
    ref = api("caseworker")
    note = ref.post(f"/api/cases/{case['id']}/notes", json={"kind": "visit", "text": "記録"}).json
    r = ref.patch(f"/api/cases/{case['id']}/notes/{note['id']}", json={"text": ""})
    assert r.status_code == 422 and "text" in r.json["error"]["fields"]
    # A note is reached only through its own case.
    assert ref.patch(f"/api/cases/{other['id']}/notes/{note['id']}", json={"text": "x"}).status_code == 404
    assert ref.patch(f"/api/cases/{case['id']}/notes/99999", json={"text": "x"}).status_code == 404
    r = ref.patch(f"/api/cases/{case['id']}/notes/{'9' * 40}", json={"text": "x"})
    assert r.status_code == 422 and "note_id" in r.json["error"]["fields"]


def test_every_read_is_one_audit_record(api, session) -> None:  # noqa: ANN001
    case = _case(api)
    ref = api("caseworker")
    for text in ("一件目", "二件目", "三件目"):
        ref.post(f"/api/cases/{case['id']}/notes", json={"kind": "phone", "text": text})
    assert len(_trail(session, audit.Action.NOTE_CREATE)) == 3
    ref.get(f"/api/cases/{case['id']}/notes")
    api("secretariat").get(f"/api/cases/{case['id']}/notes?limit=2")
    reads = _trail(session, audit.Action.NOTE_LIST)
    assert [(r.actor_name, r.case_id, len(r.detail["notes"])) for r in reads] == [
        ("hokatsu.sato", case["id"], 3), ("kyosei.tanaka", case["id"], 2)]


def test_an_outsider_gets_the_cases_404_on_every_note_call(api, session) -> None:  # noqa: ANN001
    case = _case(api)
    note = api("caseworker").post(f"/api/cases/{case['id']}/notes", json={"kind": "visit", "text": "記録"}).json
    outsider = api("outsider")
    missing = outsider.get("/api/cases/00000000-0000-0000-0000-000000000000").json
    answers = [outsider.get(f"/api/cases/{case['id']}/notes"),
               outsider.post(f"/api/cases/{case['id']}/notes", json={"kind": "visit", "text": "覗き見"}),
               outsider.patch(f"/api/cases/{case['id']}/notes/{note['id']}", json={"text": "改ざん"})]
    assert [r.status_code for r in answers] == [404, 404, 404]
    assert all(r.json == missing for r in answers)
    assert session.scalar(select(func.count()).select_from(CaseNote)) == 1
    denied = _trail(session, audit.Action.ACCESS_DENIED)
    assert [d.detail["via"] for d in denied] == [audit.Action.NOTE_LIST, audit.Action.NOTE_CREATE,
                                                 audit.Action.NOTE_EDIT]
