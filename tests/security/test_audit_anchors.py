"""Anchors of the audit trail: the chain's head kept outside the database, so a tail rewritten
with fresh hashes (which the chain alone cannot tell) is caught; and the sweeper's daily anchor,
written once a day however many sweepers run."""

from __future__ import annotations

import contextvars
import json
import os
import stat
import subprocess
import threading
from dataclasses import replace
from pathlib import Path

from sqlalchemy import delete, select, update

from cli.main import main
from engine.env import Env
from engine.models import AuditHead, AuditRecord
from engine.ops.worker import start_scheduler, sweep
from engine.security import audit
from tests.faults.support import CLI, cli_env, wait_for


def _trail(api) -> str:  # noqa: ANN001
    """A few records: a case opened, read and its first step read. The case's id."""
    ref = api("caseworker")
    case = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json
    ref.get(f"/api/tasks/{case['open_tasks'][0]['id']}")
    ref.get(f"/api/cases/{case['id']}")
    return case["id"]


def _tsunagu(monkeypatch, capsys, settings, *argv: str) -> tuple[int, str, str]:  # noqa: ANN001
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    code = contextvars.copy_context().run(main, list(argv))  # its origin ("cli") stays in there
    out, err = capsys.readouterr()
    return code, out, err


def _chain(session) -> int:  # noqa: ANN001
    """The chain of the latest record (a trail's records are all of its case, so on its chain)."""
    session.rollback()
    return session.scalar(select(AuditRecord.chain).order_by(AuditRecord.seq.desc()).limit(1))


def _head(session, chain: int | None = None) -> tuple[int, str]:  # noqa: ANN001
    """The head (place, hash) of `chain`, by default the latest record's chain."""
    chain = chain or _chain(session)
    head = session.get(AuditHead, chain)
    return head.seq, head.hash


def _heads(session) -> dict[int, tuple[int, str]]:  # noqa: ANN001
    session.rollback()
    return {h.id: (h.seq, h.hash) for h in session.scalars(select(AuditHead)) if h.seq > 0}


def _anchored(anchor: audit.Anchor) -> dict[int, tuple[int, str]]:
    return {c: (seq, digest) for c, seq, digest in anchor.heads() if seq > 0}


def _anchor(chain: int, seq: int, digest: str) -> audit.Anchor:
    if chain == 1:
        return audit.Anchor(seq, digest, "t", 1)
    return audit.Anchor(0, audit.GENESIS, "t", 1, ((chain, seq, digest),))


def _rewrite_from(session, chain: int, first: int) -> None:  # noqa: ANN001
    """What someone with write access to the database can do: change record `first` of `chain`,
    then give it and every later record on it fresh hashes and move the head, so the chain
    walks clean."""
    session.rollback()
    on = AuditRecord.chain == chain
    prev = (session.scalars(select(AuditRecord).where(on, AuditRecord.chain_seq == first - 1)).one().hash
            if first > 1 else audit.GENESIS)
    rows = list(session.scalars(select(AuditRecord).where(on, AuditRecord.chain_seq >= first)
                                .order_by(AuditRecord.chain_seq)))
    rows[0].actor_name = "someone.else"
    for row in rows:
        row.prev_hash = prev
        row.hash = prev = audit.expected_hash(row)
    session.execute(update(AuditHead).where(AuditHead.id == chain).values(seq=rows[-1].chain_seq, hash=prev))
    session.commit()


def _cut_from(session, chain: int, first: int) -> None:  # noqa: ANN001
    """Remove record `first` of `chain` and all after it on it, and move the head back to match."""
    session.rollback()
    on = AuditRecord.chain == chain
    keep = session.scalars(select(AuditRecord).where(on, AuditRecord.chain_seq == first - 1)).one()
    session.execute(delete(AuditRecord).where(on, AuditRecord.chain_seq >= first))
    session.execute(update(AuditHead).where(AuditHead.id == chain).values(seq=keep.chain_seq, hash=keep.hash))
    session.commit()


