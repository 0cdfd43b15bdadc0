"""Figure 2, `case_age_200_over_1`: completing a monitoring task through the HTTP API at round
200 of a case over the same at round 1, so that no response grows with the case's age (history
is paged; the completion answers the task and a bounded case). Also the case's read at round 200
over round 1, the response sizes, and the stored workflow state per case (figure 6: constant in
the case's age).

One case, fortnightly monitoring rounds: each round its timer fires (the engine, not timed) and
the secretariat completes the monitoring task with POST /api/tasks/<id>/complete (timed), then
reads the case with GET /api/cases/<id> (timed). The completion is timed in CPU time of the
thread serving it (the test client runs in-process), the read in wall time.

Round 1 and round 200 are measured side by side, not a minute apart: the machine's speed drifts
by a third over that long (other tenants, its clock), more than the figure's margin. So once
the case waits at its first monitoring timer, its database is copied (`bench.system.snapshot`):
the same case, with its own app over the copy. The original ages alone to round 190; then each
of the last WINDOW rounds is interleaved with a round of the copy, and "round 1" and "round
200" are the medians of the copy's rounds 2-11 (its round 1 warms its new app, as the setup
warmed the original's) and the original's 191-200, so one disturbed request does not decide
the figure either.

    python -m bench --only case_age
"""

from __future__ import annotations

import statistics
import time

from bench.figures import Context, Figure
from bench.system import System, fresh_system, snapshot
from bench.web import INTAKE, MONITOR, SETUP, Api, flask_app, personas, timed
from engine.casework import timers
from engine.clock import FrozenClock
from engine.models import Case

ROUNDS = 200
WINDOW = 10
KEYS = ("complete_ms", "complete_wall_ms", "read_ms", "complete_bytes", "read_bytes", "state_bytes")


class Side:
    """One app over one database holding the case: a monitoring round at a time, measured."""

    def __init__(self, system: System, clock: FrozenClock, tokens: dict[str, str]) -> None:
        self.system, self.clock = system, clock
        client = flask_app(system, clock).test_client()
        self.ref, self.sec = Api(client, tokens["caseworker"]), Api(client, tokens["secretariat"])
        self.out: dict[str, list[float]] = {key: [] for key in KEYS}

    def open_case(self) -> str:
        """A multi-agency case walked to its first monitoring wait; its id."""
        case = self.ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}},
                             status=201).json
        self.ref.post(f"/api/tasks/{case['open_tasks'][0]['id']}/complete", json={"data": INTAKE})
        for _, data in SETUP:
            task = self.sec.get(f"/api/cases/{case['id']}").json["open_tasks"][0]
            self.sec.post(f"/api/tasks/{task['id']}/complete", json={"data": data})
        return case["id"]

    def round(self, case_id: str) -> None:
        self.clock.advance(days=15)
        assert timers.fire_due(self.system.factory, self.system.env, self.clock.now()) == 1
        # Not timed: finds the secretariat's monitoring task (the role holders' reports are beside it).
        (task,) = [t for t in self.sec.get(f"/api/cases/{case_id}").json["open_tasks"] if t["step"] == "monitoring"]
        # The test client runs the request in this thread: its CPU time is the request's cost, which
        # other processes on a shared machine do not inflate as they do the wall time.
        c0 = time.thread_time()
        ms, r = timed(lambda t=task: self.sec.post(f"/api/tasks/{t['id']}/complete", json={"data": MONITOR}))
        self.out["complete_ms"].append((time.thread_time() - c0) * 1000)
        self.out["complete_wall_ms"].append(ms)
        self.out["complete_bytes"].append(len(r.get_data()))
        ms, r = timed(lambda: self.sec.get(f"/api/cases/{case_id}"))
        self.out["read_ms"].append(ms)
        self.out["read_bytes"].append(len(r.get_data()))
        with self.system.factory() as s:
            self.out["state_bytes"].append(len(s.get(Case, case_id).state))


def run(rounds: int = ROUNDS, window: int = WINDOW) -> dict[str, dict[str, list[float]]]:
    """Each side's measurements per round: "aged", the case's rounds 1..`rounds`; "young", its
    copy's rounds 1..`window` + 1, interleaved with the aged case's last `window` rounds."""
    window = min(window, rounds)
    clock = FrozenClock()
    system = fresh_system(None, clock.now(), prefix="tsunagu-bench-age-")
    _, tokens = personas(system, clock.now())
    aged = Side(system, clock, tokens)
    case_id = aged.open_case()
    young = Side(snapshot(system, prefix="tsunagu-bench-age-copy-"), FrozenClock(clock.now()), tokens)
    try:
        young.round(case_id)  # warms the copy's app; not one of its measured rounds
        for _ in range(rounds - window):
            aged.round(case_id)
        for _ in range(window):
            young.round(case_id)
            aged.round(case_id)
    finally:
        system.dispose()
        young.system.dispose()
    return {"aged": aged.out, "young": {key: values[1:] for key, values in young.out.items()}}


def figures(ctx: Context) -> list[Figure]:
    r = run()
    aged, young = r["aged"], r["young"]

    def early(key: str) -> float:
        return statistics.median(young[key])

    def late(key: str) -> float:
        return statistics.median(aged[key][-WINDOW:])

    def alone(key: str) -> float:
        """The aged case's own first rounds, a minute before the late ones: drift included."""
        return statistics.median(aged[key][:WINDOW])

    def middle(key: str) -> float:
        half = len(aged[key]) // 2
        return statistics.median(aged[key][half - WINDOW // 2:half + WINDOW // 2])

    def ratio(key: str) -> float:
        return late(key) / early(key)

    return [
        Figure("case_age_200_over_1", round(ratio("complete_ms"), 3), "×", target=1.1, op="<=",
               baseline=round(early("complete_ms"), 2), baseline_unit="CPU ms at round 1",
               note=f"POST /api/tasks/<id>/complete, median of the copy's rounds 2-{WINDOW + 1} vs the case's "
                    f"{ROUNDS - WINDOW + 1}-{ROUNDS}, interleaved: CPU {early('complete_ms'):.2f} → "
                    f"{late('complete_ms'):.2f} ms, wall {early('complete_wall_ms'):.2f} → "
                    f"{late('complete_wall_ms'):.2f} ms; the case's own rounds 1-{WINDOW}, not interleaved: "
                    f"CPU {alone('complete_ms'):.2f} ms (×{late('complete_ms') / alone('complete_ms'):.2f})"),
        Figure("case_read_200_over_1", round(ratio("read_ms"), 3), "×", target=1.1, op="<=",
               baseline=round(early("read_ms"), 2), baseline_unit="ms at round 1",
               note=f"GET /api/cases/<id>, interleaved as above: {early('read_ms'):.2f} → {late('read_ms'):.2f} ms; "
                    f"the case's own rounds 1-{WINDOW}: {alone('read_ms'):.2f} ms"),
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
