"""The pages' gettext catalogues (web/translations): every message the sources use is in both
languages with the same placeholders, extraction by babel.cfg keeps every message, the compiled
.mo files are the current .po's, and the pages render in Japanese and in English."""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask

from engine.settings import ROOT
from web.ui import i18n

LANGS = ("ja", "en")
# A literal key: t("nav_queue", …) in Python, t('nav_queue') in a template; N_("key") names a computed one.
LITERAL = re.compile(r"""\b(?:t|N_)\(\s*["']([a-z][a-z0-9_]*)["']\s*[,)]""")
# A computed key's fixed start: t('status_' + case.status), t(f"consent_{value}").
PREFIX = re.compile(r"""\bt\(\s*(?:f["']([a-z][a-z0-9_]*)\{|["']([a-z][a-z0-9_]*)["']\s*\+)""")


def catalog(lang: str):  # noqa: ANN201
    with i18n.po_file(lang).open("rb") as f:
        return read_po(f, locale=lang, domain=i18n.DOMAIN)


def sources() -> list[Path]:
    return [*(ROOT / "web").rglob("*.py"), *(ROOT / "web" / "templates").rglob("*.html")]


def placeholders(text: str) -> set[str]:
    # {name} as t() fills it; braces around other text are shown as they are (md_answers' JSON sample)
    return set(re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", text))


def test_every_key_the_sources_use_is_in_both_catalogues() -> None:
    used: set[str] = set()
    prefixes: set[str] = set()
    for path in sources():
        text = path.read_text(encoding="utf-8")
        used |= set(LITERAL.findall(text))
        prefixes |= {a or b for a, b in PREFIX.findall(text)}
    assert len(used) > 500  # the scan finds the pages' keys, not nothing
    for lang in LANGS:
        keys = {m.id for m in catalog(lang) if m.id and m.string}
        assert used - keys == set(), lang
        assert {p for p in prefixes if not any(k.startswith(p) for k in keys)} == set(), lang


def test_both_catalogues_hold_the_same_messages_all_translated() -> None:
    ja, en = catalog("ja"), catalog("en")
    assert {m.id for m in ja if m.id} == {m.id for m in en if m.id}
    for cat in (ja, en):
        assert [m.id for m in cat if m.id and not m.string] == [], cat.locale
        # pybabel compile leaves fuzzy entries out: such a message would be missing from the pages
        assert [m.id for m in cat if m.id and m.fuzzy] == [], cat.locale
        assert not cat.fuzzy and list(cat.obsolete) == [], cat.locale


def test_placeholders_are_the_same_in_both_languages() -> None:
    en = catalog("en")
    wrong = [m.id for m in catalog("ja") if m.id and placeholders(m.string) != placeholders(en[m.id].string)]
    assert wrong == []


def test_extraction_keeps_every_message() -> None:
    """`make messages` (pybabel extract with babel.cfg, then update) drops a catalogue message the
    sources do not name: so every message is named, literally or in web/ui/message_keys.py."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as f:
        methods, options = parse_mapping_cfg(f)
    extracted = {message for _, _, message, _, _ in extract_from_dir(
        str(ROOT), methods, options, {"t": None, "N_": None})}
    assert extracted == {m.id for m in catalog("ja") if m.id}


def test_the_compiled_catalogues_are_the_current_ones(app: Flask) -> None:
    directory = Path(app.config["BABEL_TRANSLATION_DIRECTORIES"])
    for lang in LANGS:
        mo = io.BytesIO()
        write_mo(mo, catalog(lang))
        assert (directory / lang / "LC_MESSAGES" / "messages.mo").read_bytes() == mo.getvalue(), lang


def test_a_catalogue_edited_after_compiling_is_compiled_again(tmp_path: Path) -> None:
    shutil.copytree(i18n.TRANSLATIONS, tmp_path / "translations", ignore=shutil.ignore_patterns("*.mo"))
    directory = tmp_path / "translations"
    assert i18n.compile_catalogues(directory) == directory
    mo = i18n.po_file("en", directory).with_suffix(".mo")
    first = mo.read_bytes()
    po = i18n.po_file("en", directory)
    po.write_text(po.read_text(encoding="utf-8").replace('msgstr "Work queue"', 'msgstr "Tasks"', 1), encoding="utf-8")
    os.utime(po, (mo.stat().st_mtime + 10, mo.stat().st_mtime + 10))
    i18n.compile_catalogues(directory)
    assert mo.read_bytes() != first and b"Tasks" in mo.read_bytes()


def test_catalogues_that_cannot_be_written_in_place_are_compiled_elsewhere(tmp_path: Path) -> None:
    shutil.copytree(i18n.TRANSLATIONS, tmp_path / "translations", ignore=shutil.ignore_patterns("*.mo"))
    directory = tmp_path / "translations"
    # a directory where the .mo should be: it cannot be replaced (chmod does not stop root)
    blocked = i18n.po_file("en", directory).with_suffix(".mo")
    (blocked / "x").mkdir(parents=True)
    os.utime(blocked, (0, 0))
    target = i18n.compile_catalogues(directory)
    assert target != directory
    for lang in LANGS:
        mo = io.BytesIO()
        write_mo(mo, catalog(lang))
        assert i18n.po_file(lang, target).with_suffix(".mo").read_bytes() == mo.getvalue(), lang
    assert [p.name for p in blocked.parent.iterdir() if p.name.startswith(".")] == []  # no partial file left


def test_pages_render_in_japanese_then_in_english(staff) -> None:  # noqa: ANN001
    secretariat = staff("secretariat")
    queue = secretariat.get("/").get_data(as_text=True)
    assert '<html lang="ja">' in queue and "作業一覧" in queue and "Work queue" not in queue
    assert secretariat.post("/lang", {"lang": "en"}).status_code == 302
    queue = secretariat.get("/").get_data(as_text=True)
    assert '<html lang="en">' in queue and "Work queue" in queue and "作業一覧" not in queue
    new = secretariat.get("/cases/new/consultation").get_data(as_text=True)
    assert i18n.message("nav_new_consultation", "en") in new
    assert secretariat.post("/lang", {"lang": "ja"}).status_code == 302
    new = secretariat.get("/cases/new/consultation").get_data(as_text=True)
    assert i18n.message("nav_new_consultation", "ja") in new and "New consultation" not in new


def test_placeholders_are_filled_in_the_language_of_the_request(app: Flask) -> None:
    with app.test_request_context():
        assert i18n.t("page_of", page=2, pages=5) == "2 / 5 ページ"
    with app.test_request_context():
        from flask import session

        session["lang"] = "en"
        assert i18n.t("page_of", page=2, pages=5) == "Page 2 of 5"


def test_a_missing_message_fails_in_tests_and_shows_its_key_in_production(
        app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    with app.test_request_context(), pytest.raises(LookupError, match="no_such_message"):
        i18n.t("no_such_message")
    app.testing = False
    with app.test_request_context(), caplog.at_level(logging.WARNING, logger="web.ui.i18n"):
        assert i18n.t("no_such_message") == "no_such_message"
    assert "no_such_message" in caplog.text
    assert not i18n.has_message("no_such_message") and i18n.has_message("nav_queue")


def test_no_source_keeps_messages_in_the_old_form() -> None:
    """Messages live in the catalogues only: an old-form message dict merged in from a branch is
    converted by the conversion script (see the README), not kept beside them."""
    assert [p.name for p in sources() if re.search(r"\bMESSAGES\b", p.read_text(encoding="utf-8"))] == []
