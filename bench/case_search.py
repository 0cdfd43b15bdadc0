"""Bench part (figure 3 of issue 14): the case search, `GET /api/cases?q=...`, at 100,000 cases,
against the same requests at 1,000 cases in the same run.

The rows are written directly (core inserts in chunks) as the engine leaves them: cases of every
state (active at a step, waiting for their monitoring timer, closed), each with a workflow state
of a few kilobytes as real cases have (on SQLite it sits in the row, before the search text),
a household of one to three members, the search text `engine.casework.search.case_text` makes of them
and the search's index of it (case_search, case_search_grams) as `engine.casework.search.store` keeps it.
Timed are requests through the app's test client (the whole view: parameters, visibility, query,
total, audit record, JSON), as the secretariat (who sees every case) and as a caseworker of one
agency, each over the same rotation of queries: a full name in hiragana (the household is stored
in katakana), a surname in half-width katakana, a kanji name, a case number, a word of the
summaries with a status filter.

- `case_search_100k_ms`: p95 of the secretariat's requests (target < 100 ms);
- `case_search_one_agency_100k_ms`: p95 of the one agency's caseworker;
- `case_search_100k_cpu_ms`, `case_search_one_agency_100k_cpu_ms`: the same requests' CPU time
  (this process: the app and SQLite), which the other work of a shared machine does not inflate;
- `case_search_100k_pg_ms`: the secretariat's on PostgreSQL, when the bench has a
  server (a database `tsunagu_bench_search_<pid>` is made there with LC_CTYPE C.UTF-8 and dropped).

    python -m bench.case_search [--cases 100000] [--repeat 30] [--database-url URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url

from bench.figures import Context, Figure
from bench.system import System, fresh_system
from engine.casework import search
from engine.clock import FrozenClock
from engine.models import (
    Case,
    CaseSearchGram,
    CaseSearchText,
    HouseholdMember,
    HumanTask,
    ProcessDefinition,
    Timer,
)
from engine.security import users
from engine.status import CaseStatus, TaskState, TimerStatus

CHUNK = 5_000
REFERRING = ["hokatsu-center", "kikan-sodan-center", "kurashi-saiken-psc", "wakamono-sodan", "minsei-iin"]
# (kanji, katakana) surnames and given names: 40 × 40 full names, so a full name is ~1 in 1,600.
SURNAMES = [("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"), ("田中", "タナカ"), ("伊藤", "イトウ"),
            ("渡辺", "ワタナベ"), ("山本", "ヤマモト"), ("中村", "ナカムラ"), ("小林", "コバヤシ"), ("加藤", "カトウ"),
            ("吉田", "ヨシダ"), ("山田", "ヤマダ"), ("佐々木", "ササキ"), ("山口", "ヤマグチ"), ("松本", "マツモト"),
            ("井上", "イノウエ"), ("木村", "キムラ"), ("林", "ハヤシ"), ("斎藤", "サイトウ"), ("清水", "シミズ"),
            ("山崎", "ヤマザキ"), ("森", "モリ"), ("池田", "イケダ"), ("橋本", "ハシモト"), ("阿部", "アベ"),
            ("石川", "イシカワ"), ("山下", "ヤマシタ"), ("中島", "ナカジマ"), ("石井", "イシイ"), ("小川", "オガワ"),
            ("前田", "マエダ"), ("岡田", "オカダ"), ("長谷川", "ハセガワ"), ("藤田", "フジタ"), ("後藤", "ゴトウ"),
            ("近藤", "コンドウ"), ("村上", "ムラカミ"), ("遠藤", "エンドウ"), ("青木", "アオキ"), ("坂本", "サカモト")]
GIVEN = [("太郎", "タロウ"), ("花子", "ハナコ"), ("一郎", "イチロウ"), ("陽菜", "ヒナ"), ("蓮", "レン"), ("結衣", "ユイ"),
         ("大翔", "ヒロト"), ("葵", "アオイ"), ("湊", "ミナト"), ("凛", "リン"), ("健", "ケン"), ("恵", "メグミ"),
         ("誠", "マコト"), ("翔太", "ショウタ"), ("美咲", "ミサキ"), ("拓海", "タクミ"), ("さくら", "サクラ"),
         ("悠真", "ユウマ"), ("優子", "ユウコ"), ("隆", "タカシ"), ("明美", "アケミ"), ("浩", "ヒロシ"),
         ("直美", "ナオミ"), ("修", "オサム"), ("由美", "ユミ"), ("勇気", "ユウキ"), ("千尋", "チヒロ"), ("学", "マナブ"),
         ("真由美", "マユミ"), ("大輔", "ダイスケ"), ("智子", "トモコ"), ("和也", "カズヤ"), ("裕子", "ユウコ"),
         ("亮", "リョウ"), ("愛", "アイ"), ("進", "ススム"), ("幸子", "サチコ"), ("豊", "ユタカ"), ("静香", "シズカ"),
         ("茂", "シゲル")]
SUMMARIES = ["高齢の母の介護と子の不登校", "就労が続かず家賃を滞納", "ひきこもりの息子と高齢の両親",
             "障害のある兄弟の世話", "ごみ屋敷と近隣からの苦情", "多重債務と生活困窮", "ヤングケアラーの疑い",
             "退院後の生活の立て直し"]
STATE = "x" * 4_000  # a workflow state of a few kilobytes, as a real case's


def _person(i: int, k: int) -> tuple[str, str]:
    sur, sur_kana = SURNAMES[(i * 7 + k) % len(SURNAMES)]
    given, given_kana = GIVEN[(i * 13 + k * 5) % len(GIVEN)]
    return f"{sur} {given}", f"{sur_kana} {given_kana}"


def fill(system: System, now: Any, n_cases: int) -> None:
    """`n_cases` cases: 60% active at a step, 20% waiting for their monitoring timer, 20% closed."""
    with system.factory() as s:
        if s.bind.dialect.name == "sqlite":
            s.execute(text("PRAGMA cache_size=-131072"))
        definition = s.scalar(select(ProcessDefinition.id).where(ProcessDefinition.process_key == "multi_agency"))
        for start in range(0, n_cases, CHUNK):
            cases, members, tasks, timers = [], [], [], []
            for i in range(start, min(start + CHUNK, n_cases)):
                cid = str(uuid.uuid4())
                number = f"MA-2025-{i:06d}"
                summary = f"{SUMMARIES[i % len(SUMMARIES)]}（{i:06d}）"
                household = [_person(i, k) for k in range(1 + i % 3)]
                kind = ("active", "active", "active", "waiting", "closed")[i % 5]
                created = now - timedelta(minutes=n_cases - i)
                cases.append({"id": cid, "number": number, "process_key": "multi_agency", "definition_id": definition,
                              "status": CaseStatus.COMPLETED if kind == "closed" else CaseStatus.ACTIVE,
                              "referring_group_id": REFERRING[(i // 7) % len(REFERRING)], "summary": summary,
                              "created_at": created, "updated_at": created, "last_event_at": created,
                              "completed_at": created if kind == "closed" else None, "state": STATE,
                              "serializer_version": "1", "version": 1,
                              "search_text": search.case_text(number, summary, household)})
                members += [{"case_id": cid, "position": k, "name": name, "kana": kana, "attributes": [],
                             "updated_at": created} for k, (name, kana) in enumerate(household)]
                if kind == "active":
                    tasks.append({"id": str(uuid.uuid4()), "case_id": cid, "process_key": "multi_agency",
                                  "step": "assessment", "name": "2. アセスメント", "lane": "事務局",
                                  "group_id": "secretariat", "assignee_id": None, "form_key": None,
                                  "state": TaskState.OPEN, "created_at": created, "due_at": None})
                elif kind == "waiting":
                    timers.append({"case_id": cid, "task_id": str(uuid.uuid4()), "step": "monitoring_timer",
                                   "step_name": "モニタリングまで待つ", "due_at": now + timedelta(days=10),
                                   "status": TimerStatus.PENDING, "created_at": created, "attempts": 0})
            conn = s.connection()
            conn.execute(insert(Case.__table__), cases)
            conn.execute(insert(HouseholdMember.__table__), members)
            # The search's index as engine.casework.search.store keeps it (its text numbered from 1 up).
            conn.execute(insert(CaseSearchText.__table__), [
                {"doc": i + 1, "case_id": c["id"], "text": c["search_text"]} for i, c in enumerate(cases, start)])
            conn.execute(insert(CaseSearchGram.__table__), [
                {"gram": g, "doc": i + 1} for i, c in enumerate(cases, start) for g in search.grams(c["search_text"])])
            if tasks:
                conn.execute(insert(HumanTask.__table__), tasks)
            if timers:
                conn.execute(insert(Timer.__table__), timers)
        s.commit()
        if s.bind.dialect.name == "postgresql":
            # The numbers were given here: the sequence goes on after them.
            s.execute(text("SELECT setval(pg_get_serial_sequence('case_search', 'doc'), max(doc)) FROM case_search"))
            s.commit()
            with s.bind.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for table in ("cases", "household_members", "case_search", "case_search_grams", "human_tasks", "timers"):
                    conn.execute(text(f"VACUUM ANALYZE {table}"))
        else:
            # No ANALYZE (nothing runs it on a production database): the plans as production has them.
            s.execute(text("PRAGMA cache_size=-2000"))


def queries(n_cases: int) -> list[dict[str, str]]:
    """The rotation: what a caseworker types, in the forms the stored text does not have."""
    name, kana = _person(n_cases // 2, 0)
    hira = kana.translate({c: c - 0x60 for c in range(0x30A1, 0x30F7)})
    sur_half = "ｻｻｷ"
    return [{"q": hira}, {"q": sur_half}, {"q": name.split()[0] + " " + name.split()[1]},
            {"q": f"MA-2025-{n_cases // 3:06d}"}, {"q": "家賃", "status": "active"}]


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _measure(system: System, clock: FrozenClock, token: str, rotation: list[dict[str, str]],
             repeat: int) -> dict[str, float]:
    """p95 of the requests' wall time and of their CPU time (this process's: the app and, on
    SQLite, the database; on a shared machine the wall time also holds the waits for a core)."""
    from web import create_app

    app = create_app(system.settings, clock=clock, env=system.env, config={"TESTING": True})
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    wall, cpu = [], []
    for round_ in range(repeat + 2):
        for params in rotation:
            t0, c0 = time.perf_counter(), time.process_time()
            r = client.get("/api/cases", query_string={**params, "limit": 50}, headers=headers)
            elapsed, used = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
            assert r.status_code == 200, r.get_data(as_text=True)[:300]
            assert "X-Total-Count" in r.headers
            if round_ >= 2:  # the first two warm the caches (specs, statements)
                wall.append(elapsed)
                cpu.append(used)
    return {"wall": _p95(wall), "cpu": _p95(cpu)}


def run(n_cases: int, repeat: int, database_url: str | None = None) -> dict[str, Any]:
    clock = FrozenClock()
    now = clock.now()
    out: dict[str, Any] = {"cases": n_cases, "repeat": repeat}
    runs = [("baseline", 1_000, None), ("full", n_cases, None)]
    if database_url:
        runs.append(("postgresql", n_cases, database_url))
    for label, count, url in runs:
        system = fresh_system(url, now, prefix="tsunagu-bench-search-")
        with system.factory() as s:
            kacho = users.add_user(s, "bench.kacho", ["secretariat", "chiiki-kyosei"], ["secretariat"], now, "課長")
            hokatsu = users.add_user(s, "bench.hokatsu", ["hokatsu-center"], ["staff"], now, "職員")
            tokens = {"case_wide": users.issue_token(s, kacho, now), "one_agency": users.issue_token(s, hokatsu, now)}
            s.commit()
        t0 = time.perf_counter()
        fill(system, now, count)
        rotation = queries(count)
        out[label] = {"database": system.engine.dialect.name, "cases": count,
                      "fill_seconds": round(time.perf_counter() - t0, 1),
                      **{who: _measure(system, clock, token, rotation, repeat) for who, token in tokens.items()}}
        system.dispose()  # the SQLite file of 100,000 cases (a gigabyte) goes with it
    return out


def _pg_database(server_url: str) -> tuple[str, Any]:
    """A new database on the server with a UTF-8 ctype (as a production database would be made),
    and how to drop it."""
    from sqlalchemy import create_engine

    url = make_url(server_url)
    # A name of this run's own: runs of the bench by several people may share the server.
    name = f"tsunagu_bench_search_{os.getpid()}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' "
                          "LC_CTYPE 'C.UTF-8'"))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


def figures(ctx: Context) -> list[Figure]:
    n = int(ctx.options.get("search_cases", 100_000))
    repeat = int(ctx.options.get("search_repeat", 10 if ctx.quick else 20))  # × 5 queries a round
    drop = None
    url = None
    if ctx.database_url:
        url, drop = _pg_database(ctx.database_url)
    try:
        r = run(n, repeat, url)
    finally:
        if drop:
            drop()
    full, base = r["full"], r["baseline"]
    note = (f"{full['cases']:,} cases (60% at a step, 20% waiting for a timer, 20% closed), {full['database']}; "
            f"baseline {base['cases']:,} in the same run; p95 of {repeat * 5} requests over 5 queries")
    out = []
    for who, name, label in (("case_wide", "case_search_100k", "the secretariat: every case"),
                             ("one_agency", "case_search_one_agency_100k", "one agency's caseworker")):
        out += [Figure(f"{name}_ms", round(full[who]["wall"], 1), "ms", 100, "<", round(base[who]["wall"], 1),
                       "ms", f"{note} ({label}; CPU p95 {full[who]['cpu']:.1f} ms)"),
                Figure(f"{name}_cpu_ms", round(full[who]["cpu"], 1), "ms", 100, "<", round(base[who]["cpu"], 1),
                       "ms", f"{note} ({label}): CPU time of the request (app and SQLite), not the waits for a core")]
    if "postgresql" in r:
        pg = r["postgresql"]
        out.append(Figure("case_search_100k_pg_ms", round(pg["case_wide"]["wall"], 1), "ms", 100, "<",
                          round(base["case_wide"]["wall"], 1), "ms",
                          f"{pg['cases']:,} cases on PostgreSQL, the secretariat; one agency "
                          f"{pg['one_agency']['wall']:.1f} ms; baseline SQLite 1,000"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database-url", default=os.environ.get("TSUNAGU_BENCH_DATABASE_URL"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figs = figures(Context(database_url=args.database_url, options={"search_cases": args.cases, "search_repeat": args.repeat}))
    if args.json:
        print(json.dumps([f.as_json() for f in figs], ensure_ascii=False, indent=2))
    else:
        for f in figs:
            print(f"{f.name:<34}{f.value:>10.1f} {f.unit}  (baseline {f.baseline}; target {f.op} {f.target}) {f.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
