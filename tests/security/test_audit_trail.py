"""The audit trail: every read and change recorded, chained, and tampering detected."""

from __future__ import annotations

import contextvars
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import delete, func, select, text, update

from cli.main import main
from engine.models import AuditHead, AuditRecord, CaseEvent, HumanTask, OutboxEvent
from engine.security import audit

INTAKE = {"multiple_targets": False, "all_targets_have_lead_department": False,
          "lead_department_can_handle_alone": False, "coordination_problem": False,
          "summary": "50歳男性ひとり暮らし", "consent": "unknown"}


def _walk(api) -> dict:  # noqa: ANN001
    ref = api("caseworker")
    case = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json
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


def _last_seq(session) -> int:  # noqa: ANN001
    session.rollback()
    return session.scalar(select(func.max(AuditRecord.seq))) or 0


def _after(session, seq: int) -> list[AuditRecord]:  # noqa: ANN001
    session.rollback()
    return list(session.scalars(select(AuditRecord).where(AuditRecord.seq > seq).order_by(AuditRecord.seq)))


def test_outsider_probe_of_a_case_is_recorded_as_denied_with_the_same_404(api, session, personas) -> None:  # noqa: ANN001
    case = _walk(api)
    outsider = api("outsider")
    before = _last_seq(session)
    hidden = outsider.get(f"/api/cases/{case['id']}")
    missing = outsider.get("/api/cases/00000000-0000-4000-8000-000000000000")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.get_data() == missing.get_data() and hidden.headers == missing.headers
    [denied] = _after(session, before)  # the nonexistent id names no case: nothing to record
    assert (denied.action, denied.actor_name, denied.case_id, denied.case_number, denied.detail) == (
        "access.denied", "wakamono.ito", case["id"], case["number"], {"via": "case.read"})
    assert denied.actor_id == personas.outsider.id and denied.origin == "127.0.0.1"
    assert audit.verify(session).ok


def test_outsider_attempts_on_a_task_are_recorded_as_denied(api, session) -> None:  # noqa: ANN001
    ref = api("caseworker")
    case = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json
    task = case["open_tasks"][0]
    outsider = api("outsider")
    before = _last_seq(session)
    missing_id = "00000000-0000-4000-8000-000000000000"
    for method, path in (("get", ""), ("post", "/claim"), ("post", "/release"), ("put", "/draft"),
                         ("post", "/complete")):
        body = {"data": {}} if method != "get" else None
        call = getattr(outsider, method)
        hidden = call(f"/api/tasks/{task['id']}{path}", **({"json": body} if body else {}))
        missing = call(f"/api/tasks/{missing_id}{path}", **({"json": body} if body else {}))
        assert hidden.status_code == missing.status_code == 404, path
        assert hidden.get_data() == missing.get_data(), path
    rows = _after(session, before)
    assert [r.detail["via"] for r in rows] == ["task.read", "task.claim", "task.release", "task.draft",
                                              "task.complete"]
    assert {(r.action, r.actor_name, r.case_number, r.detail["task_id"]) for r in rows} == {
        ("access.denied", "wakamono.ito", case["number"], task["id"])}
    session.rollback()
    assert session.get(HumanTask, task["id"]).assignee_id is None  # and nothing else happened


def test_outsider_consent_and_share_attempts_are_recorded_as_denied(api, session) -> None:  # noqa: ANN001
    case = _walk(api)
    before = _last_seq(session)
    outsider = api("outsider")
    assert outsider.post(f"/api/cases/{case['id']}/consent", json={"consent": "given"}).status_code == 404
    assert outsider.post(f"/api/cases/{case['id']}/shares",
                         json={"group": "wakamono-sodan", "purpose": "x"}).status_code == 404
    assert [(r.action, r.detail) for r in _after(session, before)] == [
        ("access.denied", {"via": "consent.record"}), ("access.denied", {"via": "case.share"})]


