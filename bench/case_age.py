"""Figure 2, `case_age_200_over_1`: completing a monitoring task through the HTTP API at round
200 of a case over the same at round 1, so that no response grows with the case's age (history
is paged; the completion answers the task and a bounded case). Also the case's read at round 200
over round 1, the response sizes, and the stored workflow state per case (figure 6: constant in
the case's age).

One case, fortnightly monitoring rounds: each round its timer fires (the engine, not timed) and
the secretariat completes the monitoring task with POST /api/tasks/<id>/complete (timed), then
reads the case with GET /api/cases/<id> (timed). The completion is timed in CPU time of the
thread serving it (the test client runs in-process), the read in wall time. "Round 1" and "round 200" are the medians of
rounds 1-10 and 191-200, so one disturbed request does not decide the figure.

    python -m bench --only case_age
"""

from __future__ import annotations

import statistics
import time

from bench.figures import Context, Figure
from bench.system import fresh_system
from bench.web import INTAKE, MONITOR, SETUP, Api, flask_app, personas, timed
from engine.casework import timers
from engine.clock import FrozenClock
from engine.models import Case

ROUNDS = 200
WINDOW = 10


def run(rounds: int = ROUNDS) -> dict[str, list[float]]:
    clock = FrozenClock()
    system = fresh_system(None, clock.now(), prefix="tsunagu-bench-age-")
    _, tokens = personas(system, clock.now())
    client = flask_app(system, clock).test_client()
    ref, sec = Api(client, tokens["caseworker"]), Api(client, tokens["secretariat"])

    case = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}, status=201).json
    task = case["open_tasks"][0]
    ref.post(f"/api/tasks/{task['id']}/complete", json={"data": INTAKE})
    for _, data in SETUP:
        task = sec.get(f"/api/cases/{case['id']}").json["open_tasks"][0]
        sec.post(f"/api/tasks/{task['id']}/complete", json={"data": data})

    out: dict[str, list[float]] = {"complete_ms": [], "complete_wall_ms": [], "read_ms": [], "complete_bytes": [], "read_bytes": [],
                                   "state_bytes": []}
    for _ in range(rounds):
        clock.advance(days=15)
        assert timers.fire_due(system.factory, system.env, clock.now()) == 1
        # Not timed: finds the secretariat's monitoring task (the role holders' reports are beside it).
        (task,) = [t for t in sec.get(f"/api/cases/{case['id']}").json["open_tasks"] if t["step"] == "monitoring"]
        # The test client runs the request in this thread: its CPU time is the request's cost, which
        # other processes on a shared machine do not inflate as they do the wall time.
        c0 = time.thread_time()
        ms, r = timed(lambda t=task: sec.post(f"/api/tasks/{t['id']}/complete", json={"data": MONITOR}))
        out["complete_ms"].append((time.thread_time() - c0) * 1000)
        out["complete_wall_ms"].append(ms)
        out["complete_bytes"].append(len(r.get_data()))
        ms, r = timed(lambda: sec.get(f"/api/cases/{case['id']}"))
        out["read_ms"].append(ms)
        out["read_bytes"].append(len(r.get_data()))
        with system.factory() as s:
            out["state_bytes"].append(len(s.get(Case, case["id"]).state))
    system.engine.dispose()
    return out


def figures(ctx: Context) -> list[Figure]:
    r = run()

    def early(key: str) -> float:
        return statistics.median(r[key][:WINDOW])

    def late(key: str) -> float:
        return statistics.median(r[key][-WINDOW:])

    def middle(key: str) -> float:
        half = len(r[key]) // 2
        return statistics.median(r[key][half - WINDOW // 2:half + WINDOW // 2])

    def ratio(key: str) -> float:
        return late(key) / early(key)

    return [
        Figure("case_age_200_over_1", round(ratio("complete_ms"), 3), "×", target=1.1, op="<=",
               baseline=round(early("complete_ms"), 2), baseline_unit="CPU ms at round 1",
               note=f"POST /api/tasks/<id>/complete, median of rounds 1-{WINDOW} vs {ROUNDS - WINDOW + 1}-{ROUNDS}: "
                    f"CPU {early('complete_ms'):.2f} → {late('complete_ms'):.2f} ms, wall "
                    f"{early('complete_wall_ms'):.2f} → {late('complete_wall_ms'):.2f} ms"),
        Figure("case_read_200_over_1", round(ratio("read_ms"), 3), "×", target=1.1, op="<=",
               baseline=round(early("read_ms"), 2), baseline_unit="ms at round 1",
               note=f"GET /api/cases/<id>: {early('read_ms'):.2f} → {late('read_ms'):.2f} ms"),
        # Once the case has more than 50 events the answer holds the newest 50: it must stop growing.
        Figure("completion_response_200_over_100", round(late("complete_bytes") / middle("complete_bytes"), 3), "×",
               target=1.1, op="<=", baseline=middle("complete_bytes"), baseline_unit="bytes at round 100",
               note=f"completion response {early('complete_bytes'):.0f} (round 1) → {middle('complete_bytes'):.0f} "
                    f"(round 100) → {late('complete_bytes'):.0f} bytes (round 200); case read "
                    f"{early('read_bytes'):.0f} → {middle('read_bytes'):.0f} → {late('read_bytes'):.0f} bytes"),
        Figure("case_state_200_over_1", round(ratio("state_bytes"), 3), "×", target=1.1, op="<=",
               baseline=early("state_bytes"), baseline_unit="bytes at round 1",
               note=f"stored workflow state per case {early('state_bytes'):.0f} → {late('state_bytes'):.0f} bytes"),
    ]
