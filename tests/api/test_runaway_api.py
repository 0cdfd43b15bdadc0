"""A runaway diagram script through the API: 422 in the error envelope naming the element,
and the case reads back as `error` with the limit's text."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FrozenClock
from engine.env import Env
from engine.settings import ROOT, Settings
from engine.workflow import specs
from engine.workflow.expressions import TIME_LIMIT_MESSAGE
from tests.engine.support import ADVICE, diagram


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, script_cpu_seconds=0.2)


def test_runaway_step_answers_422_naming_the_element_and_the_case_shows_error(
        api, session_factory: sessionmaker[Session], env: Env, clock: FrozenClock,  # noqa: ANN001
        tmp_path: Path) -> None:
    with session_factory() as s:
        folder = diagram(tmp_path, script="i = 0\nwhile i >= 0:\n    i = i + 1")
        specs.deploy(s, specs.read_sources(folder, ROOT / "forms"), env.org, clock.now())
    secretariat = api("secretariat")
    r = secretariat.post("/api/cases", json={"process": "probe", "group": "chiiki-kyosei"})
    assert r.status_code == 201, r.json
    case_id, (task,) = r.json["id"], r.json["open_tasks"]

    r = secretariat.post(f"/api/tasks/{task['id']}/complete", json={"data": ADVICE})

    assert r.status_code == 422
    assert r.json["error"]["code"] == "workflow_error"
    assert r.json["error"]["fields"] == {"element": "middle"}
    ja, en = TIME_LIMIT_MESSAGE.split(" / ")
    assert ja in r.json["error"]["message"] and en in r.json["error"]["message"]
    case = secretariat.get(f"/api/cases/{case_id}").json
    assert case["status"] == "error"
    assert ja in case["error"] and "middle" in case["error"]
    assert [t["step"] for t in case["open_tasks"]] == ["work"]
