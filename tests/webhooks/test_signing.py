"""Standard Webhooks signing: what we sign, the reference package verifies; what it signs, we verify."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from webhooks import signing

BODY = '{"type":"case.created","timestamp":"2026-12-01T09:00:00+00:00","data":{"case_number":"MA-2026-00001"}}'


def test_new_secret_is_whsec_with_at_least_24_random_bytes() -> None:
    a, b = signing.new_secret(), signing.new_secret()
    assert a.startswith("whsec_") and a != b
    assert len(base64.b64decode(a[len("whsec_"):])) >= 24
    assert signing.is_secret(a) and not signing.is_secret("whsec_c2hvcnQ=") and not signing.is_secret("abc")


def test_signed_headers_verify_with_the_standardwebhooks_package() -> None:
    secret, now = signing.new_secret(), datetime.now(UTC)
    headers = signing.signed_headers([secret], "evt_1", now, BODY)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(BODY, headers)["type"] == "case.created"
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace("00001", "00002"), headers)


def test_rotation_sends_both_signatures_and_either_secret_verifies() -> None:
    new, old, now = signing.new_secret(), signing.new_secret(), datetime.now(UTC)
    headers = signing.signed_headers([new, old], "evt_2", now, BODY)
    assert len(headers["webhook-signature"].split()) == 2
    Webhook(new).verify(BODY, headers)
    Webhook(old).verify(BODY, headers)


def test_verify_accepts_the_packages_signature_and_returns_the_id() -> None:
    secret, now = signing.new_secret(), datetime.now(UTC).replace(microsecond=0)
    sig = Webhook(secret).sign("msg_9", now, BODY)
    headers = {"Webhook-Id": "msg_9", "Webhook-Timestamp": str(int(now.timestamp())), "Webhook-Signature": sig}
    assert signing.verify([signing.new_secret(), secret], headers, BODY.encode(), now=now) == "msg_9"


@pytest.mark.parametrize("change", ["body", "secret", "old", "missing", "garbage"])
def test_verify_refuses_what_does_not_match(change: str) -> None:
    secret, now = signing.new_secret(), datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    headers = signing.signed_headers([secret], "evt_3", now, BODY)
    body, secrets, at = BODY, [secret], now
    if change == "body":
        body = BODY + " "
    elif change == "secret":
        secrets = [signing.new_secret()]
    elif change == "old":
        at = now + timedelta(minutes=6)
    elif change == "missing":
        del headers["webhook-signature"]
    else:
        headers["webhook-signature"] = "v1,not-base64!! v2 ,,"
    with pytest.raises(signing.SignatureError):
        signing.verify(secrets, headers, body, tolerance=timedelta(minutes=5), now=at)
