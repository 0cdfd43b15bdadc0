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

    python -m bench.bench_engine [--rounds 200] [--latency-timers 20]
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
from engine import cases, timers, users
from engine.clock import Clock, FrozenClock, spiff_time
from engine.models import HumanTask, Timer
from engine.settings import ROOT
from engine.status import TaskState as OurState
from engine.status import TimerStatus

INTAKE = {"multiple_targets": True, "all_targets_have_lead_department": True,
          "lead_department_can_handle_alone": False, "coordination_problem": False,
          "summary": "bench", "consent": "given"}
SETUP = [
    ("assessment", {"members": ["choju-anshin"], "assessment": "a"}),
    ("plan", {"issues": "i", "policy": "p", "monitoring_interval": "P14D"}),
    ("meeting", {"held_on": "2026-04-01", "participants": ["choju-anshin"],
                 "roles": [{"group": "choju-anshin", "role": "r"}]}),
]
MONITOR = {"next": "continue", "progress": "ok"}


def bare_spiff(rounds: int) -> dict:
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
            task = wf.get_tasks(state=TaskState.READY, manual=True)[0]
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
        t0 = time.perf_counter()
        blob = step(blob, MONITOR, now)
        times.append(time.perf_counter() - t0)
        sizes.append(len(blob))
    return {"times": times, "sizes": sizes}


def tsunagu(rounds: int, database_url: str | None) -> dict:
    clock = FrozenClock()
    system = fresh_system(database_url, clock.now())
    env, engine, factory = system.env, system.engine, system.factory
    with factory() as s:
        ref = users.add_user(s, "bench.ref", ["hokatsu-center"], ["staff"], clock.now())
        sec = users.add_user(s, "bench.sec", ["secretariat"], ["secretariat"], clock.now())
        s.commit()

    def open_task(s, case_id: str) -> str:  # noqa: ANN001
        return s.query(HumanTask.id).filter_by(case_id=case_id, state=OurState.OPEN).scalar()

    with factory() as s:
        case = cases.start_case(s, env, ref, "multi_agency", {}, None, clock.now())
        cases.complete_task(s, env, ref, open_task(s, case.id), INTAKE, clock.now())
        for _, data in SETUP:
            cases.complete_task(s, env, sec, open_task(s, case.id), data, clock.now())
    times, sizes = [], []
    for _ in range(rounds):
        clock.advance(days=15)
        t0 = time.perf_counter()
        timers.fire_due(factory, env, clock.now())
        with factory() as s:
            c = cases.complete_task(s, env, sec, open_task(s, case.id), MONITOR, clock.now())
            sizes.append(len(c.state))
        times.append(time.perf_counter() - t0)
    engine.dispose()
    return {"times": times, "sizes": sizes}


def timer_latency(count: int) -> dict:
    """Real clock, real scheduler: cases whose monitoring timer is due in ~2 s."""
    from engine.worker import start_scheduler

    clock = Clock()
    system = fresh_system(None, clock.now(), prefix="tsunagu-latency-")
    settings, env, engine, factory = system.settings, system.env, system.engine, system.factory
    with factory() as s:
        ref = users.add_user(s, "lat.ref", ["hokatsu-center"], ["staff"], clock.now())
        sec = users.add_user(s, "lat.sec", ["secretariat"], ["secretariat"], clock.now())
        s.commit()
        for _ in range(count):
            case = cases.start_case(s, env, ref, "multi_agency", {}, None, clock.now())
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
    engine.dispose()
    return {"fired": len(lat), "expected": count, "p50_s": statistics.median(lat) if lat else None,
            "max_s": max(lat) if lat else None}


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
    args = ap.parse_args(argv)
    base = summary("bare SpiffWorkflow (full JSON round trip per step)", bare_spiff(args.rounds))
    ours = summary("tsunagu (database, projection, history, outbox)", tsunagu(args.rounds, args.database_url))
    result = {
        "rounds": args.rounds,
        "baseline": base,
        "tsunagu": ours,
        "tsunagu_over_baseline_early": round(ours["early_ms"] / base["early_ms"], 2),
        "tsunagu_over_baseline_late": round(ours["late_ms"] / base["late_ms"], 2),
        "timer_latency": timer_latency(args.latency_timers) if args.latency_timers else None,
    }
    for side in (base, ours):
        print(f"{side['side']}: rounds 1-10 {side['early_ms']} ms/round, last 10 {side['late_ms']} ms/round "
              f"(x{side['late_over_early']}); state {side['state_bytes_early']} → {side['state_bytes_late']} bytes")
    print(f"tsunagu/baseline per round: early x{result['tsunagu_over_baseline_early']}, "
          f"late x{result['tsunagu_over_baseline_late']}")
    if result["timer_latency"]:
        print(f"timer latency: {result['timer_latency']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
