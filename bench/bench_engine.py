"""Benchmark: the cost of one step as a case's history grows, against bare SpiffWorkflow.

Both sides run the same Process A diagram: intake → assessment → plan → meeting, then
N monitoring rounds (timer fires, monitoring says "continue").
- baseline: bare SpiffWorkflow 3.2 as its docs show it — the whole workflow (spec
  included) serialized to JSON and restored around every step, nothing pruned;
- tsunagu: the engine's domain functions on a real database (SQLite by default,
  DATABASE_URL for PostgreSQL), every step a committed transaction with projection,
  history, timers and outbox.
Reported: mean ms per monitoring round early (rounds 1-10) and late (last 10 rounds),
the late/early ratio of each side, state size, and tsunagu/baseline ratios measured in
the same run. Also the timer latency of the real scheduler (due → fired).

Containment (`engine.workflow.expressions`: ticks, size guards, the per-step budget) is measured
with it on and off, interleaved round by round on two identical systems so that noise hits
both alike: the whole monitoring round, the engine step alone (load, run, dump; no
database), one condition evaluated, and a loop-heavy script (10,000 iterations).

    python -m bench.bench_engine [--rounds 200] [--latency-timers 20] [--containment-rounds 100]
    python -m bench.bench_engine --only-containment
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

from bench.system import fresh_system
from engine.casework import cases, timers
from engine.clock import Clock, FrozenClock, spiff_time
from engine.models import HumanTask, Timer
from engine.security import users
from engine.settings import ROOT
from engine.status import TaskState as OurState
from engine.status import TimerStatus
from engine.workflow import expressions, runtime

INTAKE = {"multiple_targets": True, "all_targets_have_lead_department": True,
          "lead_department_can_handle_alone": False, "coordination_problem": False,
          "summary": "bench", "consent": "given"}
SETUP = [
    ("assessment", {"members": ["choju-anshin"], "assessment": "a"}),
    # participation: what the plan form gives by default, which bare Spiff does not fill in.
    ("plan", {"issues": "i", "policy": "p", "monitoring_interval": "P14D", "participation": False}),
    ("meeting", {"held_on": "2026-04-01", "participants": ["choju-anshin"],
                 "roles": [{"group": "choju-anshin", "role": "r"}]}),
]
MONITOR = {"next": "continue", "progress": "ok"}


def bare_spiff(rounds: int, clock=time.perf_counter) -> dict:  # noqa: ANN001
    """`clock`: what a round's time is read from (bench.engine_step passes CPU time)."""
    parser = SpiffBpmnParser()
    parser.add_bpmn_files([str(ROOT / "processes" / "multi_agency.bpmn")])
    parser.add_dmn_files([str(ROOT / "processes" / "intake_criteria.dmn")])
    spec, subs = parser.get_spec("multi_agency"), parser.get_subprocess_specs("multi_agency")
    ser = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
    from SpiffWorkflow.bpmn import BpmnWorkflow

    now = datetime(2026, 4, 1, tzinfo=UTC)
    with spiff_time(now):
        wf = BpmnWorkflow(spec, subs)
        wf.do_engine_steps()
    blob = ser.serialize_json(wf)

    def step(blob: str, data: dict, now: datetime) -> str:
        with spiff_time(now):
            wf = ser.deserialize_json(blob)
            wf.refresh_timers()
            wf.do_engine_steps()
            ready = wf.get_tasks(state=TaskState.READY, manual=True)
            # The monitoring round's own task, not a role holder's report beside it.
            task = next((t for t in ready if t.task_spec.bpmn_id == "monitoring"), ready[0])
            task.set_data(**data)
            task.run()
            wf.do_engine_steps()
            return ser.serialize_json(wf)

    blob = step(blob, INTAKE, now)
    for _, data in SETUP:
        blob = step(blob, data, now)
    times, sizes = [], []
    for _ in range(rounds):
        now += timedelta(days=15)
        t0 = clock()
        blob = step(blob, MONITOR, now)
        times.append(clock() - t0)
        sizes.append(len(blob))
    return {"times": times, "sizes": sizes}


