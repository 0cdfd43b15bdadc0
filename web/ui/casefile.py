"""The case page's case file: support records (支援経過記録) — the form, the list, the 24-hour
edit — and documents (添付書類) — upload, download, recorded removal. Routes on the staff
pages' blueprint (web.ui.views.bp); each calls one domain function of engine.casework.notes or
engine.casework.attachments and goes back to the case page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import flash, g, redirect, request, url_for
from werkzeug.wrappers import Response

from engine.casework import attachments, cases, notes
from engine.errors import Conflict, Forbidden, Gone, Invalid, TooLarge, UnsupportedType
from engine.models import Case
from web.api.casefile import send_attachment
from web.extensions import UPLOAD_OVERHEAD, db, engine_env, now
from web.ui import views
from web.ui.auth import login_required
from web.ui.i18n import JST, pick, t
from web.ui.views import bp

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
def add_note(case_id: str) -> Any:
    form = request.form
    try:
        occurred = _local_time(form.get("occurred_at", ""))
        notes.add_note(db.session, engine_env(), g.actor, case_id, form.get("kind"), form.get("text"), occurred, now())
    except (ValueError, Invalid) as exc:
        flash(pick(exc.message) if isinstance(exc, Invalid) else t("note_bad_time"), "error")
        return _refused_note(case_id, form)
    flash(t("note_added"), "success")
    return _back(case_id, "#notes")


def _refused_note(case_id: str, form: Any) -> Any:
    """The case page again, with the refused record still in its form: a caseworker who typed
    a visit's account must not lose it to a wrong time. Rendered in this response (422), not
    kept in the session cookie, which would carry the text to the browser and back."""
    g.note_draft = {key: str(form.get(key, ""))[:notes.MAX_TEXT] for key in ("kind", "text", "occurred_at")}
    page = views.case(case_id)
    return (page, 422) if isinstance(page, str) else page


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


def case_page(case: Case, history: list[cases.HistoryEvent], older: int | None, paged: bool) -> dict[str, Any]:
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
            "note_draft": g.get("note_draft") or {},
            "note_editable": {n.id for n in page.notes if notes.may_edit(actor, n, at)},
            "note_time_max": (at.astimezone(JST) + notes.FUTURE_TOLERANCE).strftime("%Y-%m-%dT%H:%M"),
            "documents": documents.rows, "documents_total": documents.total,
            "document_removable": {r.id for r in documents.rows if attachments.may_remove(actor, r, env)},
            "attachment_limit": _limit(), "attachment_types": ",".join(ATTACHMENT_ACCEPT)}


# The file picker's suggestion (the server checks the content whatever is picked).
ATTACHMENT_ACCEPT = (".pdf", ".png", ".jpg", ".jpeg", ".docx", ".xlsx", ".pptx", ".odt", ".ods", ".odp")
