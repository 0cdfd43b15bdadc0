"""Four delivery processes against one database and one real receiver on 127.0.0.1: every event
is delivered; a webhook-id arrives again only after a non-2xx answer (a success is never repeated);
each case's events arrive in order; the attempt log is exactly what the receiver saw.

The receiver answers 500 to the first attempt of every seventh event, so the product's own retry
schedule (the first retry 5 s later, with jitter) runs while the later events of that case wait.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from engine.casework import cases
from engine.clock import utcnow
from engine.models import OutboxEvent, WebhookAttempt, WebhookDelivery
from engine.settings import ROOT
from engine.status import SUBSCRIBABLE_EVENTS, DeliveryStatus
from tests.engine.support import ASSESSMENT, Driver, intake, meeting, plan
from tests.faults.support import cli_env, wait_for
from tests.webhooks.receiver import Answer, Received, Receiver
from webhooks import subscriptions
from webhooks.destinations import parse_allowed

pytestmark = pytest.mark.slow

PROCESSES = 4
CASES = 20
FAIL_FIRST_EVERY = 7
GIVE_UP_AFTER = 90  # seconds; each process exits with an error after this, and the test stops waiting


def _event_id(request: Received) -> int:
    return int(request.headers["webhook-id"].removeprefix("evt_"))


def _first_attempt_of_some_fails(request: Received, earlier: list[Received]) -> Answer:
    retry = any(r.headers["webhook-id"] == request.headers["webhook-id"] for r in earlier)
    return Answer(500) if _event_id(request) % FAIL_FIRST_EVERY == 0 and not retry else Answer(200)


def _make_events(driver: Driver, personas) -> list[str]:  # noqa: ANN001
    """Cases taken from intake to the support meeting through the engine: a dozen events each."""
    p, case_ids = personas, []
    for _ in range(CASES):
        case_id = driver.start(p.caseworker)
        driver.complete_step(p.caseworker, case_id, "intake", intake())
        for step, data in (("assessment", ASSESSMENT), ("plan", plan()), ("meeting", meeting("choju-anshin"))):
            task = driver.task(case_id, step)
            with driver.factory() as s:
                cases.claim_task(s, driver.env, driver.user(s, p.secretariat), task.id, driver.clock.now())
            driver.complete(p.secretariat, task.id, data)
        case_ids.append(case_id)
    return case_ids


def test_four_delivery_processes_send_each_event_once_in_order_per_case(
        session, session_factory, env, personas, clock, database_url: str, tmp_path: Path) -> None:  # noqa: ANN001
    # The processes use the real clock; the events and the subscription are made at its time.
    clock.set(utcnow())
    driver = Driver(session_factory, env, clock)
    with Receiver(answer_for=_first_attempt_of_some_fails) as rx:
        sub, secret = subscriptions.create_subscription(session, personas.admin, rx.url, list(SUBSCRIBABLE_EVENTS), None,
                                                   clock.now(), parse_allowed("127.0.0.1"))
        case_ids = _make_events(driver, personas)
        with session_factory() as s:
            events = {e.id: e.case_id for e in s.scalars(select(OutboxEvent).order_by(OutboxEvent.id))}
        assert len(events) >= 200 and set(events.values()) == set(case_ids)

        go = tmp_path / "go"
        ready = [tmp_path / f"ready-{n}" for n in range(PROCESSES)]
        procs = [subprocess.Popen(
            [sys.executable, "-m", "tests.webhooks.deliver_loop", str(ready[n]), str(go), str(GIVE_UP_AFTER)], cwd=ROOT,
            env=cli_env(database_url, TSUNAGU_WEBHOOK_ALLOWED_HOSTS="127.0.0.1", TSUNAGU_WEBHOOK_TIMEOUT="5"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(PROCESSES)]
        try:
            def all_ready() -> bool:
                for proc in procs:
                    if proc.poll() is not None:
                        raise AssertionError(f"a delivery process exited early: {proc.communicate()[1][-3000:]}")
                return all(r.exists() for r in ready)

            wait_for(all_ready, 60, "the delivery processes to start")
            t0 = time.monotonic()
            go.touch()
            outputs = [proc.communicate(timeout=GIVE_UP_AFTER + 30) for proc in procs]
            elapsed = time.monotonic() - t0
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(30)
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    made_by = [int(out.split()[-1]) for out, _ in outputs]
    print(f"\n{PROCESSES} delivery processes made {sum(made_by)} attempts for {len(events)} events in "
          f"{elapsed:.1f}s, per process {made_by}")
    assert all(n > 0 for n in made_by), f"some process got no work: {made_by}"

    requests = list(rx.requests)
    with session_factory() as s:
        deliveries = list(s.scalars(select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub.id)))
        log = list(s.scalars(select(WebhookAttempt).where(WebhookAttempt.subscription_id == sub.id)
                             .order_by(WebhookAttempt.id)))

    # Every event delivered, exactly one delivery row each.
    assert sorted(d.event_id for d in deliveries) == sorted(events)
    assert {d.status for d in deliveries} == {DeliveryStatus.DELIVERED}
    assert {_event_id(r) for r in requests} == set(events)
    for r in requests:  # signed by whichever process sent it, with the subscription's secret
        assert Webhook(secret).verify(r.body, r.headers)["data"]["event_id"] == _event_id(r)

    # Each event's attempts: non-2xx answers, then one 200, then nothing more.
    answers = defaultdict(list)
    for r in requests:
        answers[_event_id(r)].append(r.status)
    failed_first = {e for e in events if e % FAIL_FIRST_EVERY == 0}
    assert {e: a for e, a in answers.items() if a != [200]} == {e: [500, 200] for e in failed_first}
    assert sum(made_by) == len(requests) == len(events) + len(failed_first)

    # Per case, each request either retries the event just refused or, after a 200, is the case's next event.
    per_case = defaultdict(list)
    for r in requests:
        per_case[r.json["data"]["case_id"]].append((_event_id(r), r.status))
    for case_id, seen in per_case.items():
        expected = sorted(e for e, c in events.items() if c == case_id)
        position = 0
        for n, (event_id, _status) in enumerate(seen):
            if n:
                previous_event, previous_status = seen[n - 1]
                position += previous_status == 200
                assert previous_status == 200 or event_id == previous_event, f"{case_id}: {seen}"
            assert event_id == expected[position], f"{case_id}: out of order {seen}"
        assert position == len(expected) - 1 and seen[-1][1] == 200

    # The attempt log says what the receiver saw, attempt by attempt.
    logged = Counter((a.event_id, a.attempt, a.status_code) for a in log)
    received = Counter()
    for event_id, statuses in answers.items():
        received.update((event_id, n, status) for n, status in enumerate(statuses, start=1))
    assert logged == received
    assert all(a.latency_ms is not None for a in log)
    assert all((a.error is None) == (a.status_code == 200) for a in log)

