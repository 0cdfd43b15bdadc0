"""Forms kept in the database as versions: list them, read one, and store a changed one.

`forms/` is the source of a fresh install (`tsunagu init` and `tsunagu deploy` store its files
as versions); after that a designer edits forms through the API. A changed form takes effect
with the next deployed process version: a deployed version keeps, in its bundle, the schemas it
was deployed with, so running cases keep theirs.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.errors import Invalid, NotFound
from engine.models import FormVersion, User
from engine.ops.db import command
from engine.security import audit
from engine.security.access import require_designer
from engine.workflow import forms, specs

KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")


def _latest_rows(session: Session) -> list[FormVersion]:
    newest = (select(FormVersion.form_key, func.max(FormVersion.version).label("v"))
              .group_by(FormVersion.form_key).subquery())
    return list(session.scalars(select(FormVersion).join(
        newest, (newest.c.form_key == FormVersion.form_key) & (newest.c.v == FormVersion.version))
        .order_by(FormVersion.form_key)))


def latest_forms(session: Session) -> dict[str, dict[str, Any]]:
    """The newest version of every stored form: what the next deployment uses."""
    return {row.form_key: row.schema for row in _latest_rows(session)}


def list_forms(session: Session, actor: User | None) -> list[FormVersion]:
    require_designer(actor)
    return _latest_rows(session)


def get_form(session: Session, actor: User | None, key: str) -> FormVersion:
    require_designer(actor)
    row = session.scalar(select(FormVersion).where(FormVersion.form_key == key)
                         .order_by(FormVersion.version.desc()).limit(1))
    if row is None:
        raise NotFound(f"フォーム {key!r} はありません / no form {key!r}")
    return row


@command
def put_form(session: Session, actor: User | None, key: str, schema: object, now: datetime) -> tuple[FormVersion, bool]:
    """Store `schema` as the next version of form `key` (a new form when there is none); an
    unchanged schema stores nothing. Returns the newest version and whether it was stored."""
    require_designer(actor)
    if not isinstance(key, str) or not KEY.match(key):
        raise Invalid("フォーム名は英小文字・数字・-・_ の 1〜100 文字です / a form key is 1-100 of a-z, 0-9, - and _",
                      {"key": "a-z, 0-9, - and _, at most 100"})
    problems = forms.check_schema(schema)
    if problems:
        raise Invalid(f"フォームの JSON Schema に誤りがあります / the form is not a valid schema: "
                      f"{', '.join(sorted(problems))}", problems)
    name = actor.name if actor is not None else "cli"
    stored = specs.store_forms(session, {key: schema}, now, name)
    if stored:
        audit.record(session, actor, audit.Action.FORM_CHANGE, now, detail={"form": key},
                     actor_name=None if actor else "cli")
    session.commit()
    return get_form(session, actor, key), bool(stored)
