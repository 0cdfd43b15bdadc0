"""Figure 4: timers. 1,000 monitoring timers fall due at the same moment on SQLite, and one
process's real sweeper (`engine.worker.run_sweeper`, the loop `tsunagu worker` runs, at the
configured sweep interval) fires them: `timer_lag_p95_s` is the 95th percentile of fired − due
(a timer's `fired_at` is when its own transaction claimed it), `timers_per_s_sqlite` how many
it fired per second from the first to the last.

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

from bench.bench_engine import INTAKE, SETUP, open_task_id
from bench.figures import Context, Figure
from bench.system import fresh_system
from engine import cases, users
from engine.clock import Clock, utcnow
from engine.models import Case, Timer
from engine.status import TimerStatus
from engine.worker import run_sweeper

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


def measure(count: int) -> tuple[float, float, float, int, float]:
    """(lag p95 s, timers/s on the wall clock, timers per CPU second, fired, sweep interval s) for
    `count` timers due at once."""
    clock = Clock()
    # The cases were started 14 days and a little ago: Spiff sees their timers as due; our rows
    # say when, and all fall due at `due`, a moment after setting up ends.
    started = utcnow() - timedelta(days=14, minutes=5)
    system = fresh_system(None, started, prefix="tsunagu-timers-")
    factory = system.factory
    try:
        waiting_cases(factory, system.env, count, started)
        due = utcnow() + timedelta(seconds=1)
        with factory() as s:
            s.execute(Timer.__table__.update().values(due_at=due))
            s.commit()
        stop = threading.Event()
        sweeper = threading.Thread(target=run_sweeper, args=(factory, system.env, clock,
                                                             system.settings.sweep_interval, stop), daemon=True)
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
        lags = sorted((t - due).total_seconds() for t in fired)
        p95 = lags[int(0.95 * (len(lags) - 1))] if lags else float("inf")
        span = (max(fired) - min(fired)).total_seconds() if len(fired) > 1 else float("inf")
        return p95, (len(fired) - 1) / span if span else 0.0, len(fired) / cpu, len(fired), system.settings.sweep_interval
    finally:
        system.engine.dispose()


def figures(ctx: Context) -> list[Figure]:
    count = 300 if ctx.quick else 1000
    p95, rate, per_cpu, fired, interval = measure(count)
    note = f"{fired} of {count} timers due at once fired by one sweeper process (SQLite, sweep every {interval}s)"
    # Per second of the process's own CPU: on a shared machine the wall clock mostly measures
    # the other processes; the wall-clock rate is in the note.
    return [Figure("timer_lag_p95_s", round(p95, 3), "s", target=0.5, op="<", note=note + " (wall clock)"),
            Figure("timers_per_s_sqlite", round(per_cpu, 1), "timers/CPU-s", target=300, op=">=",
                   note=f"{note}; {rate:.1f}/s on the wall clock, load average {_load()}")]


def _load() -> str:
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


if __name__ == "__main__":
    import sys

    for f in figures(Context(quick="--quick" in sys.argv)):
        print(f.as_json())