def test_anchor_appends_the_head_as_a_json_line(api, session, settings, tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    _trail(api)
    path = tmp_path / "anchors.jsonl"
    path.write_text('{"seq": 1, "hash": "%s", "at": "earlier"}\n' % ("a" * 64))
    code, out, _ = _tsunagu(monkeypatch, capsys, settings, "audit", "anchor", str(path))
    assert code == 0 and "anchored record" in out
    heads = _heads(session)
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and lines[0].startswith('{"seq": 1')  # appended; what was there is untouched
    line = json.loads(lines[1])
    assert _anchored(audit.read_anchors([lines[1]])[0]) == heads and set(line) <= {"seq", "hash", "at", "chains"}
    code, out, _ = _tsunagu(monkeypatch, capsys, settings, "audit", "anchor", "-")
    assert code == 0 and json.loads(out) == {k: v for k, v in line.items() if k != "at"} | {"at": json.loads(out)["at"]}
    assert len(path.read_text().splitlines()) == 2  # "-" prints, and writes nothing


def test_anchor_file_is_created_readable_but_not_writable_by_others(api, settings, tmp_path, monkeypatch,
                                                                     capsys) -> None:  # noqa: ANN001
    _trail(api)
    path = tmp_path / "new.jsonl"
    assert _tsunagu(monkeypatch, capsys, settings, "audit", "anchor", str(path))[0] == 0
    assert not stat.S_IMODE(os.stat(path).st_mode) & (stat.S_IWGRP | stat.S_IWOTH)


def test_verify_with_anchors_passes_an_intact_trail_that_grew_since(api, session, settings, tmp_path, monkeypatch,
                                                                    capsys) -> None:  # noqa: ANN001
    _trail(api)
    path = tmp_path / "anchors.jsonl"
    _tsunagu(monkeypatch, capsys, settings, "audit", "anchor", str(path))
    _trail(api)
    _tsunagu(monkeypatch, capsys, settings, "audit", "anchor", str(path))
    _trail(api)
    code, out, err = _tsunagu(monkeypatch, capsys, settings, "audit", "verify", "--anchors", str(path))
    assert code == 0, err
    assert "intact" in out and "2 anchor(s) match" in out


def test_a_tail_rewritten_after_an_anchor_fails_only_with_anchors(api, session, settings, tmp_path, monkeypatch,
                                                                  capsys) -> None:  # noqa: ANN001
    case_id = _trail(api)
    path = tmp_path / "anchors.jsonl"
    _tsunagu(monkeypatch, capsys, settings, "audit", "anchor", str(path))
    chain = _chain(session)
    anchored, _ = _head(session, chain)
    _trail(api)
    api("caseworker").get(f"/api/cases/{case_id}")  # a later record on the anchored chain
    _rewrite_from(session, chain, anchored - 2)
    assert _tsunagu(monkeypatch, capsys, settings, "audit", "verify")[0] == 0  # the chain alone cannot tell
    code, _, err = _tsunagu(monkeypatch, capsys, settings, "audit", "verify", "--anchors", str(path))
    assert code == 1
    assert "BROKEN" in err and "line 1" in err and f"record {anchored}" in err and "rewritten" in err


def test_records_cut_below_an_anchor_fail_only_with_anchors(api, session, settings, tmp_path, monkeypatch,
                                                            capsys) -> None:  # noqa: ANN001
    _trail(api)
    path = tmp_path / "anchors.jsonl"
    _tsunagu(monkeypatch, capsys, settings, "audit", "anchor", str(path))
    chain = _chain(session)
    anchored, _ = _head(session, chain)
    _cut_from(session, chain, anchored - 1)
    assert _tsunagu(monkeypatch, capsys, settings, "audit", "verify")[0] == 0
    code, _, err = _tsunagu(monkeypatch, capsys, settings, "audit", "verify", "--anchors", str(path))
    assert code == 1 and "line 1" in err and f"record {anchored}" in err and "removed" in err


def test_a_rewrite_after_the_anchored_record_is_beyond_the_anchor(api, session) -> None:  # noqa: ANN001
    """An anchor vouches for the records up to its own; later ones wait for the next anchor."""
    case_id = _trail(api)
    chain = _chain(session)
    seq, digest = _head(session, chain)
    api("caseworker").get(f"/api/cases/{case_id}")  # later records on the same chain
    api("caseworker").get(f"/api/cases/{case_id}")
    _rewrite_from(session, chain, seq + 1)
    assert audit.verify(session, anchors=[_anchor(chain, seq, digest)]).ok


def test_a_malformed_anchor_file_is_refused_naming_the_line(api, settings, tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    _trail(api)
    path = tmp_path / "anchors.jsonl"
    path.write_text('{"seq": 1, "hash": "%s", "at": "x"}\n\nnot json\n' % ("0" * 64))
    code, _, err = _tsunagu(monkeypatch, capsys, settings, "audit", "verify", "--anchors", str(path))
    assert code == 1 and "line 3" in err
    code, _, err = _tsunagu(monkeypatch, capsys, settings, "audit", "verify", "--anchors", str(tmp_path / "none"))
    assert code == 1 and "cannot read" in err


# ---------------------------------------------------------------- the sweeper's daily anchor


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_daily_anchor_is_written_once_a_day(personas, session_factory, session, clock, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "anchors.jsonl"
    first = audit.anchor_if_due(session_factory, path, clock.now())
    assert first is not None and _anchored(first) == _heads(session)
    assert audit.anchor_if_due(session_factory, path, clock.now()) is None
    clock.advance(hours=23)
    assert audit.anchor_if_due(session_factory, path, clock.now()) is None
    clock.advance(hours=1)
    assert audit.anchor_if_due(session_factory, path, clock.now()) is not None
    assert [line["at"] for line in _lines(path)] == [first.at, clock.now().isoformat()]


def test_sweepers_racing_write_one_anchor(personas, session_factory, clock, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "anchors.jsonl"
    start, won = threading.Barrier(4), []

    def sweeper() -> None:
        start.wait(10)
        won.append(audit.anchor_if_due(session_factory, path, clock.now()))

    threads = [threading.Thread(target=sweeper) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert len(won) == 4 and sum(a is not None for a in won) == 1
    assert len(_lines(path)) == 1


def test_a_failed_anchor_write_is_retried_minutes_later(personas, session_factory, clock, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "anchors.jsonl"
    assert audit.anchor_if_due(session_factory, tmp_path / "unmounted" / "anchors.jsonl", clock.now()) is None
    assert audit.anchor_if_due(session_factory, path, clock.now()) is None  # not at every sweep
    clock.advance(minutes=6)
    assert audit.anchor_if_due(session_factory, path, clock.now()) is not None
    assert len(_lines(path)) == 1


def test_the_timer_sweep_leaves_anchoring_to_its_own_job(personas, session_factory, env, clock, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "anchors.jsonl"
    configured = Env(replace(env.settings, audit_anchor_file=path), env.org, env.specs)
    sweep(session_factory, configured, clock)
    assert not path.exists()


def test_the_worker_anchors_when_configured(personas, settings, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "anchors.jsonl"
    proc = subprocess.Popen([*CLI, "worker"], env=cli_env(settings.database_url, TSUNAGU_AUDIT_ANCHOR_FILE=str(path)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: path.exists() and path.read_text().endswith("\n"), 60, "the worker's anchor")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert len(_lines(path)) == 1


def test_the_serve_scheduler_anchors_when_configured(personas, session_factory, env, clock, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "anchors.jsonl"
    configured = Env(replace(env.settings, audit_anchor_file=path), env.org, env.specs)
    scheduler = start_scheduler(session_factory, configured, clock, 60)
    try:
        wait_for(lambda: path.exists() and path.read_text().endswith("\n"), 30, "the scheduler's anchor")
    finally:
        scheduler.shutdown(wait=True)
    assert len(_lines(path)) == 1
