"""The production server (`tsunagu serve --workers 2`: gunicorn, two worker processes and one
timer sweeper) under races and under SIGKILL, on the test database (SQLite or PostgreSQL).

Clients speak real HTTP to 127.0.0.1; afterwards `engine.ops.check` must find every case consistent."""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.env import Env
from engine.models import CaseEvent, HumanTask, OutboxEvent, User
from engine.ops.check import check_all
from engine.status import EventKind, OutboxKind, TaskState
from tests.conftest import Personas
from tests.engine.support import ASSESSMENT, CLOSURE, intake, meeting, monitoring, plan
from tests.faults.support import Http, Server, wait_for

pytestmark = pytest.mark.slow

RACE_ROUNDS = 30
WALKERS = 6
JOIN_TIMEOUT = 60


def _new_case(caseworker: Http) -> dict[str, Any]:
    status, case, _ = caseworker.request("POST", "/api/cases", {"process": "multi_agency", "data": {"summary": "相談"}})
    assert status == 201, case
    (task,) = case["open_tasks"]
    status, body, _ = caseworker.request("POST", f"/api/tasks/{task['id']}/complete", {"data": intake()})
    assert status == 200, body
    return body["case"]


def test_two_users_completing_the_same_task_over_http(session_factory: sessionmaker[Session], env: Env,
                                                       personas: Personas, database_url: str,
                                                       tmp_path: Path) -> None:
    server = Server(database_url, tmp_path / "server.log")
    server.start(personas.tokens["caseworker"])
    caseworker = Http(server.port, personas.tokens["caseworker"])
    racers = {"secretariat": Http(server.port, personas.tokens["secretariat"]),
              "supervisor": Http(server.port, personas.tokens["supervisor"])}
    winners: dict[str, str] = {}
    try:
        for round_no in range(RACE_ROUNDS):
            case = _new_case(caseworker)
            (task,) = case["open_tasks"]
            assert task["step"] == "assessment"
            barrier = threading.Barrier(len(racers))
            results: dict[str, Any] = {}

            def complete(who: str, client: Http, task_id: str = task["id"], results: dict = results,
                         barrier: threading.Barrier = barrier) -> None:
                barrier.wait(JOIN_TIMEOUT)
                results[who] = client.request("POST", f"/api/tasks/{task_id}/complete", {"data": ASSESSMENT})

            threads = [threading.Thread(target=complete, args=item) for item in racers.items()]
            for t in threads:
                t.start()
            for t in threads:
                t.join(JOIN_TIMEOUT)
                assert not t.is_alive(), "a racing request did not finish"
            statuses = {who: r[0] for who, r in results.items()}
            assert sorted(statuses.values()) == [200, 409], f"round {round_no}: {results!r}"
            loser = next(who for who, s in statuses.items() if s == 409)
            assert results[loser][1]["error"]["code"] == "conflict"
            winners[task["id"]] = next(who for who, s in statuses.items() if s == 200)
    finally:
        for client in (caseworker, *racers.values()):
            client.close()
        assert server.stop() == 0, server.tail()

    with session_factory() as s:
        names = {u.id: u.name for u in s.scalars(select(User))}
        done = list(s.scalars(select(CaseEvent).where(CaseEvent.kind == EventKind.TASK_COMPLETED,
                                                      CaseEvent.task_id.in_(list(winners)))))
        assert sorted(e.task_id for e in done) == sorted(winners)  # exactly one completion each
        for event in done:
            assert names[event.actor_id] == getattr(personas, winners[event.task_id]).name
        report = check_all(s, env)
    assert report.cases == RACE_ROUNDS and report.problems == []
    print(f"\n{RACE_ROUNDS} rounds over HTTP: one 200 and one 409 each time")


# ---------------------------------------------------------------- SIGKILL under load


