"""Documents attached to a case through the API: accepted by what their bytes are (a PDF, a
PNG, a docx built here), refused when they are something else under an allowed name or too
large, stored outside the database under an id with their checksum, downloaded byte for byte
and audited, removed only as a recorded action, the case's 404 for an outsider, and carried by
`tsunagu backup` / `restore`."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cli.main import main
from engine.casework import sniff
from engine.casework.attachments import clean_name
from engine.models import AuditRecord, CaseAttachment, CaseEvent
from engine.security import audit
from engine.settings import Settings
from engine.status import EventKind
from tests.conftest import ApiClient, _fresh_database_url

LIMIT_MB = 1 / 16  # 64 KiB: room for the documents below, and a "too large" that is cheap to send

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200
HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>"


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


DOCX = _zip({"[Content_Types].xml": b'<?xml version="1.0"?><Types/>',
             "_rels/.rels": b'<?xml version="1.0"?><Relationships/>',
             "word/document.xml": b'<?xml version="1.0"?><w:document/>'})


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, attachment_max_mb=LIMIT_MB)


def _case(api) -> dict:  # noqa: ANN001
    return api("caseworker").post("/api/cases", json={"process": "multi_agency", "data": {"summary": "書類の確認"}}).json


def _upload(client: ApiClient, case_id: str, data: bytes, name: str, content_type: str = "application/pdf"):  # noqa: ANN201
    return client.post(f"/api/cases/{case_id}/attachments", data={"file": (io.BytesIO(data), name, content_type)},
                       content_type="multipart/form-data", json=None)


def _trail(session, action: str) -> list[AuditRecord]:  # noqa: ANN001
    session.rollback()  # a fresh snapshot: the requests committed after the session's last read
    return list(session.scalars(select(AuditRecord).where(AuditRecord.action == action).order_by(AuditRecord.seq)))


@pytest.mark.parametrize(("data", "name", "kind"), [
    (PDF, "紹介状.pdf", sniff.PDF),
    (PNG, "写真.png", sniff.PNG),
    (DOCX, "支援計画.docx", sniff.DOCX),
    # The type comes from the bytes, whatever the name and the client's Content-Type say.
    (PNG, "scan.pdf", sniff.PNG),
])
def test_documents_are_accepted_by_their_content(api, settings, session, personas, data, name, kind) -> None:  # noqa: ANN001
    case = _case(api)
    r = _upload(api("caseworker"), case["id"], data, name)
    assert r.status_code == 201, r.json
    body = r.json
    assert (body["name"], body["size"], body["type"], body["sha256"], body["uploaded_by"]) == \
        (name, len(data), kind, hashlib.sha256(data).hexdigest(), personas.caseworker.name)
    # Outside the database, under the id: the client's file name is in no path.
    stored = settings.attachments_dir / body["id"]
    assert stored.read_bytes() == data
    assert sorted(p.name for p in settings.attachments_dir.iterdir()) == [body["id"]]
    session.rollback()
    [event] = session.scalars(select(CaseEvent).where(CaseEvent.kind == EventKind.DOCUMENT_ATTACHED))
    assert event.data["attachment"] == body["id"]


@pytest.mark.parametrize(("data", "name"), [
    (EXE, "診断書.pdf"),
    (HTML, "invoice.pdf"),
    (_zip({"word/document.xml": b"<x/>"}), "fake.docx"),  # a zip without the office structure
    (_zip({"[Content_Types].xml": b"<Types/>", "other/part.xml": b"<x/>"}), "fake.xlsx"),
    (b"PK\x03\x04 not really a zip", "broken.docx"),
])
def test_other_content_is_refused_whatever_its_name(api, settings, session, data, name) -> None:  # noqa: ANN001
    case = _case(api)
    r = _upload(api("caseworker"), case["id"], data, name)
    assert r.status_code == 415, r.json
    assert "file" in r.json["error"]["fields"] and "PDF" in r.json["error"]["message"]
    assert session.scalar(select(func.count()).select_from(CaseAttachment)) == 0
    assert not any(settings.attachments_dir.iterdir())


def test_a_missing_or_empty_file_is_refused_naming_the_field(api) -> None:  # noqa: ANN001
    case = _case(api)
    ref = api("caseworker")
    r = ref.post(f"/api/cases/{case['id']}/attachments", data={"other": "x"}, content_type="multipart/form-data",
                 json=None)
    assert r.status_code == 422 and "file" in r.json["error"]["fields"]
    r = _upload(ref, case["id"], b"", "empty.pdf")
    assert r.status_code == 422 and "file" in r.json["error"]["fields"]


@pytest.mark.parametrize("size", [
    70 * 1024,  # within the request's allowance: refused while the file is read
    2 * 1024 * 1024,  # announced larger than any upload may be: refused before it is read
])
def test_a_file_over_the_limit_is_refused_naming_the_limit(api, settings, session, size) -> None:  # noqa: ANN001
    case = _case(api)
    r = _upload(api("caseworker"), case["id"], PDF + b"0" * size, "大きな書類.pdf")
    assert r.status_code == 413, r.data[:300]
    assert r.json["error"]["code"] == "too_large"
    assert "65536 bytes" in r.json["error"]["message"] and "file" in r.json["error"]["fields"]
    assert session.scalar(select(func.count()).select_from(CaseAttachment)) == 0
    assert not settings.attachments_dir.exists() or not any(settings.attachments_dir.iterdir())


def test_the_default_limit_is_10_mb_and_set_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().attachment_max_bytes == 10 * 1024 * 1024
    monkeypatch.setenv("TSUNAGU_ATTACHMENT_MAX_MB", "25")
    assert Settings().attachment_max_bytes == 25 * 1024 * 1024
    monkeypatch.setenv("TSUNAGU_ATTACHMENT_MAX_MB", "lots")
    with pytest.raises(ValueError, match="TSUNAGU_ATTACHMENT_MAX_MB"):
        Settings()


def test_a_download_is_byte_identical_and_audited(api, session) -> None:  # noqa: ANN001
    case = _case(api)
    uploaded = _upload(api("caseworker"), case["id"], DOCX, "支援計画 (案).docx").json
    r = api("secretariat").get(f"/api/cases/{case['id']}/attachments/{uploaded['id']}")
    assert r.status_code == 200
    assert r.data == DOCX and hashlib.sha256(r.data).hexdigest() == uploaded["sha256"]
    assert r.mimetype == sniff.DOCX
    assert r.headers["Content-Disposition"].startswith("attachment;")
    assert "filename*=UTF-8''" in r.headers["Content-Disposition"]
    assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Cache-Control"] == "no-store"
    [record] = _trail(session, audit.Action.ATTACHMENT_DOWNLOAD)
    assert (record.actor_name, record.case_id, record.detail["attachment"]) == \
        ("kyosei.tanaka", case["id"], uploaded["id"])


def test_a_damaged_file_is_not_served(api, settings) -> None:  # noqa: ANN001
    case = _case(api)
    uploaded = _upload(api("caseworker"), case["id"], PDF, "a.pdf").json
    (settings.attachments_dir / uploaded["id"]).write_bytes(PDF + b"tampered")
    r = api("caseworker").get(f"/api/cases/{case['id']}/attachments/{uploaded['id']}")
    assert r.status_code == 410 and "backup" in r.json["error"]["message"]


def test_the_list_is_newest_first_and_one_audit_record(api, clock, session) -> None:  # noqa: ANN001
    case = _case(api)
    ref = api("caseworker")
    first = _upload(ref, case["id"], PDF, "一.pdf").json
    clock.advance(seconds=5)
    second = _upload(ref, case["id"], PNG, "二.png").json
    r = ref.get(f"/api/cases/{case['id']}/attachments")
    assert [a["id"] for a in r.json] == [second["id"], first["id"]] and r.headers["X-Total-Count"] == "2"
    [record] = _trail(session, audit.Action.ATTACHMENT_LIST)
    assert record.detail["attachments"] == [second["id"], first["id"]]


def test_removal_is_a_recorded_action(api, settings, session, personas) -> None:  # noqa: ANN001
    case = _case(api)
    ref = api("caseworker")
    uploaded = _upload(ref, case["id"], PDF, "誤送付.pdf").json
    url = f"/api/cases/{case['id']}/attachments/{uploaded['id']}"
    r = ref.post(f"{url}/remove", json={})
    assert r.status_code == 422 and "reason" in r.json["error"]["fields"]
    r = ref.post(f"{url}/remove", json={"reason": "別の方の書類を誤って添付した"})
    assert r.status_code == 200, r.json
    assert (r.json["removed"], r.json["removed_by"], r.json["removal_reason"]) == \
        (True, personas.caseworker.name, "別の方の書類を誤って添付した")
    assert not (settings.attachments_dir / uploaded["id"]).exists()
    # The record stays, marked; the bytes are gone.
    [listed] = ref.get(f"/api/cases/{case['id']}/attachments").json
    assert listed["removed"] and listed["sha256"] == uploaded["sha256"]
    assert ref.get(url).status_code == 410
    assert ref.post(f"{url}/remove", json={"reason": "again"}).status_code == 409
    session.rollback()
    [event] = session.scalars(select(CaseEvent).where(CaseEvent.kind == EventKind.DOCUMENT_REMOVED))
    assert event.actor_id == personas.caseworker.id and event.data["reason"] == "別の方の書類を誤って添付した"
    assert len(_trail(session, audit.Action.ATTACHMENT_REMOVE)) == 1


def test_only_the_uploader_or_the_secretariat_removes(api, personas) -> None:  # noqa: ANN001
    case = _case(api)
    uploaded = _upload(api("secretariat"), case["id"], PDF, "a.pdf").json
    url = f"/api/cases/{case['id']}/attachments/{uploaded['id']}/remove"
    r = api("caseworker").post(url, json={"reason": "不要"})
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    mine = _upload(api("caseworker"), case["id"], PDF, "b.pdf").json
    r = api("secretariat").post(f"/api/cases/{case['id']}/attachments/{mine['id']}/remove", json={"reason": "重複"})
    assert r.status_code == 200 and r.json["removed_by"] == personas.secretariat.name


def test_an_outsider_gets_the_cases_404_on_every_attachment_call(api, settings, session) -> None:  # noqa: ANN001
    case = _case(api)
    uploaded = _upload(api("caseworker"), case["id"], PDF, "a.pdf").json
    outsider = api("outsider")
    missing = outsider.get("/api/cases/00000000-0000-0000-0000-000000000000").json
    url = f"/api/cases/{case['id']}/attachments"
    answers = [outsider.get(url), _upload(outsider, case["id"], PNG, "b.png"), outsider.get(f"{url}/{uploaded['id']}"),
               outsider.post(f"{url}/{uploaded['id']}/remove", json={"reason": "x"})]
    assert [r.status_code for r in answers] == [404, 404, 404, 404]
    assert all(r.json == missing for r in answers)
    assert sorted(p.name for p in settings.attachments_dir.iterdir()) == [uploaded["id"]]
    denied = _trail(session, audit.Action.ACCESS_DENIED)
    assert [d.detail["via"] for d in denied] == [audit.Action.ATTACHMENT_LIST, audit.Action.ATTACHMENT_UPLOAD,
                                                 audit.Action.ATTACHMENT_DOWNLOAD, audit.Action.ATTACHMENT_REMOVE]


def test_a_failed_commit_leaves_no_file(api, settings, session, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    case = _case(api)

    def refuse(*_args, **_kwargs) -> None:  # noqa: ANN002, ANN003
        raise RuntimeError("the audit trail is unavailable")

    monkeypatch.setattr(audit, "record", refuse)
    with pytest.raises(RuntimeError):
        _upload(api("caseworker"), case["id"], PDF, "a.pdf")
    monkeypatch.undo()
    assert session.scalar(select(func.count()).select_from(CaseAttachment)) == 0
    assert not any(settings.attachments_dir.iterdir())


@pytest.mark.parametrize(("given", "kept"), [
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\sato\\紹介状.pdf", "紹介状.pdf"),
    ("a\u202egpj.exe", "agpj.exe"),  # a right-to-left override would disguise the extension
    ("", "document"),
    ("..", "document"),
    ("あ" * 300 + ".pdf", "あ" * 251 + ".pdf"),
])
def test_file_names_are_cleaned(given: str, kept: str) -> None:
    assert clean_name(given) == kept


@pytest.fixture
def other_database(tmp_path: Path) -> Iterator[str]:
    folder = tmp_path / "other"
    folder.mkdir()
    url, drop = _fresh_database_url(folder)
    yield url
    drop()


def test_backup_and_restore_carry_the_files(api, app, settings, env, clock, personas, other_database, tmp_path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    from web import create_app

    case = _case(api)
    kept = _upload(api("caseworker"), case["id"], DOCX, "計画.docx").json
    archive = tmp_path / "backups" / "tsunagu.backup"
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TSUNAGU_ATTACHMENTS_DIR", str(settings.attachments_dir))
    assert main(["backup", str(archive)]) == 0
    assert (archive.with_name(archive.name + ".attachments") / kept["id"]).read_bytes() == DOCX

    restored_dir = tmp_path / "restored-attachments"
    monkeypatch.setenv("DATABASE_URL", other_database)
    monkeypatch.setenv("TSUNAGU_ATTACHMENTS_DIR", str(restored_dir))
    assert main(["restore", str(archive)]) == 0
    assert main(["init"]) == 0
    restored = replace(settings, database_url=other_database, attachments_dir=restored_dir)
    other = create_app(restored, clock=clock, env=replace(env, settings=restored), config={"TESTING": True})
    client = ApiClient(other.test_client(), personas.tokens["caseworker"])
    r = client.get(f"/api/cases/{case['id']}/attachments/{kept['id']}")
    assert r.status_code == 200 and r.data == DOCX
