"""Standard Webhooks signatures (https://www.standardwebhooks.com), for outgoing and incoming webhooks.

A message is signed with HMAC-SHA256 over ``"{webhook-id}.{webhook-timestamp}.{body}"`` and sent as
``webhook-signature: v1,<base64>``; several signatures are separated by spaces (during a secret
rotation both the new and the old secret sign). Secrets are ``whsec_`` + base64 of random bytes.
The HMAC itself is the `standardwebhooks` package's, so what we send is what its users verify.

    secret = new_secret()
    headers = signed_headers([secret], msg_id, now, body)     # outgoing
    verify([secret, old_secret], request_headers, body, tolerance=timedelta(minutes=5), now=now)  # incoming
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets as _random
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from standardwebhooks.webhooks import Webhook

PREFIX = "whsec_"
SECRET_BYTES = 32  # the specification asks for 24 to 64
DEFAULT_TOLERANCE = timedelta(minutes=5)


class SignatureError(Exception):
    """The headers are missing or malformed, the timestamp is outside the tolerance, or no
    signature matches any of the secrets. The message says which, never the expected value."""


def new_secret() -> str:
    """A fresh ``whsec_`` secret of 32 random bytes."""
    return PREFIX + base64.b64encode(_random.token_bytes(SECRET_BYTES)).decode()


def is_secret(value: object) -> bool:
    """A ``whsec_`` secret whose key decodes to 24–64 bytes."""
    if not isinstance(value, str) or not value.startswith(PREFIX):
        return False
    try:
        key = base64.b64decode(value[len(PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        return False
    return 24 <= len(key) <= 64


def _timestamp(when: datetime | int) -> int:
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise ValueError("naive datetime given; signatures use UTC")
        return int(when.timestamp())
    return int(when)


def sign(secret: str, msg_id: str, timestamp: datetime | int, body: bytes | str) -> str:
    """One signature, ``v1,<base64>``, of `body` with `secret` for this id and timestamp (a UTC
    datetime or Unix seconds)."""
    text = body.decode() if isinstance(body, bytes) else body
    when = datetime.fromtimestamp(_timestamp(timestamp), UTC)
    return Webhook(secret).sign(msg_id, when, text)


def signed_headers(secrets: Iterable[str], msg_id: str, timestamp: datetime | int, body: bytes | str) -> dict[str, str]:
    """The three headers of a message, signed with every secret given (new first during a rotation)."""
    signatures = " ".join(sign(s, msg_id, timestamp, body) for s in secrets)
    return {"webhook-id": msg_id, "webhook-timestamp": str(_timestamp(timestamp)), "webhook-signature": signatures}


def verify(secrets: Iterable[str], headers: Mapping[str, str], body: bytes | str,
           tolerance: timedelta = DEFAULT_TOLERANCE, now: datetime | None = None) -> str:
    """Check a signed message: one of its ``v1`` signatures must match one of `secrets`, and its
    timestamp must lie within `tolerance` of `now` (default: the current time). Returns the
    webhook-id (for the caller's replay check); raises SignatureError otherwise."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, given = lower.get("webhook-id"), lower.get("webhook-timestamp"), lower.get("webhook-signature")
    if not (msg_id and stamp and given):
        raise SignatureError("webhook-id, webhook-timestamp and webhook-signature are required")
    try:
        seconds = int(stamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not a Unix time in seconds") from None
    now = now or datetime.now(UTC)
    if abs(now.timestamp() - seconds) > tolerance.total_seconds():
        raise SignatureError("webhook-timestamp is outside the allowed tolerance")
    offered: list[bytes] = []
    for part in given.split():
        version, _, value = part.partition(",")
        if version != "v1":
            continue
        try:
            offered.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    for secret in secrets:
        if not secret:
            continue
        expected = base64.b64decode(sign(secret, msg_id, seconds, body).split(",", 1)[1])
        if any(hmac.compare_digest(expected, sig) for sig in offered):
            return msg_id
    raise SignatureError("no signature matches")
