"""Production serving: `tsunagu serve --workers N` and `tsunagu worker`.

`serve --workers N` runs gunicorn (N worker processes with threads, each with its own database
pool, `web.create_app()` built after the fork) and starts one `tsunagu worker` process beside it
for the sweeps. `tsunagu worker` is the sweeps alone (timers, and webhook deliveries in a thread
beside them); any number of them may run, on any machine sharing the database, since each timer
and each delivery attempt is claimed by exactly one transaction.

Shutdown: SIGTERM stops gunicorn gracefully (requests in flight finish) and then the sweeper;
SIGINT (Ctrl-C) does the same, faster. The sweeper also stops by itself if the serving process
that started it disappears (killed with SIGKILL, say), so no orphan keeps sweeping.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from typing import Any

from gunicorn.app.base import BaseApplication

from engine.settings import Settings

log = logging.getLogger("tsunagu.serve")
STOP_TIMEOUT = 30  # seconds the sweeper gets to finish its current timer


class TsunaguGunicorn(BaseApplication):
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # settings newer than the installed gunicorn are left out
                self.cfg.set(key, value)

    def load(self) -> Any:
        from web import create_app

        return create_app(self.settings)


def _start_sweeper(parent_pid: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli.main", "worker", "--parent-pid", str(parent_pid)])


def _stop_sweeper(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def serve_production(settings: Settings, host: str, port: int, workers: int, threads: int = 4) -> int:
    """gunicorn with `workers` processes plus one sweeper process, until SIGTERM or SIGINT."""
    sweeper: dict[str, subprocess.Popen] = {}

    def when_ready(server: Any) -> None:
        sweeper["proc"] = _start_sweeper(os.getpid())
        print(f"Tsunagu serving on http://{host}:{port}/ with {workers} worker process(es) and one timer sweeper "
              f"(every {settings.sweep_interval}s)", flush=True)

    def on_exit(server: Any) -> None:
        _stop_sweeper(sweeper.get("proc"))

    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 60,
        "graceful_timeout": STOP_TIMEOUT,
        "keepalive": 5,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "tsunagu",
        # gunicorn 27's control socket has one default path per user: servers side by side would share it.
        "control_socket_disable": True,
        "when_ready": when_ready,
        "on_exit": on_exit,
    }
    try:
        TsunaguGunicorn(settings, options).run()
    finally:
        _stop_sweeper(sweeper.get("proc"))
    return 0


def run_worker(settings: Settings, parent_pid: int | None = None) -> int:
    """The timer sweep every `settings.sweep_interval` seconds and the webhook delivery sweep every
    `settings.webhook_interval` seconds, until SIGTERM or SIGINT."""
    from engine.clock import Clock
    from engine.env import Env
    from engine.ops.db import make_engine, make_session_factory
    from engine.ops.worker import run_sweeper
    from webhooks import worker as webhook_worker

    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        log.info("received %s; stopping the timer sweep", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    # Webhook deliveries beside the timers; it ends with them (the timer loop returns when told to stop).
    deliveries = threading.Thread(target=webhook_worker.run, args=(factory, settings, Clock(), stop),
                                  name="webhook-sweep", daemon=True)
    deliveries.start()
    try:
        run_sweeper(factory, Env.from_settings(settings), Clock(), settings.sweep_interval, stop, parent_pid)
    finally:
        stop.set()
        deliveries.join(STOP_TIMEOUT)
        engine.dispose()
    return 0
