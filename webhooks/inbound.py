"""Verifying incoming Standard Webhooks from a registered source: a signature by the source's
secret (`webhooks.signing`, shared with outgoing delivery) and a timestamp within 5 minutes
of our clock (ours, not the library's wall clock, so the check follows the engine's clock).
Plain functions: no Flask, no database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from webhooks.signing import SignatureError, signed_headers
from webhooks.signing import verify as verify_signature

MAX_ID = 200


class VerificationFailed(Exception):
    """Missing or bad headers, a stale timestamp, or no matching signature."""


@dataclass(frozen=True)
class Verified:
    webhook_id: str


def verify(secret: str, body: bytes, headers: Mapping[str, str], now: datetime) -> Verified:
    """Check one request's headers and body against `secret`; raise VerificationFailed if it does not hold."""
    lower = {k.lower(): v for k, v in headers.items()}
    if len(lower.get("webhook-id") or "") > MAX_ID:
        raise VerificationFailed("webhook-id is too long")
    try:
        text = body.decode("utf-8")
        msg_id = verify_signature([secret], lower, text, now=now)  # within signing.DEFAULT_TOLERANCE (5 min)
    except UnicodeDecodeError:
        raise VerificationFailed("body is not UTF-8") from None
    except (SignatureError, ValueError, OverflowError) as exc:  # a secret that does not decode: ValueError
        raise VerificationFailed(str(exc)) from None
    return Verified(msg_id)


def sign(secret: str, webhook_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    """The headers a sender sets (tests and `tsunagu` tools use it)."""
    return signed_headers([secret], webhook_id, timestamp, body)
