"""The one source of "now".

Domain functions take `now` as an argument; callers get it from a `Clock`. SpiffWorkflow
reads `datetime.now()` itself when it computes and checks timer due times, so while the
engine drives a workflow it pins Spiff's notion of now to the caller's `now` through
`spiff_time` (a context variable, so threads do not see each other's clocks).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone

from SpiffWorkflow.bpmn.specs.event_definitions import timer as _spiff_timer

_pinned: contextvars.ContextVar[datetime | None] = contextvars.ContextVar("tsunagu_now", default=None)


# The city's own time (Japan has no daylight saving): days, months and fiscal years of
# what the city counts begin at its midnight.
CITY_TZ = timezone(timedelta(hours=9), "JST")


def city_today(now: datetime) -> date:
    return now.astimezone(CITY_TZ).date()


def city_midnight(day: date) -> datetime:
    """The UTC instant the city's day `day` begins."""
    return datetime(day.year, day.month, day.day, tzinfo=CITY_TZ).astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Clock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return utcnow()


class FrozenClock(Clock):
    """A clock that moves only when told to (tests, demos, benchmarks)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        with self._lock:
            self._now = self._now + (delta or timedelta(**kwargs))
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when


class _SpiffDatetime(datetime):
    """Stands in for `datetime` inside Spiff's timer module."""

    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        pinned = _pinned.get()
        if pinned is None:
            return datetime.now(tz)
        return pinned.astimezone(tz) if tz else pinned.replace(tzinfo=None)


_spiff_timer.datetime = _SpiffDatetime  # type: ignore[misc]


@contextlib.contextmanager
def spiff_time(now: datetime) -> Iterator[None]:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    token = _pinned.set(now)
    try:
        yield
    finally:
        _pinned.reset(token)