def tsunagu(rounds: int, database_url: str | None) -> dict:
    clock = FrozenClock()
    system = fresh_system(database_url, clock.now())
    env, factory = system.env, system.factory
    with factory() as s:
        ref = users.add_user(s, "bench.ref", ["hokatsu-center"], ["staff"], clock.now())
        sec = users.add_user(s, "bench.sec", ["secretariat"], ["secretariat"], clock.now())
        s.commit()

    def open_task(s, case_id: str) -> str:  # noqa: ANN001
        return s.query(HumanTask.id).filter_by(case_id=case_id, state=OurState.OPEN).scalar()

    with factory() as s:
        case = cases.start_case(s, env, ref, "multi_agency", {"summary": "相談"}, None, clock.now())
        cases.complete_task(s, env, ref, open_task(s, case.id), INTAKE, clock.now())
        for _, data in SETUP:
            cases.complete_task(s, env, sec, open_task(s, case.id), data, clock.now())
    times, sizes = [], []
    for _ in range(rounds):
        clock.advance(days=15)
        t0 = time.perf_counter()
        timers.fire_due(factory, env, clock.now())
        with factory() as s:
            c = cases.complete_task(s, env, sec, open_task_id(s, case.id, "monitoring"), MONITOR, clock.now())
            sizes.append(len(c.state))
        times.append(time.perf_counter() - t0)
    system.dispose()
    return {"times": times, "sizes": sizes}


def timer_latency(count: int) -> dict:
    """Real clock, real scheduler: cases whose monitoring timer is due in ~2 s."""
    from engine.ops.worker import start_scheduler

    clock = Clock()
    system = fresh_system(None, clock.now(), prefix="tsunagu-latency-")
    settings, env, factory = system.settings, system.env, system.factory
    with factory() as s:
        ref = users.add_user(s, "lat.ref", ["hokatsu-center"], ["staff"], clock.now())
        sec = users.add_user(s, "lat.sec", ["secretariat"], ["secretariat"], clock.now())
        s.commit()
        for _ in range(count):
            case = cases.start_case(s, env, ref, "multi_agency", {"summary": "相談"}, None, clock.now())
            tid = s.query(HumanTask.id).filter_by(case_id=case.id, state=OurState.OPEN).scalar()
            cases.complete_task(s, env, ref, tid, INTAKE, clock.now())
            for step, data in SETUP:
                if step == "plan":
                    data = {**data, "monitoring_interval": "PT2S"}
                tid = s.query(HumanTask.id).filter_by(case_id=case.id, state=OurState.OPEN).scalar()
                cases.complete_task(s, env, sec, tid, data, clock.now())
    scheduler = start_scheduler(factory, env, clock, settings.sweep_interval)
    deadline = time.monotonic() + 30
    done = threading.Event()
    while time.monotonic() < deadline and not done.is_set():
        with factory() as s:
            pending = s.query(Timer).filter_by(status=TimerStatus.PENDING).count()
        if pending == 0:
            done.set()
        else:
            done.wait(0.1)
    scheduler.shutdown(wait=True)
    with factory() as s:
        lat = [(t.fired_at - t.due_at).total_seconds() for t in s.query(Timer).filter_by(status=TimerStatus.FIRED)]
    system.dispose()
    return {"fired": len(lat), "expected": count, "p50_s": statistics.median(lat) if lat else None,
            "max_s": max(lat) if lat else None}


def _monitoring_system(clock: FrozenClock, prefix: str) -> tuple:
    system = fresh_system(None, clock.now(), prefix=prefix)
    env, factory = system.env, system.factory
    with factory() as s:
        ref = users.add_user(s, "bench.ref", ["hokatsu-center"], ["staff"], clock.now())
        sec = users.add_user(s, "bench.sec", ["secretariat"], ["secretariat"], clock.now())
        s.commit()
        case = cases.start_case(s, env, ref, "multi_agency", {"summary": "相談"}, None, clock.now())
        cases.complete_task(s, env, ref, _open_task(s, case.id), INTAKE, clock.now())
        for _, data in SETUP:
            cases.complete_task(s, env, sec, _open_task(s, case.id), data, clock.now())
    return system, sec, case.id


