"""The case list page (/cases): every case the signed-in user may see, whatever its state, found
by number, summary or a household member's name or kana, filtered and paged. Routes of the `ui`
blueprint, on the same domain function as GET /api/cases (engine.casework.cases.search_cases)."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from flask import g, render_template, request, url_for

from engine.casework import cases
from engine.casework import queue as work_queue
from engine.errors import Invalid
from web.extensions import db, engine_env, now
from web.ui.auth import login_required
from web.ui.errors import error_message
from web.ui.views import bp

PAGE_SIZE = 50


@bp.route("/cases")
@login_required
def cases_page() -> Any:
    args = request.args
    filters = {
        "q": args.get("q", "").strip()[:cases.MAX_QUERY],
        "status": args.get("status", "")[:16],
        "process": args.get("process", "")[:100],
        "step": args.get("step", "")[:100],
        "group": args.get("group", "")[:64],
    }
    try:
        page = min(max(1, int(args.get("page") or 1)), 1_000_000)
    except ValueError:
        page = 1
    env = engine_env()
    error, status = None, 200
    try:
        found = cases.search_cases(db.session, env, g.actor, q=filters["q"] or None,
                                   status=filters["status"] or None, process=filters["process"] or None,
                                   step=filters["step"] or None, group=filters["group"] or None,
                                   limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, now=now())
    except Invalid as exc:
        db.session.rollback()
        error, status = error_message(exc), 422
        found = cases.CasePage([], 0, {})
    active = {k: v for k, v in filters.items() if v}

    def page_url(**changes: Any) -> str:
        params = {**active, "page": page, **changes}
        params = {k: v for k, v in params.items() if v and not (k == "page" and v == 1)}
        return url_for("ui.cases_page") + ("?" + urlencode(params) if params else "")

    processes = work_queue.process_choices(db.session, env)
    return render_template(
        "ui/cases.html", found=found, filters=filters, page=page, pages=max(1, math.ceil(found.total / PAGE_SIZE)),
        page_url=page_url, groups={info.id: info for info in env.org.groups}, processes=processes,
        process_names={key: name for key, name, _ in processes}, statuses=cases.CASE_STATUSES,
        filtered=bool(active), error=error, first=(page - 1) * PAGE_SIZE + 1,
        last=min(found.total, page * PAGE_SIZE)), status
