"""`python -m bench`: every benchmark part in one run, one table (figure, value, unit, baseline,
ratio, target, met), with the machine, the versions and the settings it ran with.

    python -m bench [--quick] [--only PART[,PART]] [--json PATH] [--database-url URL]

The parts are the modules named in PARTS, each `bench/<part>.py` with
`figures(ctx) -> list[Figure]`. A part that is not there (not merged yet) or that fails is
reported as such; the others still run. `--quick` runs the parts in QUICK, each in its reduced
form, in under two minutes. The PostgreSQL parts use `--database-url` or
TSUNAGU_BENCH_DATABASE_URL (a server where the benchmark may create and drop databases); without
one they say so and are skipped.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sqlite3
import sys
import time
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from bench.figures import Context, Figure

# Every part, in the order it runs; the owner of each is in its module docstring.
PARTS = [
    "engine_step",   # figure 1: a monitoring round over bare SpiffWorkflow
    "case_age",      # figure 2: a completion at round 200 over one at round 1, through HTTP
    "http_scale",    # figures 3 and 6: HTTP at 100,000 cases, one worker; its memory
    "timers",        # figure 4: timer lag and throughput
    "scale_out",     # figure 5: workers and sweepers on PostgreSQL
    "reports",       # figure 7: the stuck report and the dashboard counts
    "statistics",    # figure 7: the fiscal-year statistics
    "containment",   # what the expression sandbox costs
    "case_search",   # issue 14 figure 3: GET /api/cases?q=... at 100,000 cases
]
QUICK = ["engine_step", "case_age"]


@dataclass
class PartResult:
    name: str
    status: str  # ok, not available, failed
    seconds: float = 0.0
    figures: list[Figure] = field(default_factory=list)
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "seconds": round(self.seconds, 1), "error": self.error}


def run_part(name: str, ctx: Context) -> PartResult:
    """Import `bench.<name>` only now, so that a part not merged yet (or whose imports fail) is
    one line of the report, not the end of the run."""
    try:
        module = importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name in (f"bench.{name}",):
            return PartResult(name, "not available", error="not on this branch")
        return PartResult(name, "failed", error=f"import: {exc}")
    fn = getattr(module, "figures", None)
    if fn is None:
        return PartResult(name, "not available", error="no figures(ctx)")
    t0 = time.perf_counter()
    try:
        figures = list(fn(ctx))
    except Exception as exc:  # noqa: BLE001 - one failing part must not hide the others' figures
        traceback.print_exc(file=sys.stderr)
        return PartResult(name, "failed", time.perf_counter() - t0, error=f"{type(exc).__name__}: {exc}")
    return PartResult(name, "ok", time.perf_counter() - t0, figures)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _meminfo_total_mb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _postgres_version(url: str | None) -> str | None:
    if not url:
        return None
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                return conn.execute(text("SHOW server_version")).scalar()
        finally:
            engine.dispose()
    except Exception as exc:  # noqa: BLE001 - the environment line says what went wrong instead
        return f"unreachable ({type(exc).__name__})"


def environment(ctx: Context) -> dict[str, Any]:
    return {
        "machine": {"cpu": _cpu_model(), "cores": os.cpu_count(), "ram_mb": _meminfo_total_mb(),
                    "platform": platform.platform()},
        "versions": {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                     "spiffworkflow": _version("SpiffWorkflow"), "sqlalchemy": _version("SQLAlchemy"),
                     "flask": _version("Flask"), "postgresql": _postgres_version(ctx.database_url)},
        "settings": {"quick": ctx.quick, "database_url": _redact(ctx.database_url), **ctx.options},
    }


def _redact(url: str | None) -> str | None:
    """The password of a database URL stays out of reports."""
    if not url:
        return None
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is reported as such, not echoed
        return "(unparsable)"


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 0.01 else f"{value:.2f}"


def ratio(f: Figure) -> float | None:
    """A figure in × is already a ratio to its baseline; one in the baseline's own unit is divided by it."""
    if f.unit == "×":
        return f.value
    if not f.baseline or (f.baseline_unit not in (None, f.unit)):
        return None
    return f.value / f.baseline


def _ratio(f: Figure) -> str:
    r = ratio(f)
    return "—" if r is None else f"×{r:.2f}"


def _met(f: Figure) -> str:
    return {True: "yes", False: "NO", None: "—"}[f.met]


def print_table(results: list[PartResult], env: dict[str, Any], out: TextIO) -> None:
    m, v = env["machine"], env["versions"]
    out.write(f"machine: {m['cpu']}, {m['cores']} cores, {m['ram_mb']} MB RAM ({m['platform']})\n")
    out.write("versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val) + "\n")
    out.write("settings: " + ", ".join(f"{k}={val}" for k, val in env["settings"].items()) + "\n\n")
    head = ["figure", "value", "unit", "baseline", "ratio", "target", "met"]
    rows = []
    for r in results:
        for f in r.figures:
            target = "—" if f.target is None else f"{f.op} {_num(f.target)}"
            base = "—" if f.baseline is None else f"{_num(f.baseline)} {f.baseline_unit or f.unit}"
            rows.append([f.name, _num(f.value), f.unit, base, _ratio(f), target, _met(f)])
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    right = {1, 3, 4, 5}

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    out.write(line(head) + "\n" + line(["-" * w for w in widths]) + "\n")
    for row in rows:
        out.write(line(row) + "\n")
    notes = [f for r in results for f in r.figures if f.note]
    if notes:
        out.write("\n")
        for f in notes:
            out.write(f"{f.name}: {f.note}\n")
    out.write("\n")
    for r in results:
        extra = f" ({r.error})" if r.error else ""
        out.write(f"part {r.name}: {r.status}, {len(r.figures)} figures, {r.seconds:.1f} s{extra}\n")


def as_json(results: list[PartResult], env: dict[str, Any]) -> dict[str, Any]:
    return {"figures": [{**f.as_json(), "ratio": ratio(f)} for r in results for f in r.figures],
            "parts": [r.as_json() for r in results], **env}


def select_parts(only: str | None, quick: bool) -> list[str]:
    if only:
        names = [n.strip() for n in only.split(",") if n.strip()]
        unknown = [n for n in names if n not in PARTS]
        if unknown:
            raise SystemExit(f"unknown part(s): {', '.join(unknown)}; the parts are: {', '.join(PARTS)}")
        return names
    return list(QUICK if quick else PARTS)


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the reduced set, in under two minutes")
    ap.add_argument("--only", metavar="PART[,PART]", help=f"run these parts only ({', '.join(PARTS)})")
    ap.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here as JSON")
    ap.add_argument("--database-url", default=os.environ.get("TSUNAGU_BENCH_DATABASE_URL"),
                    help="PostgreSQL server for the parts that need one (default: $TSUNAGU_BENCH_DATABASE_URL)")
    args = ap.parse_args(argv)
    names = select_parts(args.only, args.quick)
    ctx = Context(quick=args.quick, database_url=args.database_url)
    results = []
    for name in names:
        print(f"… {name}", file=sys.stderr, flush=True)
        results.append(run_part(name, ctx))
    env = environment(ctx)
    print_table(results, env, out)
    if args.json:
        args.json.write_text(json.dumps(as_json(results, env), indent=2, ensure_ascii=False) + "\n")
    return 0 if all(r.status != "failed" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