def open_task_id(s, case_id: str, step: str | None = None) -> str:  # noqa: ANN001
    """The id of the case's one open task (of `step`: a monitoring round also opens a role
    report for each role holder)."""
    query = s.query(HumanTask.id).filter_by(case_id=case_id, state=OurState.OPEN)
    return (query.filter_by(step=step) if step is not None else query).scalar()


_open_task = open_task_id


def _compare(fn, repeat: int, samples: int = 15) -> dict[bool, float]:  # noqa: ANN001
    """CPU µs per call of `fn` with containment on and off: samples of `repeat` calls alternate
    between the two, and the best sample of each counts (the one least disturbed by other load)."""
    best = {True: float("inf"), False: float("inf")}
    for n in range(samples):
        for on in ((True, False) if n % 2 else (False, True)):
            expressions.CONTAINMENT = on
            # This thread's CPU time: other processes on the machine do not count.
            t0 = time.thread_time()
            for _ in range(repeat):
                fn()
            best[on] = min(best[on], (time.thread_time() - t0) / repeat * 1e6)
    return best


def _evaluator_process_round_trip_us(samples: int = 2000) -> float:
    """The alternative not taken: each evaluation sent to a separate process (which could be
    given rlimits and killed). Measured: one condition there and back through a pipe."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_evaluator_process, args=(child,), daemon=True)
    proc.start()
    try:
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(samples // 5):
                parent.send(('next == "continue"', {"next": "continue"}))
                parent.recv()
            best = min(best, (time.perf_counter() - t0) / (samples // 5) * 1e6)
    finally:
        parent.send(None)
        proc.join(10)
    return best


def _evaluator_process(conn) -> None:  # noqa: ANN001
    while (job := conn.recv()) is not None:
        conn.send(expressions.evaluate(*job))


def containment(rounds: int) -> dict:
    """What containment costs: the same work with `expressions.CONTAINMENT` on and off, on two
    fresh SQLite databases (a --database-url names one empty database, and the two sides must
    not differ in anything but containment)."""
    clock = FrozenClock()
    sides = {on: _monitoring_system(clock, f"tsunagu-contain-{int(on)}-") for on in (True, False)}
    round_ms: dict[bool, list[float]] = {True: [], False: []}
    try:
        for n in range(rounds):
            clock.advance(days=15)
            for on in ((True, False) if n % 2 else (False, True)):
                expressions.CONTAINMENT = on
                system, sec, case_id = sides[on]
                t0 = time.perf_counter()
                timers.fire_due(system.factory, system.env, clock.now())
                with system.factory() as s:
                    cases.complete_task(s, system.env, sec, _open_task(s, case_id, "monitoring"), MONITOR, clock.now())
                round_ms[on].append((time.perf_counter() - t0) * 1000)

        # The engine step alone: the monitoring case as stored, its timer fired and its
        # monitoring task completed in memory, state dumped; no database.
        system, _, case_id = sides[True]
        with system.factory() as s:
            from engine.models import Case

            row = s.get(Case, case_id)
            defn = system.env.specs.for_case(row)
            state, version = row.state, row.serializer_version
        later = clock.now() + timedelta(days=15)

        def engine_step() -> None:
            wf = runtime.load(defn, state, version)
            runtime.run_engine(wf, later)
            task = runtime.ready_user_tasks(wf)[0]
            runtime.complete(wf, task, MONITOR, later)
            runtime.dump(wf)

        loop = "total = 0\nfor i in range(10000):\n    total = total + i * 2\n"
        cond = 'next == "continue"'

        def condition() -> None:
            with expressions.contained():  # as within an engine step
                for _ in range(10):
                    expressions.evaluate(cond, {"next": "continue"})

        micro = {"engine_step_us": _compare(engine_step, 20, samples=25),
                 "condition_us": {on: t / 10 for on, t in _compare(condition, 200).items()},
                 "loop_10k_us": _compare(lambda: expressions.execute(loop, {}), 5)}
    finally:
        expressions.CONTAINMENT = True
        for system, _, _ in sides.values():
            system.dispose()

    def median(on: bool) -> float:  # a round disturbed by other load does not move it
        return statistics.median(round_ms[on])

    out: dict = {"rounds": rounds,
                 "round_ms_on": round(median(True), 3), "round_ms_off": round(median(False), 3),
                 "round_cost_pct": round((median(True) / median(False) - 1) * 100, 1)}
    out["evaluator_process_round_trip_us"] = round(_evaluator_process_round_trip_us(), 2)
    for key, best in micro.items():
        out[f"{key}_on"], out[f"{key}_off"] = round(best[True], 2), round(best[False], 2)
        out[f"{key.removesuffix('_us')}_cost_pct"] = round((best[True] / best[False] - 1) * 100, 1)
    return out


def summary(name: str, r: dict) -> dict:
    t = r["times"]
    early, late = statistics.mean(t[:10]) * 1000, statistics.mean(t[-10:]) * 1000
    return {"side": name, "early_ms": round(early, 2), "late_ms": round(late, 2), "late_over_early": round(late / early, 2),
            "state_bytes_early": r["sizes"][0], "state_bytes_late": r["sizes"][-1]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--latency-timers", type=int, default=20)
    ap.add_argument("--database-url")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--containment-rounds", type=int, default=100, help="rounds of the containment comparison (0: skip)")
    ap.add_argument("--only-containment", action="store_true", help="run the containment comparison alone")
    args = ap.parse_args(argv)
    if args.only_containment:
        result = {"containment": containment(args.containment_rounds or 100)}
        _print_containment(result["containment"])
        if args.json:
            args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    base = summary("bare SpiffWorkflow (full JSON round trip per step)", bare_spiff(args.rounds))
    ours = summary("tsunagu (database, projection, history, outbox)", tsunagu(args.rounds, args.database_url))
    result = {
        "rounds": args.rounds,
        "baseline": base,
        "tsunagu": ours,
        "tsunagu_over_baseline_early": round(ours["early_ms"] / base["early_ms"], 2),
        "tsunagu_over_baseline_late": round(ours["late_ms"] / base["late_ms"], 2),
        "timer_latency": timer_latency(args.latency_timers) if args.latency_timers else None,
        "containment": containment(args.containment_rounds) if args.containment_rounds else None,
    }
    for side in (base, ours):
        print(f"{side['side']}: rounds 1-10 {side['early_ms']} ms/round, last 10 {side['late_ms']} ms/round "
              f"(x{side['late_over_early']}); state {side['state_bytes_early']} → {side['state_bytes_late']} bytes")
    print(f"tsunagu/baseline per round: early x{result['tsunagu_over_baseline_early']}, "
          f"late x{result['tsunagu_over_baseline_late']}")
    if result["timer_latency"]:
        print(f"timer latency: {result['timer_latency']}")
    if result["containment"]:
        _print_containment(result["containment"])
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def _print_containment(c: dict) -> None:
    print(f"containment over {c['rounds']} monitoring rounds (median): {c['round_ms_on']} ms/round on, "
          f"{c['round_ms_off']} off ({c['round_cost_pct']:+}%)")
    print(f"  engine step alone: {c['engine_step_us_on']} µs on, {c['engine_step_us_off']} off "
          f"({c['engine_step_cost_pct']:+}%); one condition: {c['condition_us_on']} µs on, "
          f"{c['condition_us_off']} off ({c['condition_cost_pct']:+}%)")
    print(f"  10,000-iteration loop script: {c['loop_10k_us_on']} µs on, {c['loop_10k_us_off']} off "
          f"({c['loop_10k_cost_pct']:+}%)")
    print(f"  (not taken) one condition in a separate evaluation process: {c['evaluator_process_round_trip_us']} µs "
          "per round trip")


if __name__ == "__main__":
    sys.exit(main())