@dataclass
class Load:
    """What the clients saw: only what the server acknowledged counts as committed."""

    created: list[str] = field(default_factory=list)
    acked: list[tuple[str, str, str, str]] = field(default_factory=list)  # case, task id, step, who
    finished: int = 0
    disconnects: int = 0
    refused: Counter = field(default_factory=Counter)
    unexpected: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _walk(port: int, tokens: dict[str, str], stop: threading.Event, load: Load) -> None:
    """Take cases through every step, one at a time, monitoring every second (PT1S) once before
    closing; after any error, read the case again and carry on from what the server says."""
    clients = {who: Http(port, tokens[who], timeout=30) for who in ("caseworker", "secretariat")}
    pause = threading.Event()
    case_id: str | None = None
    monitored: Counter = Counter()
    try:
        while not stop.is_set():
            try:
                if case_id is None:
                    status, body, _ = clients["caseworker"].request(
                        "POST", "/api/cases", {"process": "multi_agency", "data": {"summary": "相談"}})
                    if status == 201:
                        case_id = body["id"]
                        with load.lock:
                            load.created.append(case_id)
                    else:
                        load.unexpected.append(("start", status, body))
                        pause.wait(0.1)
                    continue
                status, case, _ = clients["secretariat"].request("GET", f"/api/cases/{case_id}")
                if status != 200:
                    load.unexpected.append(("read", status, case))
                    pause.wait(0.1)
                    continue
                if case["status"] == "completed":
                    with load.lock:
                        load.finished += 1
                    case_id = None
                    continue
                # The role holder's report of a monitoring round is not these walkers' to give:
                # the secretariat decides without it.
                tasks = [t for t in case["open_tasks"] if t["step"] != "role_report"]
                if not tasks:
                    pause.wait(0.1)  # waiting for the monitoring timer
                    continue
                task = tasks[0]
                step = task["step"]
                who, data = {
                    "intake": ("caseworker", intake()),
                    "assessment": ("secretariat", ASSESSMENT),
                    "plan": ("secretariat", plan("PT1S")),
                    "meeting": ("secretariat", meeting("choju-anshin")),
                    "monitoring": ("secretariat", monitoring("close" if monitored[case_id] else "continue")),
                    "closure": ("secretariat", CLOSURE),
                }[step]
                status, body, _ = clients[who].request("POST", f"/api/tasks/{task['id']}/complete", {"data": data})
                if status == 200:
                    with load.lock:
                        load.acked.append((case_id, task["id"], step, who))
                    if step == "monitoring":
                        monitored[case_id] += 1
                elif status in (409, 503):
                    load.refused[status] += 1
                else:
                    load.unexpected.append(("complete", step, status, body))
            except (OSError, http.client.HTTPException):
                with load.lock:
                    load.disconnects += 1
                pause.wait(0.1)  # the server is down: try again shortly
    finally:
        for client in clients.values():
            client.close()


def test_sigkill_under_load_loses_nothing_and_doubles_nothing(session_factory: sessionmaker[Session], env: Env,
                                                               personas: Personas, database_url: str,
                                                               tmp_path: Path) -> None:
    server = Server(database_url, tmp_path / "server.log", sweep_interval=0.2)
    token = personas.tokens["secretariat"]
    server.start(token)
    stop = threading.Event()
    load = Load()
    walkers = [threading.Thread(target=_walk, args=(server.port, personas.tokens, stop, load), daemon=True)
               for _ in range(WALKERS)]
    try:
        for w in walkers:
            w.start()
        wait_for(lambda: len(load.acked) >= 80 and load.finished >= 1, 180, "the load to get going")
        server.kill()  # SIGKILL: gunicorn, both workers and the sweeper, mid-request
        at_kill = len(load.acked)
        wait_for(lambda: load.disconnects >= WALKERS, 30, "the clients to notice")
        server.start(token)
        wait_for(lambda: len(load.acked) >= at_kill + 80, 180, "the load to continue after the restart")
    finally:
        stop.set()
        for w in walkers:
            w.join(JOIN_TIMEOUT)
        assert server.stop() == 0, server.tail()
    assert not any(w.is_alive() for w in walkers)
    assert load.unexpected == []

    with session_factory() as s:
        report = check_all(s, env)
        assert report.problems == [], "\n".join(map(str, report.problems))
        acked = {task_id: (step, who) for _, task_id, step, who in load.acked}
        assert len(acked) == len(load.acked)  # no task was acknowledged twice
        completions = Counter(s.scalars(select(CaseEvent.task_id).where(CaseEvent.kind == EventKind.TASK_COMPLETED)))
        rows = {r.id: r for r in s.scalars(select(HumanTask).where(HumanTask.id.in_(list(acked))))}
        names = {u.id: u.name for u in s.scalars(select(User))}
        for task_id, (step, who) in acked.items():
            assert completions[task_id] == 1, f"acknowledged {step} {task_id} is in history {completions[task_id]}x"
            assert rows[task_id].state == TaskState.COMPLETED
            assert names[rows[task_id].completed_by_id] == getattr(personas, who).name
        fired = Counter(s.scalars(select(CaseEvent.task_id).where(CaseEvent.kind == EventKind.TIMER_FIRED)))
        assert all(n == 1 for n in fired.values()), "a timer fired twice"
        outbox = Counter(s.scalars(select(OutboxEvent.kind)))
        assert outbox[OutboxKind.TIMER_FIRED] == sum(fired.values())
        assert outbox[OutboxKind.TASK_COMPLETED] == sum(completions.values())
        started = set(s.scalars(select(CaseEvent.case_id).where(CaseEvent.kind == EventKind.CASE_STARTED)))
        assert set(load.created) <= started
    print(f"\nSIGKILL run: {len(load.created)} cases started, {len(load.acked)} steps acknowledged "
          f"({at_kill} before the kill), {load.finished} cases closed, {sum(fired.values())} timers fired, "
          f"{load.disconnects} client errors while down, refused {dict(load.refused)}; check: {report.cases} "
          f"cases, no problems")
