"""A real server (`tsunagu serve --workers 1`: gunicorn and its sweeper process) killed with SIGKILL
while a webhook is on the wire, then started again: every event is delivered, none lost, in order
per case; only the interrupted one may arrive twice (at least once), with the same webhook-id."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.casework import cases
from engine.clock import utcnow
from engine.models import WebhookDelivery
from engine.status import SUBSCRIBABLE_EVENTS, DeliveryStatus
from tests.engine.support import intake
from tests.faults.support import Server, wait_for
from tests.webhooks.receiver import Answer, Receiver
from webhooks import subscriptions
from webhooks.destinations import parse_allowed

pytestmark = pytest.mark.slow
CASES = 3


def _statuses(factory: sessionmaker[Session]) -> list[str]:
    with factory() as s:
        return list(s.scalars(select(WebhookDelivery.status)))


def test_server_killed_mid_delivery_loses_nothing_and_keeps_order(session, session_factory, env, personas, clock,
                                                                  database_url: str, tmp_path: Path) -> None:  # noqa: ANN001
    clock.set(utcnow())
    with Receiver(Answer(200, delay=60), Answer(200)) as rx:  # the first request hangs until the kill
        subscriptions.create_subscription(session, personas.admin, rx.url, list(SUBSCRIBABLE_EVENTS), None,
                                          clock.now(), parse_allowed("127.0.0.1"))
        case_ids = []
        for _ in range(CASES):
            case = cases.start_case(session, env, personas.caseworker, "multi_agency", {"summary": "相談"}, None, clock.now())
            (task,) = cases.case_open_tasks(session, case)
            cases.complete_task(session, env, personas.caseworker, task.id, intake(), clock.now())
            case_ids.append(case.id)
        server = Server(database_url, tmp_path / "server.log", workers=1, env={
            "TSUNAGU_WEBHOOK_ALLOWED_HOSTS": f"127.0.0.1:{rx.port}", "TSUNAGU_WEBHOOK_TIMEOUT": "2",
            "TSUNAGU_WEBHOOK_INTERVAL": "0.2"})
        token = personas.tokens["admin"]
        server.start(token)
        try:
            wait_for(lambda: rx.requests, 60, "the first delivery to reach the receiver")
            server.kill()
            interrupted = rx.requests[0].headers["webhook-id"]
            server.start(token)
            wait_for(lambda: set(_statuses(session_factory)) == {DeliveryStatus.DELIVERED}, 120,
                     "every event to be delivered after the restart")
        finally:
            assert server.stop() == 0, server.tail()
    ids = [r.headers["webhook-id"] for r in rx.requests]
    assert len(set(ids)) == CASES * 4 == len(_statuses(session_factory))
    assert ids.count(interrupted) == 2 and len(ids) == CASES * 4 + 1
    per_case = defaultdict(list)
    for body in rx.bodies():
        if body["data"]["event_id"] not in per_case[body["data"]["case_id"]]:
            per_case[body["data"]["case_id"]].append(body["data"]["event_id"])
    assert set(per_case) == set(case_ids) and all(seq == sorted(seq) for seq in per_case.values())
