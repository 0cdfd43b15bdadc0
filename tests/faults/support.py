"""Helpers of the fault tests: a real server in its own process group, an HTTP client that keeps
its connection, bounded waits, and fast bulk creation of cases by cloning real ones.

Everything runs on localhost; every wait has a bound (no sleeping: Event().wait on a condition)."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from engine.casework import search
from engine.models import Base, Case, CaseEvent, CaseMember, HumanTask, OutboxEvent, Timer
from engine.settings import ROOT

CLI = [sys.executable, "-m", "cli.main"]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        pause.wait(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_env(database_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1", **extra})
    return env


class Http:
    """One keep-alive connection speaking as one user; reconnects after an error."""

    def __init__(self, port: int, token: str, timeout: float = 30) -> None:
        self.port, self.token, self.timeout = port, token, timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        try:
            self.conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        data = json.loads(raw) if raw else None
        return response.status, data, dict(response.getheaders())

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Server:
    """`tsunagu serve --workers N` in a process group of its own (gunicorn, its workers, the sweeper)."""

    def __init__(self, database_url: str, log: Path, workers: int = 2, sweep_interval: float = 0.2,
                 env: dict[str, str] | None = None) -> None:
        self.database_url, self.log, self.workers = database_url, log, workers
        self.sweep_interval = sweep_interval
        self.env = env or {}
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self, token: str, timeout: float = 90) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*CLI, "serve", "--workers", str(self.workers), "--port", str(self.port)], cwd=ROOT,
                env=cli_env(self.database_url, TSUNAGU_SWEEP_INTERVAL=str(self.sweep_interval), **self.env),
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        client = Http(self.port, token, timeout=5)

        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                return client.request("GET", "/api/groups")[0] == 200
            except OSError:
                return False

        try:
            wait_for(up, timeout, "the server to answer", interval=0.1)
        finally:
            client.close()

    def group_alive(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL to every process of the group: gunicorn, its workers and the sweeper, at once."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        wait_for(lambda: not self.group_alive(), 30, "the killed processes to go")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM to gunicorn (graceful); it stops its workers and the sweeper."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
            wait_for(lambda: not self.group_alive(), timeout, "the server's processes to stop")
        except (subprocess.TimeoutExpired, AssertionError):
            if self.group_alive():
                os.killpg(self.proc.pid, signal.SIGKILL)
            raise
        return code

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


# ---------------------------------------------------------------- cloning cases in bulk

CLONED = (Case, HumanTask, CaseEvent, Timer, CaseMember, OutboxEvent)


def clone_cases(factory: sessionmaker[Session], template_ids: list[str], count: int, batch: int = 500) -> list[str]:
    """`count` new cases, each a copy of one of the templates with every UUID (case id, Spiff task
    ids in the state and in the rows) replaced by a fresh one and a new case number, written with
    bulk INSERTs. The copies are as consistent as their templates: same state, rows, history, outbox."""
    with factory() as s:
        templates = []
        for case_id in template_ids:
            rows = {}
            for model in CLONED:
                table = model.__table__
                stmt = select(table).where((table.c.id if model is Case else table.c.case_id) == case_id)
                rows[model] = [dict(r) for r in s.execute(stmt).mappings()]
            templates.append(rows)
    new_ids: list[str] = []
    pending: dict[type, list[dict[str, Any]]] = {model: [] for model in CLONED}
    for n in range(count):
        template = templates[n % len(templates)]
        old_number = template[Case][0]["number"]
        number = f"{old_number[:8]}X{n:06d}"
        mapping: dict[str, str] = {}

        def fresh(match: re.Match[str], mapping: dict[str, str] = mapping) -> str:
            return mapping.setdefault(match.group(0), str(uuid.uuid4()))

        def rewrite(value: Any, number: str = number, old_number: str = old_number,
                    fresh: Callable[[re.Match[str]], str] = fresh) -> Any:
            if isinstance(value, str):
                return UUID.sub(fresh, value).replace(old_number, number)
            if isinstance(value, dict | list):
                return json.loads(rewrite(json.dumps(value, ensure_ascii=False)))
            return value

        for model, rows in template.items():
            autoincrement = model in (CaseEvent, Timer, OutboxEvent)
            for row in rows:
                pending[model].append({k: rewrite(v) for k, v in row.items() if not (autoincrement and k == "id")})
        new_ids.append(pending[Case][-1]["id"])
        if len(pending[Case]) >= batch or n == count - 1:
            with factory() as s:
                for model in CLONED:
                    if pending[model]:
                        s.execute(insert(model.__table__), pending[model])
                for row in pending[Case]:
                    search.store(s, row["id"], row["search_text"])  # the index is kept by the write path
                for model in CLONED:
                    pending[model] = []
                s.commit()
    return new_ids


def copy_rows(source: sessionmaker[Session], target: sessionmaker[Session]) -> dict[str, int]:
    """Copy every row of the models' tables that also exist in the target, limited to the columns the
    target has (an older schema), then move PostgreSQL's id sequences past the copied ids."""
    from sqlalchemy import column as sa_column
    from sqlalchemy import inspect
    from sqlalchemy import table as sa_table

    copied: dict[str, int] = {}
    with source() as src, target() as dst:
        have = inspect(dst.connection())
        tables = set(have.get_table_names())
        for table in Base.metadata.sorted_tables:
            if table.name not in tables:
                continue
            columns = [c["name"] for c in have.get_columns(table.name) if c["name"] in table.c]
            rows = [dict(r) for r in src.execute(select(*[table.c[c] for c in columns])).mappings()]
            if rows:
                # Into the columns the target has, and no others: the model's Python-side defaults
                # (for columns added later) must not be sent to an older schema.
                older = sa_table(table.name, *[sa_column(c, table.c[c].type) for c in columns])
                dst.execute(insert(older), rows)
            copied[table.name] = len(rows)
            if dst.get_bind().dialect.name == "postgresql" and "id" in columns and rows and \
                    isinstance(rows[0]["id"], int):
                dst.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                 f"(SELECT max(id) FROM {table.name}))"))
        dst.commit()
    return copied
