"""The delivery sweep against real HTTP receivers on 127.0.0.1: signatures, order per case, the retry
schedule, Retry-After, timeouts, 410, dead events and re-sending, the five-day rule, concurrent sweepers."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from engine.casework import cases
from engine.clock import utcnow
from engine.models import AuditRecord, WebhookAttempt, WebhookDelivery, WebhookSubscription
from engine.status import SUBSCRIBABLE_EVENTS, DeliveryStatus, WebhookStatus
from tests.engine.support import intake
from tests.webhooks.receiver import Answer, Receiver
from webhooks import subscriptions
from webhooks.delivery import MAX_ATTEMPTS, deliver_due, parse_retry_after, retry_delay
from webhooks.destinations import NOTHING_ALLOWED, parse_allowed

LOOPBACK = parse_allowed("127.0.0.1")
NO_JITTER = lambda: 0.5  # noqa: E731  (rand() = 0.5 is the schedule's exact delay)


@pytest.fixture
def subscribe(session, personas, clock):  # noqa: ANN001, ANN201
    def make(url: str, events: list[str] | None = None) -> tuple[int, str]:
        sub, secret = subscriptions.create_subscription(session, personas.admin, url, events or list(SUBSCRIBABLE_EVENTS),
                                                        "test", clock.now(), LOOPBACK)
        return sub.id, secret
    return make


@pytest.fixture
def sweep(session_factory, clock):  # noqa: ANN001, ANN201
    def run(**kwargs) -> int:  # noqa: ANN003
        kwargs.setdefault("allowed", LOOPBACK)
        kwargs.setdefault("rand", NO_JITTER)
        kwargs.setdefault("timeout", 5.0)
        return deliver_due(session_factory, clock.now(), **kwargs)
    return run


@pytest.fixture
def open_case(session, env, personas, clock):  # noqa: ANN001, ANN201
    def run(complete_intake: bool = False) -> str:
        case = cases.start_case(session, env, personas.caseworker, "multi_agency", {"summary": "相談"}, None, clock.now())
        if complete_intake:
            (task,) = cases.case_open_tasks(session, case)
            cases.complete_task(session, env, personas.caseworker, task.id, intake(), clock.now())
        return case.id
    return run


def _deliveries(session_factory, sub_id: int) -> list[WebhookDelivery]:  # noqa: ANN001
    with session_factory() as s:
        return list(s.scalars(select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub_id)
                              .order_by(WebhookDelivery.event_id)))


def _sub(session_factory, sub_id: int) -> WebhookSubscription:  # noqa: ANN001
    with session_factory() as s:
        return s.get(WebhookSubscription, sub_id)


def _next_due(session_factory, sub_id: int):  # noqa: ANN001, ANN202
    """When the oldest pending event (the one the others wait for) is tried next."""
    return next(d.next_attempt_at for d in _deliveries(session_factory, sub_id) if d.status == DeliveryStatus.PENDING)


def test_case_events_arrive_signed_in_order_without_personal_data(subscribe, sweep, open_case, clock,
                                                                  session_factory) -> None:  # noqa: ANN001
    clock.set(utcnow())  # the reference package checks timestamps against the real time
    with Receiver() as rx:
        sub_id, secret = subscribe(rx.url)
        case_id = open_case(complete_intake=True)
        assert sweep() == 4
        assert sweep() == 0  # delivered once, not again
    types = [b["type"] for b in rx.bodies()]
    assert types == ["case.created", "task.created", "task.completed", "task.created"]
    for request in rx.requests:
        payload = Webhook(secret).verify(request.body, request.headers)
        assert set(payload) == {"type", "timestamp", "data"}
        assert payload["data"]["case_id"] == case_id and payload["data"]["case_number"].startswith("MA-")
        assert request.headers["webhook-id"] == f"evt_{payload['data']['event_id']}"
    text = b" ".join(r.body for r in rx.requests).decode()
    assert intake()["summary"] not in text and "佐藤" not in text and "hokatsu.sato" not in text
    assert {d.status for d in _deliveries(session_factory, sub_id)} == {DeliveryStatus.DELIVERED}


def test_only_the_events_asked_for_are_sent(subscribe, sweep, open_case) -> None:  # noqa: ANN001
    with Receiver() as rx:
        subscribe(rx.url, ["task.completed"])
        open_case(complete_intake=True)
        sweep()
    assert [b["type"] for b in rx.bodies()] == ["task.completed"]


def test_failing_receiver_is_retried_on_schedule_and_later_events_of_the_case_wait(
        subscribe, sweep, open_case, clock, session_factory) -> None:  # noqa: ANN001
    with Receiver(Answer(500), Answer(500), Answer(200)) as rx:
        sub_id, _ = subscribe(rx.url)
        open_case()
        assert sweep() == 1  # case.created failed; task.created waits behind it
        clock.advance(seconds=4)
        assert sweep() == 0
        clock.advance(seconds=2)
        assert sweep() == 1  # second attempt (5 s later) failed: next in 5 minutes
        clock.advance(seconds=299)
        assert sweep() == 0
        clock.advance(seconds=2)
        assert sweep() == 2  # delivered, and then the event that waited
    assert [b["type"] for b in rx.bodies()] == ["case.created"] * 3 + ["task.created"]
    with session_factory() as s:
        log = list(s.scalars(select(WebhookAttempt).where(WebhookAttempt.subscription_id == sub_id)
                             .order_by(WebhookAttempt.id)))
    assert [(a.attempt, a.status_code) for a in log] == [(1, 500), (2, 500), (3, 200), (1, 200)]
    assert "HTTP 500" in log[0].error and log[2].error is None and all(a.latency_ms is not None for a in log)
    assert _sub(session_factory, sub_id).failing_since is None


def test_retry_after_is_honoured(subscribe, sweep, open_case, clock, session_factory) -> None:  # noqa: ANN001
    with Receiver(Answer(503, {"Retry-After": "120"}), Answer(200)) as rx:
        sub_id, _ = subscribe(rx.url)
        open_case()
        sweep()
        first = _deliveries(session_factory, sub_id)[0]
        assert timedelta(seconds=119) < first.next_attempt_at - clock.now() < timedelta(seconds=125)
        clock.advance(seconds=60)
        assert sweep() == 0
        clock.advance(seconds=61)
        assert sweep() == 2
    assert len(rx.requests) == 3


def test_retry_after_reads_seconds_and_http_dates(clock) -> None:  # noqa: ANN001
    now = clock.now()
    assert parse_retry_after("30", now) == 30
    assert parse_retry_after("Wed, 01 Apr 2026 00:10:00 GMT", now) == 600
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None


def test_a_receiver_that_does_not_answer_in_time_is_retried(subscribe, sweep, open_case, clock,
                                                             session_factory) -> None:  # noqa: ANN001
    with Receiver(Answer(200, delay=30), Answer(200)) as rx:
        sub_id, _ = subscribe(rx.url, ["case.created"])
        open_case()
        assert sweep(timeout=0.5) == 1
        (delivery,) = _deliveries(session_factory, sub_id)
        assert delivery.status == DeliveryStatus.PENDING and delivery.last_status is None
        assert "timed out" in delivery.last_error
        clock.advance(seconds=6)
        assert sweep(timeout=0.5) == 1
    assert _deliveries(session_factory, sub_id)[0].status == DeliveryStatus.DELIVERED


def test_410_gone_disables_the_subscription(subscribe, sweep, open_case, session_factory, clock) -> None:  # noqa: ANN001
    with Receiver(Answer(410)) as rx:
        sub_id, _ = subscribe(rx.url)
        open_case()
        assert sweep() == 1
        clock.advance(days=1)
        open_case()
        assert sweep() == 0
    assert len(rx.requests) == 1
    sub = _sub(session_factory, sub_id)
    assert sub.status == WebhookStatus.DISABLED and "410" in sub.status_reason
    with session_factory() as s:
        assert s.scalar(select(AuditRecord).where(AuditRecord.action == "webhook.disable")) is not None


def test_after_the_last_attempt_an_event_is_dead_and_can_be_resent(subscribe, sweep, open_case, clock, session,
                                                                   personas, session_factory) -> None:  # noqa: ANN001
    with Receiver(*[Answer(500)] * MAX_ATTEMPTS, Answer(200)) as rx:
        sub_id, _ = subscribe(rx.url)
        open_case()
        assert sweep() == 1
        for _ in range(MAX_ATTEMPTS - 2):
            clock.set(_next_due(session_factory, sub_id))
            assert sweep() == 1
        clock.set(_next_due(session_factory, sub_id))
        assert sweep() == 2  # the last attempt; once dead, the event no longer holds back the next one
        dead, delivered = _deliveries(session_factory, sub_id)
        assert dead.status == DeliveryStatus.DEAD and dead.attempts == MAX_ATTEMPTS
        assert delivered.status == DeliveryStatus.DELIVERED
        subscriptions.resend(session, personas.admin, sub_id, dead.event_id, clock.now())
        assert sweep() == 1
    assert [b["type"] for b in rx.bodies()][-2:] == ["task.created", "case.created"]
    assert {d.status for d in _deliveries(session_factory, sub_id)} == {DeliveryStatus.DELIVERED}
    # the whole schedule (5 s … 24 h) spans a little over three days
    assert timedelta(days=3) < rx_span(session_factory, sub_id) < timedelta(days=3, hours=8)


def rx_span(session_factory, sub_id: int) -> timedelta:  # noqa: ANN001
    with session_factory() as s:
        times = [a.at for a in s.scalars(select(WebhookAttempt).where(WebhookAttempt.subscription_id == sub_id,
                                                                    WebhookAttempt.kind == "case.created"))]
    return times[MAX_ATTEMPTS - 1] - times[0]


def test_a_subscription_failing_for_five_days_is_disabled(subscribe, sweep, open_case, clock,
                                                          session_factory) -> None:  # noqa: ANN001
    with Receiver(Answer(500)) as rx:
        sub_id, _ = subscribe(rx.url)
        open_case()
        sweep()
        for _ in range(40):
            if _sub(session_factory, sub_id).status == WebhookStatus.DISABLED:
                break
            clock.set(_next_due(session_factory, sub_id))
            sweep()
    sub = _sub(session_factory, sub_id)
    assert sub.status == WebhookStatus.DISABLED and "5" in sub.status_reason
    assert clock.now() - sub.failing_since >= timedelta(days=5)
    with session_factory() as s:
        record = s.scalar(select(AuditRecord).where(AuditRecord.action == "webhook.disable"))
    assert record.detail["subscription"] == sub_id
    assert len(rx.requests) > MAX_ATTEMPTS


def test_loopback_is_refused_without_an_allowed_hosts_entry(subscribe, sweep, open_case, session, personas, clock,
                                                            session_factory) -> None:  # noqa: ANN001
    with Receiver() as rx:
        with pytest.raises(subscriptions.Invalid) as refused:
            subscriptions.create_subscription(session, personas.admin, rx.url, ["case.created"], None, clock.now(),
                                              NOTHING_ALLOWED)
        assert "url" in refused.value.fields and "loopback" in refused.value.fields["url"]
        sub_id, _ = subscribe(rx.url, ["case.created"])  # allowed then; not any more at delivery time
        open_case()
        assert sweep(allowed=NOTHING_ALLOWED) == 1
    assert rx.requests == []
    (delivery,) = _deliveries(session_factory, sub_id)
    assert delivery.status == DeliveryStatus.PENDING and "destination refused" in delivery.last_error


def test_rotation_signs_with_both_secrets_during_the_grace_period(subscribe, sweep, open_case, session, personas,
                                                                  clock) -> None:  # noqa: ANN001
    clock.set(utcnow())
    with Receiver() as rx:
        sub_id, old = subscribe(rx.url, ["case.created"])
        _, new = subscriptions.rotate_secret(session, personas.admin, sub_id, clock.now(), timedelta(hours=1))
        open_case()
        sweep()
    (request,) = rx.requests
    assert len(request.headers["webhook-signature"].split()) == 2
    Webhook(new).verify(request.body, request.headers)
    Webhook(old).verify(request.body, request.headers)


def test_ping_goes_to_its_subscription_only(subscribe, sweep, session, personas, clock) -> None:  # noqa: ANN001
    with Receiver() as a, Receiver() as b:
        sub_a, _ = subscribe(a.url)
        subscribe(b.url)
        subscriptions.ping(session, personas.admin, sub_a, clock.now())
        assert sweep() == 1
    assert [x["type"] for x in a.bodies()] == ["webhook.ping"] and b.requests == []
    assert a.bodies()[0]["data"]["subscription_id"] == sub_a


def test_paused_subscription_holds_its_events_until_resumed(subscribe, sweep, open_case, session, personas, clock,
                                                            session_factory) -> None:  # noqa: ANN001
    with Receiver() as rx:
        sub_id, _ = subscribe(rx.url)
        subscriptions.change_subscription(session, personas.admin, sub_id, clock.now(), LOOPBACK, status="paused")
        open_case()
        assert sweep() == 0
        subscriptions.change_subscription(session, personas.admin, sub_id, clock.now(), LOOPBACK, status="active")
        assert sweep() == 2
    assert [b["type"] for b in rx.bodies()] == ["case.created", "task.created"]


def test_several_sweepers_at_once_send_every_event_once_in_order_per_case(subscribe, open_case, session_factory,
                                                                         clock) -> None:  # noqa: ANN001
    with Receiver(Answer(200, delay=0.01)) as rx:
        subscribe(rx.url)
        case_ids = [open_case(complete_intake=True) for _ in range(6)]
        errors: list[BaseException] = []

        def run(n: int) -> None:
            try:
                while deliver_due(session_factory, clock.now(), allowed=LOOPBACK, worker=f"w{n}", limit=5):
                    pass
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert not errors
    ids = Counter(r.headers["webhook-id"] for r in rx.requests)
    assert len(ids) == 6 * 4 and set(ids.values()) == {1}
    per_case = defaultdict(list)
    for body in rx.bodies():
        per_case[body["data"]["case_id"]].append(body["data"]["event_id"])
    assert set(per_case) == set(case_ids)
    assert all(seq == sorted(seq) for seq in per_case.values())


def test_a_redirect_is_not_followed_and_counts_as_a_failure(subscribe, sweep, open_case, session_factory) -> None:  # noqa: ANN001
    with Receiver(Answer(302, {"Location": "http://169.254.169.254/latest/meta-data"})) as rx:
        sub_id, _ = subscribe(rx.url, ["case.created"])
        open_case()
        assert sweep() == 1
    assert len(rx.requests) == 1
    (delivery,) = _deliveries(session_factory, sub_id)
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_status == 302
    assert "HTTP 302 to http://169.254.169.254" in delivery.last_error


def test_retry_delays_follow_the_schedule_with_jitter_and_bounded_retry_after(clock) -> None:  # noqa: ANN001
    now = clock.now()
    assert retry_delay(1, None, now, lambda: 0.0) == timedelta(seconds=5 * 0.85)
    assert retry_delay(1, None, now, lambda: 1.0) == timedelta(seconds=5 * 1.15)
    assert [retry_delay(n, None, now, NO_JITTER).total_seconds() for n in range(1, MAX_ATTEMPTS)] == [
        5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
    assert retry_delay(MAX_ATTEMPTS, None, now, NO_JITTER) is None
    assert retry_delay(1, "999999", now, NO_JITTER) == timedelta(days=1)  # a receiver cannot park us for longer
    assert retry_delay(5, "1", now, NO_JITTER) == timedelta(hours=5)  # nor make us retry sooner than the schedule
