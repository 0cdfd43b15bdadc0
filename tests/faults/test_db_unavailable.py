"""The database goes away for a while: requests fail with 503 and a clear message, nothing is
half-written, the timer sweep waits, and everything works again by itself when it returns.

PostgreSQL: the app talks to the server through a TCP proxy in a thread, which the test cuts
(closing every connection, refusing new ones, or dropping the COMMIT of a transaction) and
restores. SQLite: another connection holds the write lock longer than the (lowered) busy timeout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from engine.clock import FrozenClock
from engine.env import Env
from engine.ops.check import check_all
from engine.ops.db import make_engine, make_session_factory
from engine.ops.worker import sweep
from engine.settings import Settings
from engine.status import EventKind
from tests.conftest import PG_URL, ApiClient, Personas
from tests.engine.support import ASSESSMENT, Driver, intake, meeting, plan
from web.api import DB_UNAVAILABLE_MESSAGE

pytestmark = pytest.mark.slow


class Proxy:
    """127.0.0.1:<port> → the database, until cut. `mode`: "up"; "down" (every connection is closed
    and new ones are closed at once); "drop-commit" (a COMMIT is not passed on: its connection is
    closed instead, so the transaction dies uncommitted)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.mode = "up"
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.mode == "down":
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.pairs.append((client, upstream))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if from_client and self.mode == "drop-commit" and b"COMMIT" in data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def cut(self, mode: str = "down") -> None:
        self.mode = mode
        if mode == "down":
            with self.lock:
                pairs, self.pairs = self.pairs, []
            for pair in pairs:
                for s in pair:
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

    def restore(self) -> None:
        self.mode = "up"

    def close(self) -> None:
        self.closed = True
        self.cut()
        self.listener.close()


@dataclasses.dataclass
class Outage:
    """Puts the database out of reach and back."""

    url: str
    start: Any
    end: Any


@pytest.fixture
def outage(database_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Outage]:
    if PG_URL:
        url = make_url(database_url)
        proxy = Proxy(url.host or "127.0.0.1", url.port or 5432)
        try:
            yield Outage(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
                         proxy.cut, proxy.restore)
        finally:
            proxy.close()
        return
    # SQLite: a writer waits 0.3 s for the lock, then gives up with "database is locked".
    monkeypatch.setenv("TSUNAGU_SQLITE_BUSY_TIMEOUT", "0.3")
    path = make_url(database_url).database
    holder: dict[str, sqlite3.Connection] = {}

    def lock(_mode: str = "down") -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        holder["conn"] = conn

    def unlock() -> None:
        conn = holder.pop("conn")
        conn.execute("ROLLBACK")
        conn.close()

    yield Outage(database_url, lock, unlock)
    if "conn" in holder:
        unlock()


def _assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.get_json()
    assert response.get_json() == {"error": {"code": "unavailable", "message": DB_UNAVAILABLE_MESSAGE}}
    assert int(response.headers["Retry-After"]) > 0


def test_requests_fail_with_503_and_work_resumes(outage: Outage, settings: Settings, env: Env, clock: FrozenClock,
                                                 driver: Driver, personas: Personas) -> None:
    from web import create_app

    app = create_app(dataclasses.replace(settings, database_url=outage.url), clock=clock, env=env,
                     config={"TESTING": True})
    client = app.test_client()
    caseworker = ApiClient(client, personas.tokens["caseworker"])
    secretariat = ApiClient(client, personas.tokens["secretariat"])
    response = caseworker.post("/api/cases", {"process": "multi_agency", "data": {"summary": "相談"}})
    assert response.status_code == 201
    case_id = response.get_json()["id"]
    (task,) = response.get_json()["open_tasks"]

    outage.start()
    _assert_unavailable(caseworker.post(f"/api/tasks/{task['id']}/complete", {"data": intake()}))
    _assert_unavailable(caseworker.post("/api/cases", {"process": "multi_agency", "data": {"summary": "相談"}}))
    if PG_URL:  # SQLite's readers are not blocked by a writer
        _assert_unavailable(secretariat.get(f"/api/cases/{case_id}"))
    # Nothing half-written: the task is open, its case consistent, no second case.
    assert [t.id for t in driver.open_tasks(case_id)] == [task["id"]]
    assert driver.history(case_id, EventKind.TASK_COMPLETED) == []
    with driver.factory() as s:
        report = check_all(s, env)
    assert report.cases == 1 and report.problems == []

    outage.end()
    response = caseworker.post(f"/api/tasks/{task['id']}/complete", {"data": intake()})
    assert response.status_code == 200, response.get_json()
    assert secretariat.get(f"/api/cases/{case_id}").status_code == 200
    assert len(driver.history(case_id, EventKind.TASK_COMPLETED)) == 1
    with driver.factory() as s:
        assert check_all(s, env).problems == []


def test_the_sweep_waits_for_the_database(outage: Outage, env: Env, driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    driver.complete_step(p.secretariat, case_id, "assessment", ASSESSMENT)
    driver.complete_step(p.secretariat, case_id, "plan", plan("P1D"))
    driver.complete_step(p.secretariat, case_id, "meeting", meeting("choju-anshin"))
    engine = make_engine(outage.url)
    factory = make_session_factory(engine)
    try:
        assert sweep(factory, env, driver.clock) == 0  # nothing due yet; connects while the database is there
        driver.clock.advance(days=2)
        outage.start()
        assert sweep(factory, env, driver.clock) == 0  # logged, not raised
        (timer,) = driver.timers(case_id)
        assert (timer.status, timer.attempts, timer.last_error) == ("pending", 0, None)  # not held against it
        outage.end()
        assert sweep(factory, env, driver.clock) == 1
    finally:
        engine.dispose()
    driver.check(case_id)


@pytest.mark.skipif(not PG_URL, reason="cuts a PostgreSQL connection at COMMIT")
def test_a_commit_that_never_arrives_leaves_nothing(outage: Outage, settings: Settings, env: Env,
                                                    clock: FrozenClock, driver: Driver, personas: Personas) -> None:
    from web import create_app

    app = create_app(dataclasses.replace(settings, database_url=outage.url), clock=clock, env=env,
                     config={"TESTING": True})
    caseworker = ApiClient(app.test_client(), personas.tokens["caseworker"])
    response = caseworker.post("/api/cases", {"process": "multi_agency", "data": {"summary": "相談"}})
    case_id = response.get_json()["id"]
    (task,) = response.get_json()["open_tasks"]
    before = [(e.kind, e.task_id) for e in driver.history(case_id)]

    outage.start("drop-commit")  # the connection dies at COMMIT, after every row was sent
    _assert_unavailable(caseworker.post(f"/api/tasks/{task['id']}/complete", {"data": intake()}))
    outage.end()

    assert [(e.kind, e.task_id) for e in driver.history(case_id)] == before
    assert [t.id for t in driver.open_tasks(case_id)] == [task["id"]]
    with driver.factory() as s:
        assert check_all(s, env).problems == []
    response = caseworker.post(f"/api/tasks/{task['id']}/complete", {"data": intake()})
    assert response.status_code == 200, response.get_json()
    driver.check(case_id)
