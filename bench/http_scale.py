"""Figures 3 and 6: HTTP with 100,000 cases in a SQLite database, one server worker process
(gunicorn, as `tsunagu serve` runs it, on localhost; the client is this process), and the
worker's memory.

The same requests are timed twice in one run: on an almost empty database (a few dozen cases),
then after 100,000 cases with one open task each were added (bulk Core inserts of realistic
rows: the real workflow state of a case at that step, its history, an open task for the
secretariat most of the time, and for one case in five a pending monitoring timer, as the
cases between two monitoring rounds have). Timed: completing a task (POST /api/tasks/<id>/complete, each on a
real case made through the engine), the first page of the queue in the browser (GET /, signed in)
and through the API (GET /api/tasks: its default answer of up to 500 tasks, and a first page of 50
as the browser shows), and the case list (GET /api/cases). Memory: the worker's
peak RSS (VmHWM in /proc) after all of it.

    python -m bench --only http_scale [TSUNAGU_BENCH_CASES=100000]
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from bench.figures import Context, Figure
from bench.system import fresh_system
from bench.web import INTAKE, p, personas
from engine.casework import cases
from engine.clock import Clock
from engine.models import Case, CaseEvent, HumanTask, Timer
from engine.status import EventKind, TaskState, TimerStatus

CASES = 100_000
CHUNK = 5_000
SAMPLES = 60  # requests per timed view; completions: one real case each
PASSWORD = "bench-password"


# ---------------------------------------------------------------- the database


def real_cases(system: Any, actor_ref: Any, now: Any, count: int) -> list[str]:
    """`count` cases made through the engine, each with its assessment task open for the
    secretariat: the completions are timed on these."""
    out = []
    with system.factory() as s:
        for _ in range(count):
            case = cases.start_case(s, system.env, actor_ref, "multi_agency", {"summary": "相談"}, None, now)
            (task,) = cases.case_open_tasks(s, case)
            cases.complete_task(s, system.env, actor_ref, task.id, INTAKE, now)
            (task,) = cases.case_open_tasks(s, case)
            out.append(task.id)
    return out


def fill(system: Any, now: Any, template_case: str, sec_id: int, count: int) -> None:
    """`count` more cases with one open task each, as Core inserts in chunks: the workflow state
    is the template case's (a real one, at its assessment step), the history a start and an intake,
    nine tasks in ten for the secretariat's groups (every 97th assigned to `sec_id`), one in ten an
    intake at the referring centre; due dates spread over months, some overdue, some none; one
    case in five with a pending monitoring timer, due within three months."""
    with system.factory() as s:
        tpl = s.get(Case, template_case)
        state, version, definition = tpl.state, tpl.serializer_version, tpl.definition_id
        groups = ["secretariat", "secretariat", "chiiki-kyosei", "secretariat", "secretariat"]
        steps = [("assessment", "アセスメント"), ("plan", "支援プラン作成"), ("meeting", "支援会議"),
                 ("monitoring", "モニタリング")]
        for start in range(0, count, CHUNK):
            idx = range(start, min(start + CHUNK, count))
            ids = {i: str(uuid.uuid4()) for i in idx}
            s.execute(insert(Case), [
                {"id": ids[i], "number": f"MA-2024-{i:06d}", "process_key": "multi_agency", "definition_id": definition,
                 "status": "active", "referring_group_id": "hokatsu-center", "summary": f"世帯 {i:06d} の相談",
                 "consent": "given", "created_at": now - timedelta(minutes=count - i),
                 "updated_at": now - timedelta(minutes=count - i), "state": state, "serializer_version": version,
                 "version": 2} for i in idx])
            s.execute(insert(CaseEvent), [
                row for i in idx for row in (
                    {"case_id": ids[i], "at": now - timedelta(minutes=count - i), "actor_id": None,
                     "kind": EventKind.CASE_STARTED, "step": None, "step_name": None, "task_id": None,
                     "data": {"summary": f"世帯 {i:06d} の相談"}},
                    {"case_id": ids[i], "at": now - timedelta(minutes=count - i), "actor_id": None,
                     "kind": EventKind.TASK_COMPLETED, "step": "intake", "step_name": "受付・相談",
                     "task_id": str(uuid.uuid4()), "data": INTAKE})])
            s.execute(insert(HumanTask), [
                {"id": str(uuid.uuid4()), "case_id": ids[i], "process_key": "multi_agency",
                 "step": "intake" if i % 10 == 9 else steps[i % 4][0],
                 "name": "受付・相談" if i % 10 == 9 else steps[i % 4][1], "lane": "事務局",
                 "group_id": "hokatsu-center" if i % 10 == 9 else groups[(i // 10) % 5],
                 "assignee_id": sec_id if i % 97 == 0 else None, "form_key": None, "state": TaskState.OPEN,
                 "created_at": now - timedelta(minutes=count - i),
                 "due_at": None if i % 50 == 0 else now + timedelta(minutes=(i * 7919) % 200_000 - 10_000)}
                for i in idx])
            # Every step of a case reads its pending timers: their number must not slow it.
            s.execute(insert(Timer), [
                {"case_id": ids[i], "task_id": str(uuid.uuid4()), "step": "monitoring_timer",
                 "step_name": "モニタリング間隔", "due_at": now + timedelta(days=1 + i % 90), "status": TimerStatus.PENDING,
                 "created_at": now - timedelta(minutes=count - i), "fired_at": None, "attempts": 0, "last_error": None}
                for i in idx if i % 5 == 4])
            s.commit()
        # No ANALYZE: nothing runs it on a production database, whose plans must be right without
        # statistics (with them, SQLite hid that a step read every pending timer, migration 0029).


# ---------------------------------------------------------------- the server and its client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SERVER = """
import sys
from cli.serve import TsunaguGunicorn
from engine.settings import Settings
TsunaguGunicorn(Settings(database_url=sys.argv[1]), {
    "bind": "127.0.0.1:" + sys.argv[2], "workers": 1, "worker_class": "gthread", "threads": 4,
    "keepalive": 30, "accesslog": None, "errorlog": "-", "loglevel": "warning",
    "control_socket_disable": True}).run()
