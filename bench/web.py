"""What the HTTP parts share: a Flask app over a benchmark system, personas with API tokens, and
the p50/p95 of a timed request."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.system import System
from engine.clock import Clock
from engine.models import User
from engine.security import users

INTAKE = {"multiple_targets": True, "all_targets_have_lead_department": True,
          "lead_department_can_handle_alone": False, "coordination_problem": False,
          "summary": "bench", "consent": "given"}
SETUP = [
    ("assessment", {"members": ["choju-anshin"], "assessment": "a"}),
    ("plan", {"issues": "i", "policy": "p", "monitoring_interval": "P14D"}),
    ("meeting", {"held_on": "2026-04-01", "participants": ["choju-anshin"],
                 "roles": [{"group": "choju-anshin", "role": "r"}]}),
]
MONITOR = {"next": "continue", "progress": "ok"}


def personas(system: System, now: Any) -> tuple[dict[str, User], dict[str, str]]:
    """A referring caseworker and a secretariat member, each with an API token."""
    with system.factory() as s:
        made = {
            "caseworker": users.add_user(s, "bench.ref", ["hokatsu-center"], ["staff"], now, "参照 ベンチ"),
            "secretariat": users.add_user(s, "bench.sec", ["secretariat", "chiiki-kyosei"], ["secretariat"], now,
                                          "事務局 ベンチ", "bench-password"),
        }
        tokens = {who: users.issue_token(s, u, now, "bench") for who, u in made.items()}
        s.commit()
        for u in made.values():
            s.expunge(u)
    return made, tokens


def flask_app(system: System, clock: Clock) -> Any:
    from web import create_app

    os.environ.setdefault("TSUNAGU_SECRET_KEY", "bench")
    return create_app(system.settings, clock=clock, env=system.env, config={"TESTING": True})


class Api:
    """A test client speaking with one token; every answer must have the expected status."""

    def __init__(self, client: Any, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, url: str, status: int = 200) -> Any:
        r = self.client.get(url, headers=self.headers)
        assert r.status_code == status, (url, r.status_code, r.get_data(as_text=True)[:500])
        return r

    def post(self, url: str, json: Any = None, status: int = 200) -> Any:
        r = self.client.post(url, json=json, headers=self.headers)
        assert r.status_code == status, (url, r.status_code, r.get_data(as_text=True)[:500])
        return r


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Milliseconds of one call, and what it returned."""
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0) * 1000, out


def p(samples: list[float], q: float) -> float:
    """The q-quantile (0.5, 0.95) of the samples, interpolated."""
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[round(q * 100) - 1]
