"""Reports over many cases, read-only: for supervisors the stuck-case report (`stuck`), the load per step
of a process for the heatmap on its diagram (`heatmap`), and the work per group and per worker
(`workload`); for the city the scheme's figures (`statistics`), never personal data.

Who may read them: supervisors, the coordination lead and administrators; anyone else is
refused (Forbidden). Every row and every count covers only cases the reader may see
(`engine.security.access.visible_cases_clause`), so a report never tells of a case its page would hide.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

from engine.errors import Forbidden, Invalid
from engine.models import User
from engine.status import Role
from engine.workflow.limits import check_instant

READERS = frozenset({Role.SUPERVISOR, Role.COORDINATION_LEAD, Role.ADMIN})
# The city's days and months (a day given as YYYY-MM-DD, "this month") are Japan's.
JST = timezone(timedelta(hours=9), "JST")


def may_read(actor: User) -> bool:
    return bool(READERS & set(actor.roles))


def require_reader(actor: User) -> None:
    if not may_read(actor):
        raise Forbidden("集計を見られるのはスーパーバイザー、連携責任者、管理者です / only supervisors, the coordination "
                        "lead and administrators may read the reports")


def parse_instant(value: Any, field: str, *, end_of_day: bool = False) -> datetime | None:
    """A date-time with its time zone, or a day YYYY-MM-DD (Japan time: its start, or with
    `end_of_day` the start of the next day, so a period's last day is included)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return check_instant(value, field)
    if not isinstance(value, str):
        raise _bad_instant(field)
    text = value.strip()
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").date()
            start = datetime.combine(day, time(), JST)
            return check_instant((start + timedelta(days=1) if end_of_day else start).astimezone(UTC), field)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise _bad_instant(field) from None
    if parsed.tzinfo is None:
        raise _bad_instant(field)
    return check_instant(parsed, field)


def _bad_instant(field: str) -> Invalid:
    return Invalid(f"{field} は YYYY-MM-DD かタイムゾーン付きの日時（ISO 8601）です / {field} must be a day YYYY-MM-DD "
                   f"or an ISO 8601 date-time with a time zone", {field: "YYYY-MM-DD or ISO 8601 date-time with zone"})


def month_start(now: datetime) -> datetime:
    """The start of `now`'s month in Japan, in UTC."""
    local = now.astimezone(JST)
    return datetime(local.year, local.month, 1, tzinfo=JST).astimezone(UTC)
