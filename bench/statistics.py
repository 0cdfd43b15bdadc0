"""Bench part: the statistics report (engine/reports/statistics.py) for one fiscal year of a
city-sized database, 100,000 cases and 500,000 consultations (with their tasks, links,
placements, reviews and resource gaps), against the same report on a small database (1,000
cases, 5,000 consultations) in the same run.

Figure `statistics_fiscal_year_ms`: median of 5 runs of the fiscal year's report, target under
1000 ms. The data is written with bulk Core inserts (`generate`), which the tests also use to
check the figures against counts computed in plain Python.

    python -m bench.statistics [--cases 100000] [--consultations 500000]
"""

from __future__ import annotations

import argparse
import random
import statistics as stats
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from bench.figures import Context, Figure
from engine.models import (
    Case,
    CaseLink,
    Consultation,
    HumanTask,
    MeetingReview,
    Place,
    Placement,
    ProcessDefinition,
    ResourceGap,
)

FIRST_DAY = date(2021, 4, 1)
DAYS = 6 * 365  # six fiscal years of data
STEPS = ("intake", "assessment", "plan", "meeting", "monitoring", "closure")
DECISIONS = [("eligible", "Rule_several_each_department"), ("eligible", "Rule_single_no_department"),
             ("eligible", "Rule_single_several_issues"), ("not_eligible", "Rule_not_eligible"),
             ("consult_only", "Rule_consult_only")]
CLOSURES = ("established", "transferred", "other", "returned")
WINDOWS = ("hokatsu-center", "kikan-sodan-center", "kurashi-saiken-psc", "fukushi-jimusho", "wakamono-sodan")
DEFAULT_CONTENT = ("system_question", "hardship", "other_infection", "other")
DEFAULT_RESPONSE = ("information", "other_agency", "kurashi_saiken")
OWN = {"wakamono-sodan": (("work", "withdrawal", "family", "other"), ("information", "other_agency", "continued"))}
CHANNELS = ("visit_in", "phone", "home_visit", "email", "event")
GAPS = ("housing", "employment", "place_to_be", "care", "money", "transport")
PLACE_KINDS = ("activity", "workplace", "community")
BATCH = 5000


@dataclass
class Generated:
    """Every row written, as plain tuples, for counting independently of the database."""

    cases: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    consultations: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    places: list[dict[str, Any]] = field(default_factory=list)
    placements: list[dict[str, Any]] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)


def _instant(rng: random.Random) -> datetime:
    # Whole minutes plus 7: no duration lands on a tie of the tenths-of-a-day rounding.
    start = datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=UTC) - timedelta(hours=9)
    return start + timedelta(minutes=rng.randrange(DAYS * 24 * 60))


def _later(rng: random.Random, t: datetime, max_days: int) -> datetime:
    return t + timedelta(hours=rng.randrange(max_days * 24), minutes=7)


def _insert(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), BATCH):
        conn.execute(insert(table), rows[i:i + BATCH])


