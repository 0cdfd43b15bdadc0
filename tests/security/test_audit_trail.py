"""The audit trail: every read and change recorded, chained, and tampering detected."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

from sqlalchemy import delete, func, select, text, update

from engine import audit
from engine.models import AuditHead, AuditRecord, CaseEvent, OutboxEvent

INTAKE = {"multiple_targets": False, "all_targets_have_lead_department": False,
          "lead_department_can_handle_alone": False, "coordination_problem": False,
          "summary": "50歳男性ひとり暮らし", "consent": "unknown"}


def _walk(api) -> dict:  # noqa: ANN001
    ref = api("caseworker")
    case = ref.post("/api/cases", json={"process": "multi_agency"}).json
    task = case["open_tasks"][0]
    ref.get(f"/api/tasks/{task['id']}")
    ref.post(f"/api/tasks/{task['id']}/complete", json={"data": INTAKE})
    ref.get(f"/api/cases/{case['id']}")
    return case


def test_reads_and_changes_are_recorded_with_who_when_what_and_where(api, session, personas) -> None:  # noqa: ANN001
    case = _walk(api)
    rows = list(session.scalars(select(AuditRecord).where(AuditRecord.case_id == case["id"])
                                .order_by(AuditRecord.seq)))
    assert [r.action for r in rows] == ["case.start", "task.read", "task.complete", "case.read"]
    assert {r.actor_name for r in rows} == {"hokatsu.sato"}
    assert {r.origin for r in rows} == {"127.0.0.1"}
    assert all(r.case_number == case["number"] for r in rows)
    assert audit.verify(session).ok


def test_outsider_probe_leaves_no_read_record_of_the_case(api, session) -> None:  # noqa: ANN001
    case = _walk(api)
    before = session.scalar(select(AuditRecord.seq).order_by(AuditRecord.seq.desc()).limit(1))
    assert api("outsider").get(f"/api/cases/{case['id']}").status_code == 404
    session.rollback()
    after = session.scalar(select(AuditRecord.seq).order_by(AuditRecord.seq.desc()).limit(1))
    assert after == before


def test_an_altered_record_is_detected(api, session) -> None:  # noqa: ANN001
    _walk(api)
    assert audit.verify(session).ok
    session.execute(update(AuditRecord).where(AuditRecord.seq == 3).values(actor_name="someone.else"))
    session.commit()
    result = audit.verify(session)
    assert not result.ok and result.seq == 3 and "altered" in result.problem


def test_a_deleted_record_is_detected(api, session) -> None:  # noqa: ANN001
    _walk(api)
    session.execute(delete(AuditRecord).where(AuditRecord.seq == 2))
    session.commit()
    result = audit.verify(session)
    assert not result.ok and result.seq == 2 and "missing" in result.problem


def test_records_removed_from_the_end_are_detected(api, session) -> None:  # noqa: ANN001
    _walk(api)
    last = session.scalar(select(AuditHead.seq))
    session.execute(delete(AuditRecord).where(AuditRecord.seq == last))
    session.commit()
    result = audit.verify(session)
    assert not result.ok and "end" in result.problem


def test_a_rewritten_record_with_a_fresh_hash_breaks_the_next_link(api, session) -> None:  # noqa: ANN001
    _walk(api)
    row = session.get(AuditRecord, 2)
    row.detail = {"forged": True}
    row.hash = audit._digest(row.seq, row.at, row.actor_id, row.actor_name, row.action, row.case_id, row.case_number,
                             row.origin, row.detail, row.prev_hash)
    session.commit()
    result = audit.verify(session)
    assert not result.ok and result.seq == 3


def test_audit_verify_cli_exits_non_zero_on_tampering(api, session, settings) -> None:  # noqa: ANN001
    _walk(api)
    env = {"DATABASE_URL": settings.database_url, "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([sys.executable, "-m", "cli.main", "audit", "verify"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and "intact" in ok.stdout
    session.execute(text("UPDATE audit_records SET action = 'case.read' WHERE seq = 1"))
    session.commit()
    bad = subprocess.run([sys.executable, "-m", "cli.main", "audit", "verify"], env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and "record 1" in bad.stderr


def test_lead_searches_by_user_case_and_period_and_exports_csv(api, clock) -> None:  # noqa: ANN001
    case = _walk(api)
    lead = api("lead")
    start = clock.now() - timedelta(minutes=1)
    found = lead.get("/api/audit", query_string={"user": "hokatsu.sato", "case": case["number"],
                                                 "since": start.isoformat(),
                                                 "until": (clock.now() + timedelta(minutes=1)).isoformat()}).json
    assert [r["action"] for r in found] == ["case.read", "task.complete", "task.read", "case.start"]
    assert lead.get("/api/audit", query_string={"case": case["number"], "until": start.isoformat()}).json == []
    csv = lead.get("/api/audit.csv", query_string={"case": case["number"]})
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    lines = csv.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert lines[0].startswith("seq,at,actor_name,action,case_number") and len(lines) == 5
    # the search and the export are themselves on the record
    mine = lead.get("/api/audit", query_string={"user": "jicho.yamada"}).json
    assert {"audit.search", "audit.export"} <= {r["action"] for r in mine}


def test_staff_cannot_search_the_trail(api) -> None:  # noqa: ANN001
    assert api("secretariat").get("/api/audit").status_code == 403
    assert api("caseworker").get("/api/audit.csv").status_code == 403


def _rows(session) -> tuple[int, int, int]:  # noqa: ANN001
    session.rollback()  # see what the requests committed, not a snapshot from before them
    return tuple(session.scalar(select(func.count()).select_from(t)) for t in (CaseEvent, AuditRecord, OutboxEvent))


def test_a_repeated_claim_by_the_holder_changes_nothing(api, session) -> None:  # noqa: ANN001
    ref = api("caseworker")
    case = ref.post("/api/cases", json={"process": "multi_agency"}).json
    task_id = case["open_tasks"][0]["id"]
    first = ref.post(f"/api/tasks/{task_id}/claim")
    assert first.status_code == 200 and first.json["assignee"] == "hokatsu.sato"
    before = _rows(session)
    again = ref.post(f"/api/tasks/{task_id}/claim")
    assert again.status_code == 200 and again.json == first.json
    assert _rows(session) == before
    claims = session.scalar(select(func.count()).select_from(AuditRecord)
                            .where(AuditRecord.action == audit.Action.TASK_CLAIM))
    assert claims == 1
