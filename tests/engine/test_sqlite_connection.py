"""Each SQLite connection the engine opens: its page cache (`TSUNAGU_SQLITE_CACHE_MB`, 16 MB by
default, where SQLite's own 2 MB holds less than one large queue answer's pages), and WAL
checkpoints: a serving process's commits leave them to the worker (doing one only past the
backstop), background work's do them as SQLite does."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from engine.ops.db import (
    WAL_BACKSTOP_PAGES,
    WAL_PAGES_BACKGROUND,
    checkpoint,
    make_engine,
    make_session_factory,
)
from engine.ops.worker import run_checkpointer, start_scheduler
from tests.faults.support import wait_for


def cache_kib(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return -conn.execute(text("PRAGMA cache_size")).scalar_one()
    finally:
        engine.dispose()


def test_a_connection_has_a_page_cache_of_16_mb_by_default(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("TSUNAGU_SQLITE_CACHE_MB", raising=False)
    assert cache_kib(f"sqlite:///{tmp_path / 'a.db'}") == 16 * 1024


def test_the_page_cache_is_set_by_the_environment(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("TSUNAGU_SQLITE_CACHE_MB", "64")
    assert cache_kib(f"sqlite:///{tmp_path / 'a.db'}") == 64 * 1024


@pytest.mark.parametrize("bad", ["lots", "-1", "1.5"])
def test_a_page_cache_that_is_not_a_whole_number_is_refused_naming_the_variable(tmp_path, monkeypatch,  # noqa: ANN001
                                                                                bad: str) -> None:
    monkeypatch.setenv("TSUNAGU_SQLITE_CACHE_MB", bad)
    with pytest.raises(SystemExit, match="TSUNAGU_SQLITE_CACHE_MB"):
        make_engine(f"sqlite:///{tmp_path / 'a.db'}")


# ---------------------------------------------------------------- checkpoints off the request path

def wal_file(engine: Engine) -> Path:
    return Path(engine.url.database + "-wal")


def write_rows(engine: Engine, rows: int, size: int = 1000) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (v TEXT)"))
        conn.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "x" * size}] * rows)


def test_a_serving_process_leaves_checkpoints_to_the_worker_up_to_the_backstop(tmp_path) -> None:  # noqa: ANN001
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}", serving=True)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == WAL_BACKSTOP_PAGES
        # SQLite's own 1,000 pages (4 MB) would have been copied by a commit by now; 8 MB later,
        # the database file itself still holds next to nothing.
        for _ in range(4):
            write_rows(engine, 2000)
        assert (tmp_path / "a.db").stat().st_size < 1_000_000
        assert wal_file(engine).stat().st_size > 8_000_000
    finally:
        engine.dispose()


def test_background_work_checkpoints_as_it_commits(tmp_path) -> None:  # noqa: ANN001
    # (Nobody waits on its commits; and the pause after each lets other writers have the lock.)
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == WAL_PAGES_BACKGROUND
        for _ in range(4):
            write_rows(engine, 2000)
        assert (tmp_path / "a.db").stat().st_size > 4_000_000
    finally:
        engine.dispose()


def test_the_web_app_is_a_serving_process(app) -> None:  # noqa: ANN001
    engine = app.extensions["tsunagu.db_engine"]
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == WAL_BACKSTOP_PAGES


def test_a_checkpoint_copies_the_wal_into_the_database_and_the_wal_starts_over(tmp_path) -> None:  # noqa: ANN001
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        write_rows(engine, 2000)
        busy, pages, copied = checkpoint(engine)
        assert (busy, copied) == (0, pages) and pages > 400
        assert (tmp_path / "a.db").stat().st_size > 2_000_000
        write_rows(engine, 1)
        # The next writer wrote from the WAL's start again: it holds that one commit only.
        _, pages_after, _ = checkpoint(engine)
        assert 0 < pages_after < 10
    finally:
        engine.dispose()


def test_the_worker_checkpoints_every_interval_until_stopped(tmp_path) -> None:  # noqa: ANN001
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    stop = threading.Event()
    thread = threading.Thread(target=run_checkpointer, args=(make_session_factory(engine), stop, 0.05))
    thread.start()
    try:
        write_rows(engine, 2000)  # ~500 pages: less than a commit of background work checkpoints
        wait_for(lambda: (tmp_path / "a.db").stat().st_size > 2_000_000, 10, "the worker's checkpoint")
    finally:
        stop.set()
        thread.join(5)
        engine.dispose()
    assert not thread.is_alive()


def test_the_serve_scheduler_checkpoints_sqlite_only(session_factory, env, clock) -> None:  # noqa: ANN001
    scheduler = start_scheduler(session_factory, env, clock, 60)
    try:
        job = scheduler.get_job("wal-checkpoint")
    finally:
        scheduler.shutdown(wait=True)
    with session_factory() as session:
        sqlite = session.get_bind().dialect.name == "sqlite"
    assert (job is not None) == sqlite
    if not sqlite:
        assert checkpoint(session.get_bind()) is None
