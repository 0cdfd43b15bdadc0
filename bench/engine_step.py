"""Figure 1, `engine_step_over_bare`: the engine's cost per monitoring round over bare SpiffWorkflow's.

One monitoring round is the monitoring timer firing and the monitoring task completed (two
committed transactions on SQLite, with projection, history, audit and outbox); the baseline is
bare SpiffWorkflow running the same two steps with a full JSON round trip of the workflow around
each (`bench.bench_engine.bare_spiff`). Both sides are measured in the same run, interleaved in
blocks, and the median round of each side counts, so a burst of load from elsewhere on the
machine moves neither. Time is this process's CPU time (SQLite runs in-process, and in WAL mode
with synchronous=NORMAL a commit does not wait for the disk), so other load on the machine does not
count on either side. Rounds 1..N of a fresh case: figure 1 is about the early rounds, where
Spiff's own state is still small (later rounds only grow the baseline's state, not ours).
"""

from __future__ import annotations

import statistics
import time

from sqlalchemy import event

from bench.bench_engine import INTAKE, MONITOR, SETUP, bare_spiff, open_task_id
from bench.figures import Context, Figure
from bench.system import fresh_system
from engine.casework import cases, timers
from engine.clock import FrozenClock
from engine.security import users


def engine_rounds(rounds: int, statements: list[int] | None = None) -> list[float]:
    """Seconds per monitoring round of one fresh case, on a fresh SQLite database. With
    `statements`, how many SQL statements each round sent (an executemany counts once) is
    appended to it: unlike time, the count does not move with the machine's load."""
    clock = FrozenClock()
    system = fresh_system(None, clock.now(), prefix="tsunagu-step-")
    env, factory = system.env, system.factory
    with factory() as s:
        ref = users.add_user(s, "bench.ref", ["hokatsu-center"], ["staff"], clock.now())
        sec = users.add_user(s, "bench.sec", ["secretariat"], ["secretariat"], clock.now())
        s.commit()
        case = cases.start_case(s, env, ref, "multi_agency", {"summary": "相談"}, None, clock.now())
        cases.complete_task(s, env, ref, open_task_id(s, case.id), INTAKE, clock.now())
        for _, data in SETUP:
            cases.complete_task(s, env, sec, open_task_id(s, case.id), data, clock.now())
    times = []
    sent, counting = 0, False

    @event.listens_for(system.engine, "before_cursor_execute")
    def _count(*_args: object) -> None:
        nonlocal sent
        if counting:
            sent += 1

    try:
        for _ in range(rounds):
            clock.advance(days=15)
            sent, counting = 0, True
            t0 = time.process_time()
            timers.fire_due(factory, env, clock.now())
            spent = time.process_time() - t0
            counting = False
            with factory() as s:
                # Not timed: a client knows the task's id from the response that created it
                # (bare Spiff's side looks it up in memory).
                task_id = open_task_id(s, case.id, "monitoring")
                s.commit()
                counting = True
                t0 = time.process_time()
                cases.complete_task(s, env, sec, task_id, MONITOR, clock.now())
            times.append(spent + time.process_time() - t0)
            counting = False
            if statements is not None:
                statements.append(sent)
    finally:
        system.dispose()
    return times


def measure(rounds: int, blocks: int, statements: list[int]) -> tuple[float, float, float, float]:
    """Median ms per round of (engine, bare Spiff) over `blocks` alternating blocks of `rounds`
    rounds each, and the same over each block's first EARLY rounds only. The engine's statements
    per round are appended to `statements`."""
    ours: list[list[float]] = []
    bare: list[list[float]] = []
    for n in range(blocks):
        for side in ((0, 1) if n % 2 else (1, 0)):
            if side == 0:
                ours.append(engine_rounds(rounds, statements))
            else:
                bare.append(bare_spiff(rounds, time.process_time)["times"])

    def median(blocks: list[list[float]], upto: int | None = None) -> float:
        return statistics.median(t for block in blocks for t in block[:upto]) * 1000

    return median(ours), median(bare), median(ours, EARLY), median(bare, EARLY)


# Bare Spiff's own state grows with every round (nothing prunes it: a monitoring round with its
# role reports adds ~5 KB), so its cost per round does too; the first rounds say what a step
# costs on a young case, where the two sides start from the same small state.
EARLY = 3


def figures(ctx: Context) -> list[Figure]:
    rounds, blocks = (15, 2) if ctx.quick else (40, 6)
    statements: list[int] = []
    ours, bare, ours_early, bare_early = measure(rounds, blocks, statements)
    # The figure is the early rounds: over 1..N the baseline's growing state would flatter us.
    return [Figure("engine_step_over_bare", round(ours_early / bare_early, 2), "×", target=1.0, op="<=",
                   baseline=round(bare_early, 3), baseline_unit="ms/round",
                   note=f"engine {ours_early:.3f} ms/round (timer fired + monitoring completed, SQLite, committed) "
                        f"over bare SpiffWorkflow with a JSON round trip per step, rounds 1-{EARLY} of a fresh "
                        f"case, median of {blocks} interleaved blocks; rounds 1-{rounds}: engine {ours:.3f} over "
                        f"bare {bare:.3f} ms/round = ×{ours / bare:.2f} (bare Spiff's state grows each round)"),
            # No target: the count is what the write path's changes are checked by, free of noise.
            Figure("engine_statements_per_round", statistics.median(statements), "statements",
                   note=f"SQL statements per monitoring round (timer fired + monitoring completed, an "
                        f"executemany counted once), median of {len(statements)} rounds; "
                        f"range {min(statements)}-{max(statements)}")]

if __name__ == "__main__":
    import sys

    for f in figures(Context(quick="--quick" in sys.argv)):
        print(f.as_json())
