"""Figure 5: scale-out on PostgreSQL (needs `ctx.database_url`, an empty database; skipped with
a note without one).

- `http_cases_per_s_{1,2,4}`: cases started per second through HTTP (`POST /api/cases`) by
  `tsunagu serve --workers N` (gunicorn), the load generator in a process of its own with
  several keep-alive connections; `http_2_workers_over_1` (target ≥ 1.7).
- `timers_per_s_{1,2,4}`: due monitoring timers fired per second by N sweeper processes at once
  (`engine.ops.worker.sweep_until_done` in each); `timers_2_sweepers_over_1` (target ≥ 1.7).
- 4 processes are reported with their efficiency per core (this machine's cores, not 4).
- `audit_waits_per_s`: writers waiting on an audit head row's lock, per second, sampled from
  `pg_locks` while the sweepers of the 4-process run write (one audit record per timer): with
  the trail in chains this stays near zero, where one head row made every writer queue.

Wall-clock figures by nature: on a machine shared with other load they say little.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta

from bench.figures import Context, Figure
from bench.system import fresh_system
from bench.timers import waiting_cases
from engine.clock import Clock, utcnow
from engine.models import Timer
from engine.security import users
from engine.settings import ROOT
from engine.status import TimerStatus

CONNECTIONS = 8


def _load(port: int, token: str, seconds: float, out: multiprocessing.Queue) -> None:
    """The load generator (its own process): CONNECTIONS threads starting cases for `seconds`."""
    done, stop = [], time.monotonic() + seconds

    def run() -> None:
        conn, n = http.client.HTTPConnection("127.0.0.1", port, timeout=30), 0
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        body = json.dumps({"process": "multi_agency", "data": {"summary": "bench"}})
        while time.monotonic() < stop:
            conn.request("POST", "/api/cases", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            n += response.status == 201
        done.append(n)

    threads = [threading.Thread(target=run) for _ in range(CONNECTIONS)]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    out.put(sum(done) / (time.monotonic() - t0))


def _serve(url: str, workers: int) -> tuple[subprocess.Popen, int]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": url, "TSUNAGU_SWEEP_INTERVAL": "5", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--workers", str(workers), "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/groups")
            conn.getresponse().read()
            return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not come up")


def http_rates(url: str, token: str, seconds: float) -> dict[int, float]:
    import signal

    rates = {}
    ctx = multiprocessing.get_context("spawn")
    for workers in (1, 2, 4):
        proc, port = _serve(url, workers)
        try:
            out = ctx.Queue()
            gen = ctx.Process(target=_load, args=(port, token, 1.0, out))  # warm-up
            gen.start()
            out.get(timeout=120)
            gen.join()
            gen = ctx.Process(target=_load, args=(port, token, seconds, out))
            gen.start()
            rates[workers] = out.get(timeout=seconds + 120)
            gen.join()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(60)
    return rates


def _sweeper(url: str, ready, go) -> None:  # noqa: ANN001
    """One sweeper process: set up (imports, specs, a connection), say so, then sweep at `go`."""
    from sqlalchemy import text

    from engine.env import Env
    from engine.ops.db import make_engine, make_session_factory
    from engine.ops.worker import sweep_until_done
    from engine.settings import Settings

    settings = Settings(database_url=url)
    engine = make_engine(url)
    env = Env.from_settings(settings)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    ready.release()
    go.wait(600)
    sweep_until_done(make_session_factory(engine), env, Clock())
    engine.dispose()


def _sample_audit_waits(engine, samples: list[int], stop: threading.Event) -> None:  # noqa: ANN001
    """Every 50 ms: how many sessions wait for a lock in a statement on `audit_head`."""
    from sqlalchemy import text

    with engine.connect() as conn:
        while not stop.is_set():
            samples.append(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                             "AND query ILIKE '%audit_head%'")).scalar())
            conn.commit()
            time.sleep(0.05)


def timer_rates(system, url: str, per_run: int) -> tuple[dict[int, float], float]:  # noqa: ANN001
    """Timers/s with 1, 2, 4 sweepers, each run firing its own `per_run` timers; and audit waits
    per second sampled during the 4-sweeper run."""
    factory = system.factory
    started = utcnow() - timedelta(days=14, minutes=5)
    waiting_cases(factory, system.env, per_run * 3, started)
    with factory() as s:
        ids = [i for (i,) in s.query(Timer.id).filter_by(status=TimerStatus.PENDING).order_by(Timer.id)]
        s.execute(Timer.__table__.update().values(due_at=utcnow() + timedelta(days=365)))
        s.commit()
    ctx = multiprocessing.get_context("spawn")
    rates, waits = {}, 0.0
    for n, sweepers in enumerate((1, 2, 4)):
        block = ids[n * per_run:(n + 1) * per_run]
        with factory() as s:
            s.execute(Timer.__table__.update().where(Timer.id.in_(block)).values(due_at=utcnow()))
            s.commit()
        samples: list[int] = []
        sampling = threading.Event()
        sampler = threading.Thread(target=_sample_audit_waits, args=(system.engine, samples, sampling))
        ready, go = ctx.Semaphore(0), ctx.Event()
        procs = [ctx.Process(target=_sweeper, args=(url, ready, go)) for _ in range(sweepers)]
        for p in procs:
            p.start()
        for _ in procs:  # process start-up is not sweeping
            ready.acquire(timeout=600)
        t0 = time.monotonic()
        go.set()
        sampler.start()
        for p in procs:
            p.join(600)
        elapsed = time.monotonic() - t0
        sampling.set()
        sampler.join()
        with factory() as s:
            fired = s.query(Timer).filter(Timer.id.in_(block), Timer.status == TimerStatus.FIRED).count()
        rates[sweepers] = fired / elapsed
        if sweepers == 4 and samples:
            # Mean number waiting at a sample, over the run: waiting writers per second of run.
            waits = sum(samples) / len(samples)
    return rates, waits


def figures(ctx: Context) -> list[Figure]:
    if ctx.database_url is None:
        return [Figure("http_2_workers_over_1", float("nan"), "×", note="skipped: needs --database-url (PostgreSQL)"),
                Figure("timers_2_sweepers_over_1", float("nan"), "×", note="skipped: needs --database-url (PostgreSQL)")]
    url = ctx.database_url
    cores = os.cpu_count() or 1
    system = fresh_system(url, utcnow(), prefix="tsunagu-scale-")
    try:
        with system.factory() as s:
            user = users.add_user(s, "scale.ref", ["hokatsu-center"], ["staff"], utcnow())
            token = users.issue_token(s, user, utcnow(), "bench")
            s.commit()
        t_rates, waits = timer_rates(system, url, 100 if ctx.quick else 400)
        h_rates = http_rates(url, token, 5.0 if ctx.quick else 15.0)
    finally:
        system.dispose()
    out = []
    for kind, rates, unit, name in (("http", h_rates, "cases/s", "http_2_workers_over_1"),
                                     ("timers", t_rates, "timers/s", "timers_2_sweepers_over_1")):
        for n in (1, 2, 4):
            out.append(Figure(f"{'http_cases' if kind == 'http' else 'timers'}_per_s_{n}", round(rates[n], 1), unit,
                              note=f"{n} process(es); per-core efficiency {rates[n] / rates[1] / min(n, cores):.2f} "
                                   f"({cores} cores)"))
        out.append(Figure(name, round(rates[2] / rates[1], 2), "×", target=1.7, op=">=", baseline=round(rates[1], 1),
                          baseline_unit=unit))
    out.append(Figure("audit_waits_per_s", round(waits, 3), "waiting writers", note=(
        "mean writers waiting on an audit head row's lock, sampled every 50 ms during the 4-sweeper run")))
    return out


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else None
    for f in figures(Context(quick=True, database_url=url)):
        print(f.as_json())
