"""What the expression sandbox (engine.workflow.expressions: ticks, size guards, the per-step budget) costs:
bench_engine's containment comparison as a part of `python -m bench` — the same monitoring rounds
with containment on and off, interleaved on two identical systems, and the engine step, one
condition and a 10,000-iteration script alone (CPU time, best of several samples)."""

from __future__ import annotations

from bench.bench_engine import containment
from bench.figures import Context, Figure

ROUNDS = 100
QUICK_ROUNDS = 20


def figures(ctx: Context) -> list[Figure]:
    c = containment(QUICK_ROUNDS if ctx.quick else ROUNDS)
    return [
        Figure("containment_round_on_over_off", round(c["round_ms_on"] / c["round_ms_off"], 3), "×",
               baseline=c["round_ms_off"], baseline_unit="ms a monitoring round, containment off",
               note=f"median of {c['rounds']} rounds: {c['round_ms_on']} ms on, {c['round_ms_off']} ms off"),
        Figure("containment_engine_step_on_over_off", round(c["engine_step_us_on"] / c["engine_step_us_off"], 3), "×",
               baseline=c["engine_step_us_off"], baseline_unit="µs the engine step alone, off"),
        Figure("containment_condition_on_over_off", round(c["condition_us_on"] / c["condition_us_off"], 3), "×",
               baseline=c["condition_us_off"], baseline_unit="µs one condition, off"),
        Figure("containment_loop_10k_on_over_off", round(c["loop_10k_us_on"] / c["loop_10k_us_off"], 3), "×",
               baseline=c["loop_10k_us_off"], baseline_unit="µs a 10,000-iteration script, off"),
        Figure("evaluator_process_round_trip_us", c["evaluator_process_round_trip_us"], "µs",
               note="the alternative not taken: one condition evaluated in a separate process"),
    ]