def test_a_denial_that_cannot_be_recorded_is_still_the_same_404(api, session) -> None:  # noqa: ANN001
    case = _walk(api)
    outsider = api("outsider")
    missing = outsider.get("/api/cases/00000000-0000-4000-8000-000000000000")
    # the trail's table is away: the record fails with a real database error
    session.execute(text("ALTER TABLE audit_records RENAME TO audit_records_away"))
    session.commit()
    hidden = outsider.get(f"/api/cases/{case['id']}")
    assert hidden.status_code == 404 and hidden.get_data() == missing.get_data()
    session.execute(text("ALTER TABLE audit_records_away RENAME TO audit_records"))
    session.commit()
    assert outsider.get(f"/api/cases/{case['id']}").status_code == 404


def test_an_altered_record_is_detected(api, session) -> None:  # noqa: ANN001
    _walk(api)
    assert audit.verify(session).ok
    session.execute(update(AuditRecord).where(AuditRecord.seq == 3).values(actor_name="someone.else"))
    session.commit()
    result = audit.verify(session)
    assert not result.ok and result.seq == 3 and "altered" in result.problem


def _followed(session) -> tuple[AuditRecord, AuditRecord]:  # noqa: ANN001
    """The earliest record that has a later one on its chain, and that later one."""
    for row in _after(session, 0):
        nxt = session.scalars(select(AuditRecord).where(AuditRecord.chain == row.chain,
                                                        AuditRecord.chain_seq == row.chain_seq + 1)).first()
        if nxt is not None:
            return row, nxt
    raise AssertionError("no chain has two records")


def test_a_deleted_record_is_detected(api, session) -> None:  # noqa: ANN001
    _walk(api)
    gone, nxt = _followed(session)
    session.execute(delete(AuditRecord).where(AuditRecord.seq == gone.seq))
    session.commit()
    result = audit.verify(session)
    # The removed record's own number is gone with it: the report names the one after the hole.
    assert not result.ok and result.seq == nxt.seq and "missing" in result.problem


def test_records_removed_from_the_end_are_detected(api, session) -> None:  # noqa: ANN001
    _walk(api)
    head = session.scalars(select(AuditHead).where(AuditHead.seq > 0)).first()
    session.execute(delete(AuditRecord).where(AuditRecord.chain == head.id, AuditRecord.chain_seq == head.seq))
    session.commit()
    result = audit.verify(session)
    assert not result.ok and "end" in result.problem


def test_a_record_moved_to_another_chain_is_detected(api, session) -> None:  # noqa: ANN001
    _walk(api)
    row, _ = _followed(session)
    other = row.chain % audit.AUDIT_CHAINS + 1
    top = session.scalar(select(func.max(AuditRecord.chain_seq)).where(AuditRecord.chain == other)) or 0
    session.execute(update(AuditRecord).where(AuditRecord.seq == row.seq).values(chain=other, chain_seq=top + 1))
    session.commit()
    assert not audit.verify(session).ok


def test_a_rewritten_record_with_a_fresh_hash_breaks_the_next_link(api, session) -> None:  # noqa: ANN001
    _walk(api)
    row, nxt = _followed(session)
    row.detail = {"forged": True}
    row.hash = audit.expected_hash(row)
    session.commit()
    result = audit.verify(session)
    assert not result.ok and result.seq == nxt.seq


def test_records_of_a_case_share_a_chain_and_unrelated_cases_spread_over_chains() -> None:
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(400)]
    chains = [audit.chain_of(i, "hokatsu.sato") for i in ids]
    assert chains == [audit.chain_of(i, "someone.else") for i in ids]  # the case decides, not who
    assert set(chains) == set(range(1, audit.AUDIT_CHAINS + 1))
    assert max(chains.count(c) for c in set(chains)) < 3 * len(ids) / audit.AUDIT_CHAINS


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
    case = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json
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


def test_cli_export_is_excel_ready_csv_with_codes_and_labels(api, settings, monkeypatch, capsysbinary) -> None:  # noqa: ANN001
    case = _walk(api)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    assert contextvars.copy_context().run(main, ["audit", "export", "--case", case["number"]]) == 0
    out = capsysbinary.readouterr().out
    assert out.startswith("\ufeff".encode())
    lines = out.decode("utf-8-sig").splitlines()
    assert lines[0] == ",".join(audit.CSV_COLUMNS) and lines[0].endswith(",action_label")
    assert lines[1].split(",")[3] == "case.read" and lines[1].endswith(",案件の閲覧")
