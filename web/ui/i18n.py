"""The staff pages' messages, Japanese first, English switchable, in gettext catalogues.

The messages live in web/translations/{ja,en}/LC_MESSAGES/messages.po (Flask-Babel, compiled to
.mo when missing or older than the .po, at `make venv` and when the app starts). A message id is a
symbolic key (`nav_queue`); ja.po holds the Japanese source text, en.po its English. `t(key, **kw)`
looks the key up in the request's language (the session's choice, Japanese by default) and fills
its `{name}` placeholders. A key neither catalogue holds is an error in tests, a logged warning
(and the key shown) in production. Step names and form titles are not translated: they come from
the BPMN diagrams and the forms' JSON Schemas, in Japanese.
"""

from __future__ import annotations

import logging
import os
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import flask_babel
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, current_app, g, has_app_context, has_request_context, session
from markupsafe import Markup, escape

from engine.security.audit import LABELS as AUDIT_LABELS

LANGUAGES = ("ja", "en")
DEFAULT = "ja"
JST = timezone(timedelta(hours=9), "JST")
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
DOMAIN = "messages"

log = logging.getLogger(__name__)


def N_(key: str) -> str:
    """Marks a key the code computes (t(f"status_{s}")) for `pybabel extract`; see message_keys.py."""
    return key


def po_file(language: str, directory: Path = TRANSLATIONS) -> Path:
    return directory / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def compile_catalogues(directory: Path = TRANSLATIONS) -> Path:
    """Compile each language's .po to its .mo where the .mo is missing or older than the .po, and
    return the directory Flask-Babel loads. An installed package's directory may be read-only:
    then the .mo files go to a private temporary directory of this process (mkdtemp, not a shared
    name another user could prepare). Each .mo is written to a temporary name and renamed, so
    workers starting together never read half a file."""
    stale = [language for language in LANGUAGES if _stale(po_file(language, directory))]
    try:
        for language in stale:
            _write_mo(po_file(language, directory), po_file(language, directory).with_suffix(".mo"))
    except OSError:
        target = Path(tempfile.mkdtemp(prefix="tsunagu-translations-"))
        for language in LANGUAGES:
            mo = po_file(language, target).with_suffix(".mo")
            mo.parent.mkdir(parents=True)
            _write_mo(po_file(language, directory), mo)
        return target
    return directory


def _stale(po: Path) -> bool:
    mo = po.with_suffix(".mo")
    return not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime


def _write_mo(po: Path, mo: Path) -> None:
    with po.open("rb") as f:
        catalog = read_po(f, locale=po.parent.parent.name, domain=DOMAIN)
    partial = mo.with_name(f".{mo.name}.{os.getpid()}")
    try:
        with partial.open("wb") as f:
            write_mo(f, catalog)
        os.replace(partial, mo)
    finally:
        partial.unlink(missing_ok=True)


@cache
def catalogue(language: str) -> dict[str, str]:
    """One language's messages by key, read from its .po (the source the .mo is compiled from)."""
    with po_file(language).open("rb") as f:
        return {m.id: m.string for m in read_po(f, locale=language, domain=DOMAIN) if m.id and m.string}


def has_message(key: str) -> bool:
    return key in catalogue(DEFAULT)


def message_keys() -> list[str]:
    return list(catalogue(DEFAULT))


def message(key: str, language: str) -> str:
    """A message in a given language, whatever the request's (tests, texts for the browser)."""
    return catalogue(language)[key]


def init_app(app: Flask) -> None:
    directory = compile_catalogues()
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(directory))
    flask_babel.Babel().init_app(app, locale_selector=lang)


def lang() -> str:
    value = session.get("lang") if _has_request() else None
    return value if value in LANGUAGES else DEFAULT


def ja(text: Any) -> Markup:
    """Text of the BPMN diagrams or the forms' JSON Schemas (Japanese only), marked as Japanese on a
    page that is not (WCAG 3.1.2, language of parts); unchanged on a Japanese page."""
    if lang() == "ja":
        return escape(text)
    return Markup('<span lang="ja">{}</span>').format(text)


def ja_attr() -> Markup:
    """` lang="ja"` on a page that is not Japanese, for elements that cannot hold a span (option)."""
    return Markup("") if lang() == "ja" else Markup(' lang="ja"')


def _has_request() -> bool:
    from flask import has_request_context

    return has_request_context()


def t(key: str, **kw: Any) -> str:
    # outside a request (the CLI, a job) the Japanese text, as the pages' default language
    text = _translations().gettext(key) if has_request_context() else catalogue(DEFAULT).get(key, key)
    if text == key:  # no key is its own message: it is missing from the catalogue or its .mo
        if has_app_context() and current_app.testing:
            raise LookupError(f"no message {key!r} in the {lang()} catalogue")
        log.warning("no message %r in the %s catalogue", key, lang())
        return key
    return text.format(**kw) if kw else text


def _translations() -> Any:
    """Flask-Babel's catalogue for the request's language, kept for the request: a page asks for
    hundreds of messages, and Flask-Babel looks its context up again for each one."""
    language = lang()
    held = g.get("tsunagu_translations")
    if held is None or held[0] != language:
        locale = flask_babel.get_locale()
        if locale is not None and locale.language != language:  # the language was switched in this request
            flask_babel.refresh()
        held = g.tsunagu_translations = (language, flask_babel.get_translations())
    return held[1]


def action_label(code: str) -> str:
    """An audit action in the page's language; a code without a label (one a later version
    dropped) is shown as it is."""
    pair = AUDIT_LABELS.get(code)
    if pair is None:
        return code
    return pair[1] if lang() == "en" else pair[0]


def pick(message: str | None) -> str:
    """Engine messages read "日本語 / English": keep the part in the page's language."""
    if not message:
        return ""
    ja, sep, en = message.partition(" / ")
    if not sep:
        return message
    return en.strip() if lang() == "en" else ja.strip()


def group_name(group: Any) -> str:
    if group is None:
        return ""
    return (getattr(group, "name_en", None) or group.name) if lang() == "en" else group.name


def jst(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(JST).strftime(fmt)


def age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return ""
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 3600:
        return t("age_minutes", n=seconds // 60)
    if seconds < 86400:
        return t("age_hours", n=seconds // 3600)
    return t("age_days", n=seconds // 86400)
