"""The quick parts still walk the processes they measure: a change to a process (the monitoring
round's role reports, say) must not leave `python -m bench --quick` crashing unnoticed. A few
rounds each, no figure and no time asserted: only that every round is measured."""

from __future__ import annotations

from bench import bench_engine, case_age, engine_step


def test_engine_step_walks_monitoring_rounds_on_both_sides() -> None:
    statements: list[int] = []
    assert len(engine_step.engine_rounds(2, statements)) == 2
    assert len(statements) == 2 and all(n > 0 for n in statements)
    assert len(bare_spiff := bench_engine.bare_spiff(2)["times"]) == 2 and all(t > 0 for t in bare_spiff)


def test_case_age_completes_a_monitoring_round_through_http() -> None:
    out = case_age.run(3, window=2)
    aged, young = out["aged"], out["young"]
    assert len(aged["complete_ms"]) == len(aged["read_ms"]) == len(aged["state_bytes"]) == 3
    # The copy is the same case: it is measured on the rounds after the one that warms its app.
    assert len(young["complete_ms"]) == len(young["read_ms"]) == 2
    assert all(size > 0 for size in aged["complete_bytes"] + young["complete_bytes"])
    # Its rounds 2 and 3 store what the original's did, to a few bytes (a date's digits, say).
    assert all(abs(a - b) < 64 for a, b in zip(young["state_bytes"], aged["state_bytes"][1:3], strict=True))
