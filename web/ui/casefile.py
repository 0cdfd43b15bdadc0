"""The case page's case file: support records (支援経過記録) — the form, the list, the 24-hour
edit — and documents (添付書類) — upload, download, recorded removal. Routes on the staff
pages' blueprint (web.ui.views.bp); each calls one domain function of engine.notes or
engine.attachments and goes back to the case page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import flash, g, redirect, request, url_for
from werkzeug.wrappers import Response

from engine import attachments, notes
from engine.errors import Conflict, Forbidden, Gone, Invalid, TooLarge, UnsupportedType
from engine.models import Case, CaseEvent
from web.api.casefile import send_attachment
from web.extensions import UPLOAD_OVERHEAD, db, engine_env, now
from web.ui.auth import login_required
from web.ui.i18n import JST, MESSAGES, pick, t
from web.ui.views import bp

MESSAGES.update({
    "ev_document_attached": ("書類を添付", "Document attached"),
    "ev_document_removed": ("添付書類を削除", "Document removed"),
    **{f"note_kind_{kind}": labels for kind, labels in notes.KIND_LABELS.items()},
    "notes_title": ("支援経過記録", "Support records"),
    "notes_lead": ("訪問・電話・来所・会議など、ステップ以外の支援の経過を記録します。記録から 24 時間は記録した本人が修正できます。",
                   "Record visits, calls, office visits and meetings between the steps. Its author may correct a "
                   "record for 24 hours."),
    "note_kind": ("種別", "Kind"),
    "note_occurred_at": ("日時", "When"),
    "note_occurred_at_help": ("空欄なら現在の日時になります。", "Leave empty for now."),
    "note_text": ("内容", "Record"),
    "note_add": ("記録する", "Add record"),
    "note_added": ("支援経過を記録しました。", "The support record was added."),
    "note_edit": ("修正する", "Correct"),
    "note_save": ("修正を保存", "Save correction"),
    "note_edited": ("記録を修正しました。", "The record was corrected."),
    "note_edited_mark": ("修正あり", "Corrected"),
    "note_revisions": ("修正前の記録", "Earlier versions"),
    "note_revision_by": ("{when} {name} が修正", "Corrected by {name} at {when}"),
    "note_bad_time": ("日時を正しく入力してください。", "Enter a valid date and time."),
    "no_notes": ("支援経過の記録はまだありません。", "No support records yet."),
    "notes_count": ("全 {total} 件", "{total} in all"),
    "notes_older": ("さらに古い支援経過記録", "Older support records"),
    "notes_newest": ("最新の支援経過記録", "Newest support records"),
    "notes_pages": ("支援経過記録のページ", "Support record pages"),
    "timeline_note": ("支援経過", "Support record"),
    "attachments_title": ("添付書類", "Documents"),
    "attachments_lead": ("PDF・画像（PNG、JPEG）・Word・Excel・PowerPoint・OpenDocument のファイルを {limit} まで添付できます。",
                         "PDF, images (PNG, JPEG), Word, Excel, PowerPoint and OpenDocument files up to {limit}."),
    "attachment_file": ("ファイル", "File"),
    "attachment_upload": ("添付する", "Attach"),
    "attachment_uploaded": ("書類を添付しました。", "The document was attached."),
    "attachment_download": ("ダウンロード", "Download"),
    "attachment_remove": ("削除する", "Remove"),
    "attachment_remove_reason": ("削除の理由", "Reason for removal"),
    "attachment_removed": ("添付書類を削除しました。", "The document was removed."),
    "attachment_removed_mark": ("削除済み", "Removed"),
    "attachment_removed_by": ("{when} {name} が削除：{reason}", "Removed by {name} at {when}: {reason}"),
    "attachment_by": ("{name} が添付", "Attached by {name}"),
    "no_attachments": ("添付書類はありません。", "No documents attached."),
    "attachment_too_large": ("ファイルが大きすぎます（{limit} まで）。", "The file is larger than the limit of {limit}."),
})

UPLOAD_ENDPOINT = "ui.upload_attachment"


def _limit() -> str:
    return f"{engine_env().settings.attachment_max_mb:g} MB"


@bp.before_app_request
def _upload_limit() -> Any:
    """The page upload's own size limit, set before anything reads the body (see
    web.api.casefile); a body announced larger is sent back to the case page with the limit."""
    if request.endpoint != UPLOAD_ENDPOINT:
        return None
    limit = engine_env().settings.attachment_max_bytes
    request.max_content_length = limit + UPLOAD_OVERHEAD
    if request.content_length is not None and request.content_length > limit + UPLOAD_OVERHEAD:
        flash(t("attachment_too_large", limit=_limit()), "error")
        return redirect(url_for("ui.case", case_id=(request.view_args or {}).get("case_id", "")) + "#attachments")
    return None


def _back(case_id: str, anchor: str) -> Response:
    return redirect(url_for("ui.case", case_id=case_id) + anchor)


def _local_time(text: str) -> datetime | None:
    """A datetime-local field's value, read as Japan time; "" is None (now)."""
    text = text.strip()
    if not text:
        return None
    return datetime.fromisoformat(text).replace(tzinfo=JST)