def generate(conn: Connection, cases: int, consultations: int, seed: int = 13, keep: bool = True) -> Generated:
    """Write a random but reproducible data set; returns its rows (only counts when `keep` is False)."""
    rng = random.Random(seed)
    out = Generated()
    definitions = dict(conn.execute(select(ProcessDefinition.process_key, ProcessDefinition.id)).all())
    groups = list(WINDOWS)
    places = [{"id": i + 1, "name": f"参加先{i + 1}", "kind": PLACE_KINDS[i % 3], "description": "", "active": True,
               "created_at": datetime(2021, 1, 1, tzinfo=UTC)} for i in range(6)]
    _insert(conn, Place.__table__, places)
    out.places = places
    case_rows, task_rows, link_rows, placement_rows, review_rows, gap_rows = [], [], [], [], [], []
    ma_ids: list[str] = []
    for n in range(cases):
        roll = rng.random()
        process = ("multi_agency" if roll < 0.7 else "emergency" if roll < 0.8 else "outreach" if roll < 0.9
                   else "participation")
        created = _instant(rng)
        row = {"id": str(uuid.UUID(int=rng.getrandbits(128))), "number": f"B-{n:07d}", "process_key": process,
               "definition_id": definitions[process], "status": "active", "referring_group_id": rng.choice(groups),
               "summary": "", "created_at": created, "updated_at": created, "completed_at": None, "state": "",
               "serializer_version": "bench", "version": 1, "decision_result": None, "decision_rule": None,
               "decided_at": None, "closure_reason": None}
        if process == "multi_agency":
            ma_ids.append(row["id"])
            t = created
            if rng.random() < 0.85:
                row["decision_result"], row["decision_rule"] = rng.choice(DECISIONS)
                row["decided_at"] = _later(rng, created, 5)
            for i, step in enumerate(STEPS[:rng.randrange(1, len(STEPS) + 1)]):
                done = rng.random() < 0.9 or i == 0
                finished = _later(rng, t, 30) if done else None
                task_rows.append({"id": str(uuid.UUID(int=rng.getrandbits(128))), "case_id": row["id"],
                                  "process_key": process, "step": step, "name": step, "lane": "事務局",
                                  "group_id": "secretariat", "state": "completed" if done else "open",
                                  "created_at": t, "completed_at": finished})
                if step == "meeting" and done and rng.random() < 0.5:
                    review_rows.append({"case_id": row["id"], "stage": "plan", "held_on": None,
                                        "result": rng.choice(("appropriate", "revise")), "comments": "",
                                        "recorded_at": finished})
                if not done:
                    break
                t = finished
            else:
                if rng.random() < 0.6:
                    row.update(status="completed", completed_at=t, closure_reason=rng.choice(CLOSURES))
                    for _ in range(rng.choice((0, 0, 1, 2))):
                        gap_rows.append({"case_id": row["id"], "kind": rng.choice(GAPS), "need": "", "recorded_at": t})
        elif process in ("emergency", "outreach"):
            if rng.random() < 0.7:
                ended = _later(rng, created, 60)
                row.update(status="completed", completed_at=ended)
                if ma_ids and rng.random() < 0.4:
                    link_rows.append({"from_case_id": row["id"], "to_case_id": rng.choice(ma_ids), "kind": "handover",
                                      "created_at": ended})
                    row["closure_reason"] = "handed_over"
                else:
                    row["closure_reason"] = rng.choice(("completed", "unreachable", "consultation"))
        else:
            t = created
            for _ in range(rng.randrange(1, 3)):
                status = rng.choice(("trial", "settled", "rematched", "ended"))
                ended = _later(rng, t, 90) if status != "trial" else None
                placement_rows.append({"case_id": row["id"], "place_id": rng.choice(places)["id"], "status": status,
                                       "started_at": t, "ended_at": ended})
                if status != "rematched":
                    break
                t = ended
        case_rows.append(row)
    _insert(conn, Case.__table__, case_rows)
    _insert(conn, HumanTask.__table__, task_rows)
    _insert(conn, CaseLink.__table__, link_rows)
    _insert(conn, Placement.__table__, placement_rows)
    _insert(conn, MeetingReview.__table__, review_rows)
    _insert(conn, ResourceGap.__table__, gap_rows)
    created = datetime(2021, 4, 1, tzinfo=UTC)
    batch: list[dict[str, Any]] = []
    for _ in range(consultations):
        group = rng.choice(groups)
        content, response = OWN.get(group, (DEFAULT_CONTENT, DEFAULT_RESPONSE))
        received = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
        batch.append({"received_on": received, "received_month": received.isoformat()[:7], "group_id": group,
                      "channel": rng.choice(CHANNELS), "content": rng.choice(content),
                      "response": rng.choice(response), "note": "", "complex_issues": False, "created_at": created})
        if len(batch) == BATCH:
            _insert(conn, Consultation.__table__, batch)
            if keep:
                out.consultations.extend(batch)
            batch = []
    _insert(conn, Consultation.__table__, batch)
    if keep:
        out.consultations.extend(batch)
        out.cases, out.tasks, out.links = case_rows, task_rows, link_rows
        out.placements, out.reviews, out.gaps = placement_rows, review_rows, gap_rows
    return out


def _database(url: str, cases: int, consultations: int) -> tuple[Any, Any]:
    """A fresh database with the schema, the groups and the deployed processes, then the data."""
    from engine.env import Env
    from engine.ops.db import create_schema, make_engine, make_session_factory
    from engine.security import users
    from engine.settings import Settings
    from engine.workflow import specs

    settings = Settings()
    env = Env.from_settings(settings)
    engine = make_engine(url)
    create_schema(engine)
    with make_session_factory(engine)() as session:
        users.sync_groups(session, env.org)
        specs.deploy(session, specs.read_sources(settings.processes_dir, settings.forms_dir), env.org,
                     datetime(2021, 1, 1, tzinfo=UTC))
        session.commit()
    with engine.begin() as conn:
        generate(conn, cases, consultations, keep=False)
    return engine, make_session_factory(engine)


def _time_report(factory: Any, runs: int) -> float:
    from engine.reports.statistics import compute

    samples = []
    for _ in range(runs):
        with factory() as session:
            started = time.perf_counter()
            compute(session, date(2024, 4, 1), date(2025, 3, 31))
            samples.append((time.perf_counter() - started) * 1000)
    return stats.median(samples)


def measure(cases: int, consultations: int, runs: int = 5) -> tuple[float, float]:
    """(fiscal-year report ms on the big SQLite database, the same on the small one)."""
    with tempfile.TemporaryDirectory() as tmp:
        engine, factory = _database(f"sqlite:///{Path(tmp) / 'small.db'}", 1000, 5000)
        baseline = _time_report(factory, runs)
        engine.dispose()
        engine, factory = _database(f"sqlite:///{Path(tmp) / 'big.db'}", cases, consultations)
        value = _time_report(factory, runs)
        engine.dispose()
    return value, baseline


def figures(ctx: Context) -> list[Figure]:
    cases, consultations = (20_000, 100_000) if ctx.quick else (100_000, 500_000)
    value, baseline = measure(cases, consultations)
    return [Figure("statistics_fiscal_year_ms", round(value, 1), "ms", target=1000, op="<",
                   baseline=round(baseline, 1), baseline_unit="ms",
                   note=f"one fiscal year's report, {cases:,} cases and {consultations:,} consultations (SQLite); "
                        "baseline: 1,000 cases and 5,000 consultations")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--consultations", type=int, default=500_000)
    args = parser.parse_args()
    value, baseline = measure(args.cases, args.consultations)
    print(f"statistics_fiscal_year_ms {value:.1f} ms (baseline {baseline:.1f} ms on 1,000 cases)")


if __name__ == "__main__":
    main()
