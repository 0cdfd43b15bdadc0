"""A runaway diagram script on the real server (`tsunagu serve --workers 1`: one gunicorn
worker process with its threads, so the runaway shares the process and its interpreter with
the requests below): while it runs, the server keeps answering (the login page, a case read,
opening a case); then the runaway's request gets 422 naming the element and the case shows
`error` with the limit's text."""

from __future__ import annotations

import http.client
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FrozenClock
from engine.env import Env
from engine.settings import ROOT
from engine.workflow import specs
from engine.workflow.expressions import SIZE_LIMIT_MESSAGE, TIME_LIMIT_MESSAGE
from tests.conftest import Personas
from tests.engine.support import ADVICE, diagram
from tests.faults.support import Http, Server

pytestmark = pytest.mark.slow

BUDGET = "1.5"  # CPU seconds: long enough for many requests to be seen answered meanwhile
# Far below SQLite's 30 s busy timeout: a step that held the write lock for good fails here.
CLIENT_TIMEOUT = 20
JOIN_TIMEOUT = 60


def _deploy_probe(factory: sessionmaker[Session], env: Env, clock: FrozenClock, tmp_path: Path, key: str,
                  script: str) -> None:
    with factory() as s:
        specs.deploy(s, specs.read_sources(diagram(tmp_path / key, key=key, script=script), ROOT / "forms"),
                     env.org, clock.now())


@pytest.mark.parametrize(("script", "message"), [
    pytest.param("i = 0\nwhile i >= 0:\n    i = i + 1", TIME_LIMIT_MESSAGE, id="endless-loop"),
    # Unguarded, this one calculation would hold the interpreter lock of the whole process.
    pytest.param("n = 10\nx = n ** n ** n", SIZE_LIMIT_MESSAGE, id="power-tower"),
])
def test_server_answers_other_requests_while_a_runaway_step_runs(
        session_factory: sessionmaker[Session], env: Env, clock: FrozenClock, personas: Personas,
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str, message: str) -> None:
    (tmp_path / "probe").mkdir()
    _deploy_probe(session_factory, env, clock, tmp_path, "probe", script)
    monkeypatch.setenv("TSUNAGU_SCRIPT_CPU_SECONDS", BUDGET)
    server = Server(database_url, tmp_path / "server.log", workers=1)
    server.start(personas.tokens["caseworker"])
    secretariat = Http(server.port, personas.tokens["secretariat"], timeout=CLIENT_TIMEOUT)
    caseworker = Http(server.port, personas.tokens["caseworker"], timeout=CLIENT_TIMEOUT)
    browser = http.client.HTTPConnection("127.0.0.1", server.port, timeout=CLIENT_TIMEOUT)

    cookie: dict[str, str] = {}

    def login_page() -> int:
        # As a browser does: the visitor's page session, once made, is sent back (a new one per
        # request would be a write, and on SQLite writes wait for the runaway's step).
        browser.request("GET", "/login", headers=cookie)
        response = browser.getresponse()
        response.read()
        made = response.getheader("Set-Cookie")
        if made and not cookie:
            cookie["Cookie"] = made.split(";", 1)[0]
        return response.status

    try:
        status, other, _ = caseworker.request("POST", "/api/cases", {"process": "multi_agency", "data": {"summary": "相談"}})
        assert status == 201, other
        status, probe, _ = secretariat.request("POST", "/api/cases", {"process": "probe", "group": "chiiki-kyosei"})
        assert status == 201, probe
        (task,) = probe["open_tasks"]

        done = threading.Event()
        runaway: dict[str, Any] = {}

        def run() -> None:
            client = Http(server.port, personas.tokens["secretariat"], timeout=CLIENT_TIMEOUT)
            try:
                runaway["response"] = client.request("POST", f"/api/tasks/{task['id']}/complete", {"data": ADVICE})
            finally:
                client.close()
                done.set()

        others: list[tuple[str, int]] = []

        def read_and_write() -> None:
            # On SQLite both take the write lock (a case read is audited), so they may wait for
            # the runaway's step to end: at most its budget, never the busy timeout.
            others.append(("read", caseworker.request("GET", f"/api/cases/{other['id']}")[0]))
            others.append(("write", caseworker.request("POST", "/api/cases",
                                                       {"process": "multi_agency", "data": {"summary": "相談"}})[0]))

        assert login_page() == 200  # the visitor's page session exists before the runaway starts
        threads = [threading.Thread(target=run, daemon=True), threading.Thread(target=read_and_write, daemon=True)]
        for t in threads:
            t.start()
        answered_meanwhile = 0
        while not done.is_set():
            assert login_page() == 200
            if not done.is_set():
                answered_meanwhile += 1
        for t in threads:
            t.join(JOIN_TIMEOUT)
            assert not t.is_alive()

        status, body, _ = runaway["response"]
        assert status == 422, body
        assert body["error"]["code"] == "workflow_error"
        assert body["error"]["fields"] == {"element": "middle"}
        assert message.split(" / ")[1] in body["error"]["message"]
        # The power tower is refused before it computes anything, so it may be over before the
        # first login page; the endless loop runs for its whole budget.
        if message == TIME_LIMIT_MESSAGE:
            assert answered_meanwhile >= 1
        assert all(code == (200 if kind == "read" else 201) for kind, code in others), others
        status, case, _ = secretariat.request("GET", f"/api/cases/{probe['id']}")
        assert status == 200
        assert case["status"] == "error"
        assert message.split(" / ")[0] in case["error"] and "middle" in case["error"]
        assert [t["step"] for t in case["open_tasks"]] == ["work"]
    finally:
        for client in (secretariat, caseworker, browser):
            client.close()
        assert server.stop() == 0, server.tail()
