"""`python -m bench`'s runner: the table, the JSON, --only, and parts that are missing or fail.
The parts here are trivial modules put in place for the test: the real parts take minutes and are
run by hand, never by the test suite."""

from __future__ import annotations

import io
import json
import sys
import types

import pytest

from bench import __main__ as command
from bench.figures import Figure


@pytest.fixture
def parts(monkeypatch):  # noqa: ANN001, ANN201
    calls: list[str] = []

    def add(name: str, fn) -> None:  # noqa: ANN001
        module = types.ModuleType(f"bench.{name}")
        module.figures = fn
        monkeypatch.setitem(sys.modules, f"bench.{name}", module)

    def tiny(ctx):  # noqa: ANN001, ANN202
        calls.append("tiny")
        return [Figure("tiny_ratio", 1.05, "×", target=1.1, baseline=2.0, baseline_unit="ms"),
                Figure("tiny_p95_ms", 7.5, "ms", target=6.0, op="<", note="one worker")]

    def other(ctx):  # noqa: ANN001, ANN202
        calls.append("other")
        return [Figure("other_figure", 3.0, "MB", note="quick" if ctx.quick else "full"),
                Figure("ms_over_baseline", 10.0, "ms", baseline=2.5)]

    def broken(ctx):  # noqa: ANN001, ANN202
        raise RuntimeError("the part fell over")

    add("tiny", tiny)
    add("other", other)
    add("broken", broken)
    monkeypatch.setattr(command, "PARTS", ["tiny", "other", "broken", "never_merged"])
    monkeypatch.setattr(command, "QUICK", ["tiny"])
    return calls


def test_only_runs_the_named_parts_and_writes_their_figures_as_json(parts, tmp_path) -> None:  # noqa: ANN001
    out = io.StringIO()
    path = tmp_path / "figures.json"
    assert command.main(["--only", "tiny", "--json", str(path)], out=out) == 0
    assert parts == ["tiny"]
    doc = json.loads(path.read_text())
    assert [f["name"] for f in doc["figures"]] == ["tiny_ratio", "tiny_p95_ms"]
    first, second = doc["figures"]
    assert {k: first[k] for k in ("value", "unit", "baseline", "target", "met")} == {
        "value": 1.05, "unit": "×", "baseline": 2.0, "target": 1.1, "met": True}
    assert second["met"] is False
    assert doc["versions"]["python"] and doc["versions"]["sqlite"] and doc["machine"]["cores"]
    assert doc["parts"] == [{"name": "tiny", "status": "ok", "seconds": doc["parts"][0]["seconds"], "error": ""}]


def test_the_table_shows_every_column_and_what_was_not_met(parts) -> None:  # noqa: ANN001
    out = io.StringIO()
    command.main(["--only", "tiny,other"], out=out)
    text = out.getvalue()
    header = next(line for line in text.splitlines() if line.startswith("figure"))
    assert header.split() == ["figure", "value", "unit", "baseline", "ratio", "target", "met"]
    row = next(line for line in text.splitlines() if line.startswith("tiny_ratio"))
    assert row.split() == ["tiny_ratio", "1.05", "×", "2.00", "ms", "×1.05", "<=", "1.10", "yes"]
    ms = next(line for line in text.splitlines() if line.startswith("ms_over_baseline"))
    assert ms.split()[5] == "×4.00"  # figure, value, unit, baseline value, baseline unit, ratio
    missed = next(line for line in text.splitlines() if line.startswith("tiny_p95_ms"))
    assert missed.split()[-1] == "NO" and "< 6.00" in missed
    untargeted = next(line for line in text.splitlines() if line.startswith("other_figure"))
    assert untargeted.split()[-1] == "—"
    assert "tiny_p95_ms: one worker" in text
    assert text.startswith("machine: ") and "\nversions: python " in text and "sqlite " in text


def test_a_missing_or_failing_part_is_reported_and_the_others_still_run(parts, tmp_path) -> None:  # noqa: ANN001
    out = io.StringIO()
    path = tmp_path / "all.json"
    assert command.main(["--json", str(path)], out=out) == 1  # a failed part fails the run
    assert parts == ["tiny", "other"]
    statuses = {p["name"]: p["status"] for p in json.loads(path.read_text())["parts"]}
    assert statuses == {"tiny": "ok", "other": "ok", "broken": "failed", "never_merged": "not available"}
    assert "part never_merged: not available" in out.getvalue()
    assert "RuntimeError: the part fell over" in out.getvalue()


def test_quick_runs_the_quick_parts_in_their_reduced_form(parts) -> None:  # noqa: ANN001
    out = io.StringIO()
    assert command.main(["--quick", "--only", "other"], out=out) == 0
    assert "other_figure: quick" in out.getvalue()
    command.main(["--quick"], out=io.StringIO())
    assert parts == ["other", "tiny"]


def test_an_unknown_part_is_refused_by_name(parts) -> None:  # noqa: ANN001
    with pytest.raises(SystemExit, match="unknown part.*nope"):
        command.main(["--only", "nope"], out=io.StringIO())


def test_the_database_password_stays_out_of_the_report(parts, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "pg.json"
    command.main(["--only", "tiny", "--json", str(path), "--database-url",
                  "postgresql+psycopg://bench:s3cret@127.0.0.1:1/none"], out=io.StringIO())
    text = path.read_text()
    assert "s3cret" not in text and "bench:***@127.0.0.1" in text


def test_every_part_the_command_knows_is_listed_once() -> None:
    assert len(set(command.PARTS)) == len(command.PARTS)
    assert set(command.QUICK) <= set(command.PARTS)
    assert {"engine_step", "case_age"} <= set(command.QUICK)