"""
# What `tsunagu worker` (which `tsunagu serve` starts beside gunicorn) does for SQLite besides its
# sweeps: the WAL checkpoints, off the request path. The sweeps are left out: they would act on
# the filled rows' times, which are set on the bench's frozen clock.
CHECKPOINTER = """
import sys, threading
from engine.ops.db import make_engine, make_session_factory
from engine.ops.worker import run_checkpointer
run_checkpointer(make_session_factory(make_engine(sys.argv[1])), threading.Event())
"""


class Server:
    """gunicorn with one worker process, as `tsunagu serve --workers 1` runs it, and beside it the
    worker process's SQLite checkpoints (not its sweeps, see CHECKPOINTER)."""

    def __init__(self, database_url: str) -> None:
        self.port = _free_port()
        env = {**os.environ, "TSUNAGU_SECRET_KEY": os.environ.get("TSUNAGU_SECRET_KEY", "bench")}
        root = Path(__file__).resolve().parent.parent
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, database_url, str(self.port)], env=env, cwd=root)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.1)
        else:
            raise RuntimeError("the server did not start in 60 s")
        self.checkpointer = subprocess.Popen([sys.executable, "-c", CHECKPOINTER, database_url], env=env, cwd=root) \
            if database_url.startswith("sqlite") else None

    def worker_pid(self) -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            if children:
                return int(children[0])
            time.sleep(0.1)
        raise RuntimeError("no worker process")

    def worker_memory_mb(self) -> dict[str, float]:
        """The worker's resident memory now and at its peak, from /proc."""
        status = Path(f"/proc/{self.worker_pid()}/status").read_text()
        kb = {m[0]: int(m[1]) for m in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M)}
        return {"rss": kb["VmRSS"] / 1024, "peak": kb["VmHWM"] / 1024}

    def worker_cpu_ms(self) -> float:
        """CPU time the worker has used so far (user + system, from /proc): per request it does not
        count the time other processes on a shared machine took the cores away."""
        fields = Path(f"/proc/{self.worker_pid()}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.kill()
            self.checkpointer.wait()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Client:
    """One kept-alive connection, with a bearer token or the browser's session cookie."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.cookies: dict[str, str] = {}

    def request(self, method: str, url: str, body: Any = None, form: dict[str, str] | None = None,
                expect: int = 200) -> tuple[int, bytes]:
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            from urllib.parse import urlencode

            data = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.conn.request(method, url, body=data, headers=headers)
        r = self.conn.getresponse()
        payload = r.read()
        for header in r.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        assert r.status == expect, (method, url, r.status, payload[:300])
        return r.status, payload

    def sign_in(self, name: str, password: str) -> None:
        _, page = self.request("GET", "/login")
        token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
        self.request("POST", "/login", form={"username": name, "password": password, "csrf_token": token}, expect=302)


def _time(server: Server, cpu: dict[str, float], key: str, calls: list[Any]) -> list[float]:
    calls[0]()  # the first request compiles templates and warms the caches
    out = []
    c0 = server.worker_cpu_ms()
    for fn in calls[1:]:
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    cpu[key] = (server.worker_cpu_ms() - c0) / len(out)
    return out


def measure(server: Server, token: str, tasks: list[str], samples: int) -> tuple[dict[str, list[float]],
                                                                               dict[str, float]]:
    """Wall milliseconds of each request as the client saw it, and the worker's CPU ms per request."""
    api = Client(server.port, token)
    page = Client(server.port)
    page.sign_in("bench.sec", PASSWORD)
    cpu: dict[str, float] = {}
    out = {
        "queue_page": _time(server, cpu, "queue_page", [lambda: page.request("GET", "/")] * (samples + 1)),
        "queue_api": _time(server, cpu, "queue_api", [lambda: api.request("GET", "/api/tasks")] * (samples + 1)),
        # The API's default answer holds up to 500 tasks (a hundred or so on the almost empty
        # database): this is the browser's page of 50, the same rows on both.
        "queue_api_50": _time(server, cpu, "queue_api_50",
                              [lambda: api.request("GET", "/api/tasks?limit=50")] * (samples + 1)),
        "case_list": _time(server, cpu, "case_list", [lambda: api.request("GET", "/api/cases")] * (samples + 1)),
        "complete": _time(server, cpu, "complete", [
            lambda t=t: api.request("POST", f"/api/tasks/{t}/complete", body={"data": ASSESSMENT}) for t in tasks]),
    }
    return out, cpu


ASSESSMENT = {"members": ["choju-anshin"], "assessment": "介護と不登校"}


# ---------------------------------------------------------------- the figures


def figures(ctx: Context) -> list[Figure]:
    count = int(ctx.options.get("cases") or os.environ.get("TSUNAGU_BENCH_CASES") or CASES)
    samples = SAMPLES
    clock = Clock()
    system = fresh_system(None, clock.now(), prefix="tsunagu-bench-http-")
    made, tokens = personas(system, clock.now())
    sec_id = made["secretariat"].id
    with system.factory() as s:
        ref = s.get(type(made["caseworker"]), made["caseworker"].id)
        s.expunge(ref)
    before = real_cases(system, ref, clock.now(), samples + 1)
    after = real_cases(system, ref, clock.now(), samples + 1)
    (kept,) = real_cases(system, ref, clock.now(), 1)  # stays at its assessment: the filled cases' state
    with system.factory() as s:
        template = s.scalar(select(HumanTask.case_id).where(HumanTask.id == kept))

    server = Server(system.settings.database_url)
    try:
        empty, empty_cpu = measure(server, tokens["secretariat"], before, samples)
        t0 = time.perf_counter()
        fill(system, clock.now(), template, sec_id, count)
        fill_s = time.perf_counter() - t0
        full, full_cpu = measure(server, tokens["secretariat"], after, samples)
        memory = server.worker_memory_mb()
    finally:
        server.stop()
        system.dispose()

    n = f"{count:,} cases"

    def fig(name: str, key: str, target: float, what: str, ratio_target: float | None = None) -> list[Figure]:
        full95, empty95 = p(full[key], 0.95), p(empty[key], 0.95)
        out = [Figure(f"{name}_p95_ms", round(full95, 2), "ms", target=target, op="<",
                      baseline=round(empty95, 2), baseline_unit="ms",
                      note=f"{what} at {n}: p50 {p(full[key], 0.5):.1f} ms, p95 {full95:.1f} ms; almost empty: "
                           f"p50 {p(empty[key], 0.5):.1f} ms, p95 {empty95:.1f} ms"),
               # The worker's own CPU per request: what the code costs, whatever else the machine runs.
               Figure(f"{name}_server_cpu_ms", round(full_cpu[key], 2), "ms", baseline=round(empty_cpu[key], 2),
                      baseline_unit="ms", note=f"worker CPU per request at {n} (baseline: almost empty)")]
        if ratio_target is not None:
            out.append(Figure(f"{name}_full_over_empty", round(full95 / empty95, 2), "×", target=ratio_target,
                              baseline=round(empty95, 2), baseline_unit="ms p95 almost empty"))
        return out

    return [
        *fig("http_complete", "complete", 6, "POST /api/tasks/<id>/complete"),
        *fig("queue_page", "queue_page", 50, "GET / (the queue page, signed in)", 2),
        *fig("queue_api", "queue_api", 50, "GET /api/tasks (the default answer: up to 500 tasks)", 2),
        *fig("queue_api_50", "queue_api_50", 50, "GET /api/tasks?limit=50 (the first page of 50)", 2),
        *fig("case_list", "case_list", 100, "GET /api/cases"),
        Figure("web_worker_peak_rss_mb", round(memory["peak"], 1), "MB", target=200, op="<",
               note=f"one gunicorn worker after the load above (RSS now {memory['rss']:.0f} MB); "
                    f"{n} filled in {fill_s:.0f} s"),
    ]
