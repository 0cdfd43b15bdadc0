"""Bench part: the supervisors' stuck report and dashboard counts with 100,000 cases of which
10% are stuck, against the same queries on 1,000 cases (10 stuck in 100), in the same run.

The rows are written directly (core inserts in chunks) as the engine would have left them: one
open task per case at a step of the multi-agency process, most claimed and not yet due, with
recent history; the stuck tenth spread over the six reasons (overdue, unassigned, monitoring
overdue, idle, error, waiting for a message). Timed are the domain functions the API and pages
call, as a case-wide supervisor (the secretariat's, who sees every case) and as a supervisor of
one agency (whose rows are each tested against the cases that agency may see):

- `stuck_report_p95_ms`: the report's first page (50 rows, oldest first) and its total, as
  `engine.reports.stuck.stuck_page` answers GET /api/reports/stuck (its audit record included);
- `dashboard_counts_p95_ms`: the dashboard's counts by reason and age bucket
  (`engine.reports.stuck.counts`).

    python -m bench.reports [--cases 100000] [--repeat 30] [--json]
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

from bench.figures import Context, Figure
from bench.system import System, fresh_system
from engine.clock import FrozenClock
from engine.models import Case, HumanTask, MessageWait, ProcessDefinition, User
from engine.reports import stuck
from engine.security import users
from engine.status import CaseStatus, TaskState

CHUNK = 5_000
STEPS = [("intake", "1. 相談・調整", "hokatsu-center"), ("assessment", "2. アセスメント", "secretariat"),
         ("plan", "3. 課題整理・支援方針の作成", "secretariat"), ("meeting", "4. 支援会議", "secretariat"),
         ("monitoring", "5. モニタリング", "secretariat"), ("closure", "6. 終結", "secretariat")]
REFERRING = ["hokatsu-center", "kikan-sodan-center", "kurashi-saiken-psc", "wakamono-sodan", "minsei-iin"]
# What each stuck case is stuck for, in turn.
STUCK_KINDS = ["overdue", "unassigned", "monitoring_overdue", "idle", "error", "waiting"]


def fill(system: System, now: Any, n_cases: int, stuck_every: int = 10, assignee_id: int | None = None) -> int:
    """`n_cases` cases, every `stuck_every`-th stuck for one reason; returns how many are stuck."""
    with system.factory() as s:
        if s.bind.dialect.name == "sqlite":
            # Random case ids land all over the indexes: a cache that holds them keeps the fill off
            # the disk (this connection only; the timed sessions keep the default).
            s.execute(text("PRAGMA cache_size=-131072"))
        definition = s.scalar(select(ProcessDefinition.id).where(ProcessDefinition.process_key == "multi_agency"))
        stuck_n = 0
        for start in range(0, n_cases, CHUNK):
            cases, tasks, waits = [], [], []
            for i in range(start, min(start + n_cases, start + CHUNK, n_cases)):
                cid = str(uuid.uuid4())
                kind = STUCK_KINDS[(i // stuck_every) % len(STUCK_KINDS)] if i % stuck_every == 0 else None
                stuck_n += kind is not None
                # Stuck cases sit at the steps before monitoring (which has a reason of its own).
                step, name, group = STEPS[(i // stuck_every) % 4] if kind else STEPS[i % len(STEPS)]
                referring = REFERRING[(i // 7) % len(REFERRING)]
                if step == "intake":
                    group = referring
                age = timedelta(days=1 + (i * 7919) % 200) if kind else timedelta(hours=1 + i % 40)
                status = CaseStatus.ERROR if kind == "error" else CaseStatus.ACTIVE
                # History moved lately on every case but the idle ones (a claim, a note, a reminder).
                last_event = now - (timedelta(days=31) + age if kind == "idle" else min(age, timedelta(days=20)))
                cases.append({"id": cid, "number": f"MA-2025-{i:06d}", "process_key": "multi_agency",
                              "definition_id": definition, "status": status, "referring_group_id": referring,
                              "summary": f"世帯 {i:06d} の相談", "created_at": now - age - timedelta(days=1),
                              "updated_at": last_event, "last_event_at": last_event,
                              "error": "スクリプトが失敗しました: KeyError 'income'" if kind == "error" else None,
                              "state": "", "serializer_version": "1", "version": 1})
                if kind == "waiting":
                    waits.append({"case_id": cid, "process_key": "multi_agency", "task_id": str(uuid.uuid4()),
                                  "kind": "message", "name": "outreach_result", "step": "wait_result",
                                  "step_name": "結果の連絡待ち", "correlation": {"household_ref": f"H-{i}"},
                                  "correlation_key": uuid.uuid4().hex, "since": now - timedelta(days=15) - age})
                    continue
                if kind == "monitoring_overdue":
                    step, name, group = STEPS[4]
                created = now - (timedelta(days=4) + age if kind in ("unassigned", "monitoring_overdue") else age)
                due = now - age if kind == "overdue" else now + timedelta(days=3 + i % 11)
                if kind == "monitoring_overdue":
                    due = now + timedelta(days=1)  # its own limit not yet passed: only this reason
                tasks.append({"id": str(uuid.uuid4()), "case_id": cid, "process_key": "multi_agency", "step": step,
                              "name": name, "lane": "事務局", "group_id": group,
                              "assignee_id": None if kind == "unassigned" else assignee_id, "form_key": None,
                              "state": TaskState.OPEN, "created_at": created, "due_at": due})
            # Core inserts on the connection (executemany), not the ORM's bulk path: five times faster.
            conn = s.connection()
            conn.execute(insert(Case.__table__), cases)
            if tasks:
                conn.execute(insert(HumanTask.__table__), tasks)
            if waits:
                conn.execute(insert(MessageWait.__table__), waits)
        s.commit()
        if s.bind.dialect.name == "postgresql":
            with s.bind.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for table in ("cases", "human_tasks", "message_waits"):
                    conn.execute(text(f"VACUUM ANALYZE {table}"))
        else:
            # No ANALYZE (nothing runs it on a production database): the plans as production has them.
            s.execute(text("PRAGMA cache_size=-2000"))  # SQLite's default again, for the timed reads
    return stuck_n


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _measure(system: System, now: Any, who: str, repeat: int) -> dict[str, float]:
    out: dict[str, list[float]] = {"page": [], "counts": []}
    with system.factory() as s:
        actor = s.scalar(select(User).where(User.name == who))
        for round_ in range(repeat + 2):
            t0 = time.perf_counter()
            page = stuck.stuck_page(s, system.env, actor, now, stuck.Filters())
            t1 = time.perf_counter()
            stuck.counts(s, system.env, actor, now)
            s.rollback()
            t2 = time.perf_counter()
            if round_ >= 2:  # the first two warm the caches (specs, statements)
                out["page"].append((t1 - t0) * 1000)
                out["counts"].append((t2 - t1) * 1000)
            assert page.items, "the report found nothing stuck"
    return {k: _p95(v) for k, v in out.items()}


def run(n_cases: int, repeat: int, database_url: str | None = None) -> dict[str, Any]:
    clock = FrozenClock()
    now = clock.now()
    results: dict[str, Any] = {"cases": n_cases, "repeat": repeat}
    for label, count in (("baseline", 1_000), ("full", n_cases)):
        system = fresh_system(database_url if label == "full" else None, now, prefix="tsunagu-bench-reports-")
        with system.factory() as s:
            users.add_user(s, "bench.kacho", ["secretariat", "chiiki-kyosei"], ["secretariat", "supervisor"], now,
                           "課長 ベンチ")
            users.add_user(s, "bench.hokatsu", ["hokatsu-center"], ["supervisor"], now, "係長 ベンチ")
            worker = users.add_user(s, "bench.worker", ["secretariat", "hokatsu-center"], ["staff"], now, "職員 ベンチ")
            s.commit()
            worker_id = worker.id
        t0 = time.perf_counter()
        stuck_n = fill(system, now, count, assignee_id=worker_id)
        results[label] = {"database": system.engine.dialect.name, "cases": count, "stuck": stuck_n,
                          "fill_seconds": round(time.perf_counter() - t0, 1),
                          "case_wide": _measure(system, now, "bench.kacho", repeat),
                          "one_agency": _measure(system, now, "bench.hokatsu", repeat)}
        system.dispose()
    return results


def figures(ctx: Context) -> list[Figure]:
    # The quick run measures the same 100,000 cases as the target (a smaller database would
    # flatter the figure), fewer times: the fill takes most of its time.
    n = int(ctx.options.get("report_cases", 100_000))
    repeat = 20 if ctx.quick else 30  # 20: the p95 is not simply the slowest of a few
    r = run(n, repeat)
    full, base = r["full"], r["baseline"]
    note = (f"{full['cases']:,} cases, {full['stuck']:,} stuck, {full['database']}; baseline {base['cases']:,} "
            f"cases in the same run; p95 of {repeat}")
    out = []
    for name, key in (("stuck_report_p95_ms", "page"), ("dashboard_counts_p95_ms", "counts")):
        out.append(Figure(name, round(full["case_wide"][key], 1), "ms", 300, "<", round(base["case_wide"][key], 1),
                          "ms", note + " (a case-wide supervisor)"))
        out.append(Figure(f"{name.removesuffix('_p95_ms')}_one_agency_p95_ms", round(full["one_agency"][key], 1), "ms",
                          300, "<", round(base["one_agency"][key], 1), "ms", note + " (one agency's supervisor)"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    r = run(args.cases, args.repeat, os.environ.get("DATABASE_URL"))
    if args.json:
        print(json.dumps(r, ensure_ascii=False, indent=2))
        return 0
    full, base = r["full"], r["baseline"]
    print(f"stuck report, {full['database']}: {full['cases']:,} cases ({full['stuck']:,} stuck, filled in "
          f"{full['fill_seconds']}s) against {base['cases']:,}; p95 ms of {args.repeat}")
    print(f"{'query':<34}{'baseline':>10}{'full':>10}")
    for who in ("case_wide", "one_agency"):
        for key in ("page", "counts"):
            print(f"{who + ' ' + key:<34}{base[who][key]:>10.1f}{full[who][key]:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
