"""Figure 4: timers. 1,000 monitoring timers fall due at the same moment on SQLite, and one
process's real sweeper (`engine.ops.worker.run_sweeper`, the loop `tsunagu worker` runs, at the
configured sweep interval) fires them: `timer_lag_p95_s` is the 95th percentile of visible − due,
where a timer is visible when the transaction that fired it commits (the sweeper's first commit
after the timer's `fired_at`, its claim); `timers_per_s_sqlite` how many it fired per second of
the process's CPU, against the baseline of bare SpiffWorkflow firing the same stored timer (load
the state, run to the next wait, dump it: no database) in the same run, so the ratio holds on a
shared machine.

Lag and rate are tied: with N timers due at once fired at R a second, the p95 lag is at least
0.95 N / R (at 300/s, 1,000 timers: 3.2 s).

The 1,000 cases are one real case (started and walked to its monitoring wait through the domain
functions) copied 999 times with fresh ids, so setting up costs seconds, not minutes: each copy
has its own case row, number, Spiff state (every task id renewed) and timer row.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import timedelta

from sqlalchemy import event

from bench.bench_engine import INTAKE, SETUP, open_task_id
from bench.figures import Context, Figure
from bench.system import fresh_system
from engine.casework import cases
from engine.clock import Clock, utcnow
from engine.models import Case, Timer
from engine.ops.worker import run_sweeper
from engine.security import users
from engine.status import TimerStatus
from engine.workflow import runtime

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def waiting_cases(factory, env, count: int, started) -> None:  # noqa: ANN001
    """`count` cases waiting at their monitoring timer (14 days after `started`)."""
    with factory() as s:
        ref = users.add_user(s, "timer.ref", ["hokatsu-center"], ["staff"], started)
        sec = users.add_user(s, "timer.sec", ["secretariat"], ["secretariat"], started)
        s.commit()
        case = cases.start_case(s, env, ref, "multi_agency", {"summary": "相談"}, None, started)
        cases.complete_task(s, env, ref, open_task_id(s, case.id), INTAKE, started)
        for _, data in SETUP:
            cases.complete_task(s, env, sec, open_task_id(s, case.id), data, started)
        origin = s.get(Case, case.id)
        timer = s.query(Timer).filter_by(case_id=case.id, status=TimerStatus.PENDING).one()
        columns = [c.key for c in Case.__table__.columns]
        template = {k: getattr(origin, k) for k in columns}
        timer_row = {c.key: getattr(timer, c.key) for c in Timer.__table__.columns if c.key != "id"}
        case_rows, timer_rows = [], []
        for n in range(1, count):
            ids = {old: str(uuid.uuid4()) for old in set(UUID.findall(origin.state))}
            state = UUID.sub(lambda m, ids=ids: ids[m.group(0)], origin.state)
            new_id = str(uuid.uuid4())
            case_rows.append({**template, "id": new_id, "number": f"MA-BENCH-{n:05d}", "state": state})
            timer_rows.append({**timer_row, "case_id": new_id, "task_id": ids[timer.task_id]})
        s.execute(Case.__table__.insert(), case_rows)
        s.execute(Timer.__table__.insert(), timer_rows)
        s.commit()


def measure(count: int) -> dict[str, float]:
    """Lag p95 (s), timers per wall and per CPU second, how many fired, the sweep interval and the
    bare Spiff fires per CPU second, for `count` timers due at once."""
    clock = Clock()
    # The cases were started 14 days and a little ago: Spiff sees their timers as due; our rows
    # say when, and all fall due at `due`, a moment after setting up ends.
    started = utcnow() - timedelta(days=14, minutes=5)
    system = fresh_system(None, started, prefix="tsunagu-timers-")
    factory = system.factory
    try:
        waiting_cases(factory, system.env, count, started)
        bare = bare_fires_per_cpu_s(system, 200)
        due = utcnow() + timedelta(seconds=1)
        with factory() as s:
            s.execute(Timer.__table__.update().values(due_at=due))
            s.commit()
        stop = threading.Event()
        sweeper = threading.Thread(target=run_sweeper, args=(factory, system.env, clock,
                                                             system.settings.sweep_interval, stop), daemon=True)
        commits: list = []

        @event.listens_for(system.engine, "commit")
        def _committed(_conn) -> None:  # noqa: ANN001
            if threading.current_thread() is sweeper:
                commits.append(utcnow())

        cpu0 = time.process_time()
        sweeper.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.5)
            with factory() as s:
                left = s.query(Timer).filter_by(status=TimerStatus.PENDING).count()
            if left == 0:
                break
        stop.set()
        sweeper.join(30)
        cpu = time.process_time() - cpu0
        with factory() as s:
            fired = [t for (t,) in s.query(Timer.fired_at).filter_by(status=TimerStatus.FIRED)]
        lags = sorted((_visible(t, commits) - due).total_seconds() for t in fired)
        p95 = lags[int(0.95 * (len(lags) - 1))] if lags else float("inf")
        span = (max(fired) - min(fired)).total_seconds() if len(fired) > 1 else float("inf")
        return {"p95": p95, "rate": (len(fired) - 1) / span if span else 0.0, "per_cpu": len(fired) / cpu,
                "fired": len(fired), "interval": system.settings.sweep_interval, "bare": bare}
    finally:
        system.dispose()


def _visible(fired_at, commits: list):  # noqa: ANN001, ANN202
    """When the timer claimed at `fired_at` became visible: the sweeper's first commit after it."""
    return next((c for c in commits if c >= fired_at), fired_at)


def bare_fires_per_cpu_s(system, n: int) -> float:  # noqa: ANN001
    """Bare SpiffWorkflow firing a stored monitoring timer: load the state, run to the next wait
    (the monitoring task), dump it; no database. Per CPU second, over `n` of the waiting cases."""
    with system.factory() as s:
        rows = [(system.env.specs.for_case(c), c.state, c.serializer_version) for c in s.query(Case).limit(n)]
    later = utcnow()
    cpu0 = time.process_time()
    for defn, state, version in rows:
        wf = runtime.load(defn, state, version)
        runtime.run_engine(wf, later)
        runtime.dump(wf)
    return len(rows) / (time.process_time() - cpu0)


def figures(ctx: Context) -> list[Figure]:
    count = 300 if ctx.quick else 1000
    m = measure(count)
    note = (f"{m['fired']} of {count} timers due at once fired by one sweeper process (SQLite, sweep every "
            f"{m['interval']}s)")
    # Per second of the process's own CPU: on a shared machine the wall clock mostly measures
    # the other processes; the wall-clock rate is in the note.
    return [Figure("timer_lag_p95_s", round(m["p95"], 3), "s", target=0.5, op="<",
                   note=f"{note}; due → committed, wall clock, load average {_load()}"),
            Figure("timers_per_s_sqlite", round(m["per_cpu"], 1), "timers/CPU-s", target=300, op=">=",
                   baseline=round(m["bare"], 1),
                   note=f"{note}; baseline: bare Spiff firing the same stored timer (no database); "
                        f"{m['rate']:.1f}/s on the wall clock, load average {_load()}")]


def _load() -> str:
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


if __name__ == "__main__":
    import sys

    for f in figures(Context(quick="--quick" in sys.argv)):
        print(f.as_json())