@bp.route("/cases/<case_id>/notes", methods=["POST"])
@login_required
def add_note(case_id: str) -> Response:
    form = request.form
    try:
        occurred = _local_time(form.get("occurred_at", ""))
    except ValueError:
        flash(t("note_bad_time"), "error")
        return _back(case_id, "#notes")
    try:
        notes.add_note(db.session, engine_env(), g.actor, case_id, form.get("kind"), form.get("text"), occurred, now())
    except Invalid as exc:
        flash(pick(exc.message), "error")
    else:
        flash(t("note_added"), "success")
    return _back(case_id, "#notes")


@bp.route("/cases/<case_id>/notes/<id:note_id>/edit", methods=["POST"])
@login_required
def edit_note(case_id: str, note_id: int) -> Response:
    try:
        notes.edit_note(db.session, engine_env(), g.actor, case_id, note_id, request.form.get("text"), now())
    except (Invalid, Forbidden, Conflict) as exc:
        flash(pick(exc.message), "error")
    else:
        flash(t("note_edited"), "success")
    return _back(case_id, f"#note-{note_id}")


@bp.route("/cases/<case_id>/attachments", methods=["POST"], endpoint="upload_attachment")
@login_required
def upload_attachment(case_id: str) -> Response:
    upload = request.files.get("file")
    try:
        attachments.attach(db.session, engine_env(), g.actor, case_id, upload.stream if upload else None,
                           upload.filename if upload else None, now())
    except TooLarge:
        flash(t("attachment_too_large", limit=_limit()), "error")
    except (Invalid, UnsupportedType) as exc:
        flash(pick(exc.message), "error")
    else:
        flash(t("attachment_uploaded"), "success")
    return _back(case_id, "#attachments")


@bp.route("/cases/<case_id>/attachments/<attachment_id>")
@login_required
def download_attachment(case_id: str, attachment_id: str) -> Response:
    try:
        row, path = attachments.open_attachment(db.session, engine_env(), g.actor, case_id, attachment_id, now())
    except Gone as exc:
        flash(pick(exc.message), "error")
        return _back(case_id, "#attachments")
    return send_attachment(row, path)


@bp.route("/cases/<case_id>/attachments/<attachment_id>/remove", methods=["POST"])
@login_required
def remove_attachment(case_id: str, attachment_id: str) -> Response:
    try:
        attachments.remove_attachment(db.session, engine_env(), g.actor, case_id, attachment_id,
                                      request.form.get("reason"), now())
    except (Invalid, Forbidden, Conflict) as exc:
        flash(pick(exc.message), "error")
    else:
        flash(t("attachment_removed"), "success")
    return _back(case_id, "#attachments")


def case_page(case: Case, history: list[CaseEvent], older: int | None, paged: bool) -> dict[str, Any]:
    """What the case page shows of the case file, for a case the actor was just let see: the
    notes list (page `notes_offset`), the notes that fall in the timeline's window (the times of
    the history page shown), the documents. Each read is audited by its domain function."""
    session, env, actor, at = db.session, engine_env(), g.actor, now()
    offset = request.args.get("notes_offset", "")
    since = history[0].at if history and older else None
    until = history[-1].at if history and paged else None
    page, window = notes.notes_for_case_page(session, actor, case, at, offset=int(offset) if offset.isdigit() else 0,
                                             since=since, until=until)
    documents = attachments.list_attachments(session, env, actor, case.id, at, limit=attachments.PAGE_MAX)
    return {"notes_page": page, "timeline_notes": window, "notes_offset": int(offset) if offset.isdigit() else 0,
            "notes_page_size": notes.PAGE, "note_kinds": list(notes.KIND_LABELS),
            "note_editable": {n.id for n in page.notes if notes.may_edit(actor, n, at)},
            "note_time_max": (at.astimezone(JST) + notes.FUTURE_TOLERANCE).strftime("%Y-%m-%dT%H:%M"),
            "documents": documents.rows, "documents_total": documents.total,
            "document_removable": {r.id for r in documents.rows if attachments.may_remove(actor, r, env)},
            "attachment_limit": _limit(), "attachment_types": ",".join(ATTACHMENT_ACCEPT)}


# The file picker's suggestion (the server checks the content whatever is picked).
ATTACHMENT_ACCEPT = (".pdf", ".png", ".jpg", ".jpeg", ".docx", ".xlsx", ".pptx", ".odt", ".ods", ".odp")
