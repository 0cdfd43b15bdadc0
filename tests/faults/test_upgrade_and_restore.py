"""Data outlives the program: a database made by the first schema version upgrades in place
(`tsunagu init`) and its cases continue; a backup restored into an empty database continues too.
Both on the test backend (SQLite file, or PostgreSQL: pg_dump / pg_restore)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cli.main import main
from engine.casework import search
from engine.env import Env
from engine.migrations import alembic_config
from engine.models import Case, User
from engine.ops.backup import BackupError, restore
from engine.ops.check import check_all
from engine.ops.db import current_revision, make_engine, make_session_factory
from tests.conftest import Personas, _fresh_database_url
from tests.engine.support import ASSESSMENT, CLOSURE, Driver, intake, meeting, monitoring, plan
from tests.faults.support import copy_rows

FIRST_REVISION = "0001"


@pytest.fixture
def other_database(tmp_path: Path) -> Iterator[str]:
    """A second fresh, empty database on the same backend."""
    folder = tmp_path / "other"
    folder.mkdir()
    url, drop = _fresh_database_url(folder)
    yield url
    drop()


def _cases_in_progress(driver: Driver, p: Personas) -> dict[str, str]:
    """One case waiting for its monitoring timer, one at its assessment."""
    waiting = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, waiting, "intake", intake())
    driver.complete_step(p.secretariat, waiting, "assessment", ASSESSMENT)
    driver.complete_step(p.secretariat, waiting, "plan", plan("P7D"))
    driver.complete_step(p.secretariat, waiting, "meeting", meeting("choju-anshin"))
    assessing = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, assessing, "intake", intake())
    return {"waiting": waiting, "assessing": assessing}


def _continue_to_closure(driver: Driver, cases: dict[str, str]) -> None:
    """Finish both cases on whatever database `driver` is bound to (users looked up by name)."""
    with driver.factory() as s:
        by_name = {u.name: u for u in s.query(User)}
    secretariat = by_name["kyosei.tanaka"]
    driver.complete_step(secretariat, cases["assessing"], "assessment", ASSESSMENT)
    driver.complete_step(secretariat, cases["assessing"], "plan", plan("P7D"))
    driver.complete_step(secretariat, cases["assessing"], "meeting", meeting("choju-anshin"))
    driver.clock.advance(days=8)
    assert driver.fire() == 2
    for case_id in cases.values():
        driver.complete_step(secretariat, case_id, "monitoring", monitoring("close"))
        driver.complete_step(secretariat, case_id, "closure", CLOSURE)
        assert driver.case(case_id).status == "completed"
        driver.check(case_id)
    with driver.factory() as s:
        report = check_all(s, driver.env)
    assert report.problems == [], "\n".join(map(str, report.problems))


def test_a_database_of_the_first_schema_upgrades_and_its_cases_continue(
        driver: Driver, personas: Personas, env: Env, other_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = _cases_in_progress(driver, personas)
    # The old database: migrations up to 0001 only, holding those cases (the columns 0001 knows).
    command.upgrade(alembic_config(url=other_database), FIRST_REVISION)
    assert current_revision(other_database) == FIRST_REVISION
    old = make_engine(other_database)
    try:
        copied = copy_rows(driver.factory, make_session_factory(old))
    finally:
        old.dispose()
    assert copied["cases"] == 2 and copied["case_events"] > 10

    monkeypatch.setenv("DATABASE_URL", other_database)
    assert main(["init"]) == 0  # upgrades in place; the diagrams are unchanged
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert current_revision(other_database) == head != FIRST_REVISION

    upgraded = make_engine(other_database)
    try:
        _continue_to_closure(Driver(make_session_factory(upgraded), env, driver.clock), cases)
    finally:
        upgraded.dispose()


def test_backup_restores_into_an_empty_database_and_cases_continue(
        driver: Driver, personas: Personas, env: Env, database_url: str, other_database: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    cases = _cases_in_progress(driver, personas)
    archive = tmp_path / "backups" / "tsunagu.backup"
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["backup", str(archive)]) == 0  # while the test's own connections are open
    assert archive.stat().st_size > 0
    # The source moves on after the backup; the restored copy must not see it.
    driver.complete_step(personas.secretariat, cases["assessing"], "assessment", ASSESSMENT)

    monkeypatch.setenv("DATABASE_URL", other_database)
    assert main(["restore", str(archive)]) == 0
    assert main(["restore", str(archive)]) == 1  # not empty any more
    assert "not empty" in capsys.readouterr().err
    assert main(["init"]) == 0

    restored = make_engine(other_database)
    try:
        with Session(restored) as s:
            assert s.query(Case).count() == 2
            # The search's index comes with the copy: each case is found by its number.
            for number in s.scalars(select(Case.number)).all():
                assert s.scalars(select(Case.number).where(search.matching(s, [search.normalize(number)]))).all() == [number]
            assert not [p for p in check_all(s, env).problems if "search index" in p.what]
        _continue_to_closure(Driver(make_session_factory(restored), env, driver.clock), cases)
    finally:
        restored.dispose()


def test_restore_refuses_a_database_with_tables(session_factory: sessionmaker[Session], database_url: str,
                                                tmp_path: Path) -> None:
    archive = tmp_path / "none.backup"
    archive.write_bytes(b"")
    with pytest.raises(BackupError, match="not empty"):
        restore(database_url, archive)

