"""Verifying incoming Standard Webhooks (https://www.standardwebhooks.com/): the signature
over "{webhook-id}.{webhook-timestamp}.{body}" with the source's secret, and a timestamp
within 5 minutes of our clock (ours, not the library's wall clock, so the check follows the
engine's clock). Plain functions: no Flask, no database.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from standardwebhooks.webhooks import Webhook

TOLERANCE = timedelta(minutes=5)
MAX_ID = 200


class VerificationFailed(Exception):
    """Missing or bad headers, a stale timestamp, or no matching signature."""


@dataclass(frozen=True)
class Verified:
    webhook_id: str
    timestamp: datetime


def verify(secret: str, body: bytes, headers: Mapping[str, str], now: datetime) -> Verified:
    """Check one request's headers and body against `secret`; raise VerificationFailed if it does not hold."""
    h = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, signatures = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    if not (msg_id and stamp and signatures):
        raise VerificationFailed("webhook-id, webhook-timestamp and webhook-signature are required")
    if len(msg_id) > MAX_ID:
        raise VerificationFailed("webhook-id is too long")
    try:
        timestamp = datetime.fromtimestamp(int(stamp), tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise VerificationFailed("webhook-timestamp is not a unix time in seconds") from None
    if abs(now - timestamp) > TOLERANCE:
        raise VerificationFailed("webhook-timestamp is more than 5 minutes from now")
    try:
        text = body.decode("utf-8")
        hook = Webhook(secret)
    except (UnicodeDecodeError, binascii.Error, ValueError):
        raise VerificationFailed("body is not UTF-8, or the source's secret is unusable") from None
    expected = base64.b64decode(hook.sign(msg_id, timestamp, text).split(",", 1)[1])
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, given):
            return Verified(msg_id, timestamp)
    raise VerificationFailed("no matching signature")


def sign(secret: str, webhook_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    """The headers a sender sets (tests and `tsunagu` tools use it)."""
    return {"webhook-id": webhook_id, "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": Webhook(secret).sign(webhook_id, timestamp, body)}
