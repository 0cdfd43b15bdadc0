"""Benchmark: the staff work queue page with 100,000 open tasks, against an empty queue.

The whole page is timed through the Flask test client (sign-in session, engine.casework.queue, the
template), as a secretariat member sees it: the default view (by due date), another sort, a
deep page, filters, and a search. The same requests are timed first on a queue with a few
tasks, then after 100,000 open tasks were added (core inserts, as tests/ui/test_queue_scale.py
does); the ratio of the two, measured in the same run on the same machine, is what to watch.

    python -m bench.bench_queue [--tasks 100000] [--repeat 15] [--json]

SQLite in a temporary folder by default; DATABASE_URL=postgresql+psycopg://... for PostgreSQL
(the database must be empty: the benchmark creates the schema and leaves its rows behind).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from datetime import timedelta
from typing import Any

from bench.system import fresh_system
from engine.clock import FrozenClock
from engine.security import users

PASSWORD = "bench-password"
VIEWS = {
    "default (due date)": "/",
    "sort by age": "/?sort=age",
    "sort by case": "/?sort=case",
    "page 500": "/?page=500",
    "overdue only": "/?overdue=1",
    "unassigned, step plan": "/?assignee=unassigned&step=plan",
    "search summary": "/?q=%E4%B8%96%E5%B8%AF+0042",
}


def _signed_in(app: Any) -> Any:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = client.post("/login", data={"username": "bench.sec", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302, "sign-in failed"
    return client


def _time(client: Any, url: str, repeat: int) -> float:
    client.get(url)  # warm caches, compile templates
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = client.get(url)
        samples.append(time.perf_counter() - t0)
        assert r.status_code == 200, (url, r.status_code)
    return statistics.median(samples) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    from tests.ui.test_queue_scale import CASES, CHUNK, fill  # the same rows as the test

    clock = FrozenClock()
    system = fresh_system(os.environ.get("DATABASE_URL"), clock.now())
    settings, env, engine, factory = system.settings, system.env, system.engine, system.factory
    with factory() as s:
        sec = users.add_user(s, "bench.sec", ["secretariat", "chiiki-kyosei"], ["secretariat"], clock.now(),
                             "事務局 ベンチ", PASSWORD)
        s.commit()

    from web import create_app

    os.environ.setdefault("TSUNAGU_SECRET_KEY", "bench")
    app = create_app(settings, clock=clock, env=env, config={"TESTING": True})
    client = _signed_in(app)
    empty = {name: _time(client, view, args.repeat) for name, view in VIEWS.items()}

    t0 = time.perf_counter()
    fill(factory, clock.now() - timedelta(seconds=1), sec.id, args.tasks)
    fill_s = time.perf_counter() - t0
    client = _signed_in(app)
    full = {name: _time(client, view, args.repeat) for name, view in VIEWS.items()}

    results = {
        "database": engine.dialect.name, "open_tasks": args.tasks, "cases": CASES, "insert_chunk": CHUNK,
        "fill_seconds": round(fill_s, 1), "repeat": args.repeat,
        "views": {name: {"empty_ms": round(empty[name], 2), "full_ms": round(full[name], 2),
                         "ratio": round(full[name] / empty[name], 1)} for name in VIEWS},
    }
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
    else:
        print(f"queue page, {engine.dialect.name}, {args.tasks:,} open tasks (filled in {fill_s:.1f}s); "
              f"median of {args.repeat} requests")
        print(f"{'view':<24}{'empty ms':>10}{'100k ms':>10}{'ratio':>8}")
        for name in VIEWS:
            r = results["views"][name]
            print(f"{name:<24}{r['empty_ms']:>10.1f}{r['full_ms']:>10.1f}{r['ratio']:>8.1f}")
    system.dispose()

    return 0


if __name__ == "__main__":
    sys.exit(main())
