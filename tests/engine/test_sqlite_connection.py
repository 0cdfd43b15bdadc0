"""Each SQLite connection the engine opens: its page cache (`TSUNAGU_SQLITE_CACHE_MB`, 16 MB by
default, where SQLite's own 2 MB holds less than one large queue answer's pages)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from engine.ops.db import make_engine


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
