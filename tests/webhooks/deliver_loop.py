"""A delivery process for the multi-process test: `python -m tests.webhooks.deliver_loop READY GO SECONDS`.

It runs the product's delivery sweep (`webhooks.worker.sweep`, what `tsunagu deliver` and `tsunagu
worker` call) with the settings from the environment, as a deployment would; nothing is patched.
It writes READY once imported, waits for GO so that every process starts sweeping at once, then
sweeps until no event is left to fan out or to deliver, and prints how many attempts it made.
After SECONDS it gives up with exit status 3, so a hang fails the test instead of stalling it.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from sqlalchemy import func, select

from engine.clock import Clock
from engine.models import OutboxEvent, WebhookDelivery
from engine.ops.db import make_engine, make_session_factory
from engine.settings import Settings
from engine.status import DeliveryStatus
from webhooks import worker


def left(factory) -> int:  # noqa: ANN001
    with factory() as s:
        unfanned = s.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.delivered_at.is_(None)))
        pending = s.scalar(select(func.count()).select_from(WebhookDelivery)
                           .where(WebhookDelivery.status == DeliveryStatus.PENDING))
        return (unfanned or 0) + (pending or 0)


def main(ready: Path, go: Path, seconds: float) -> int:
    settings = Settings()
    factory = make_session_factory(make_engine(settings.database_url))
    pause = threading.Event()
    deadline = time.monotonic() + seconds
    ready.touch()
    while not go.exists():
        if time.monotonic() > deadline:
            print("never told to start", file=sys.stderr)
            return 3
        pause.wait(0.02)
    made = 0
    while True:
        n = worker.sweep(factory, settings, Clock())
        made += n
        remaining = left(factory)
        if not remaining:
            break
        if time.monotonic() > deadline:
            print(f"gave up with {remaining} event(s) left", file=sys.stderr)
            return 3
        if not n:
            pause.wait(0.05)  # the rest waits for a retry that is not due yet, or for another process
    print(made)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])))
