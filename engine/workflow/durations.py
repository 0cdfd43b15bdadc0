"""Periods as caseworkers write them (「2週間」「1か月」「１４日」「半月」) and as the engine's
timers read them (ISO 8601, `P14D`): `to_iso` turns either into the ISO form, so a form's
`duration` field takes what a person would type and the workflow gets what Spiff runs."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from engine.workflow.specs import is_duration

# The unit words, after NFKC (which leaves ヶ/ヵ/ケ/カ as they are).
_UNITS = {"日": "D", "週": "W", "月": "M", "年": "Y"}
_MONTH_MARKS = "かカヵヶケ箇个"
_PATTERN = re.compile(rf"^(?P<n>[0-9〇一二三四五六七八九十百]+)\s*(?:[{_MONTH_MARKS}]\s*)?(?P<unit>日|週|月|年)(?:間)?$")
_HALF = {"半月": "P15D", "半年": "P6M"}
_KANJI_DIGITS = {c: i for i, c in enumerate("〇一二三四五六七八九")}
MAX_AMOUNT = 9999
# What a caseworker is told when a period is not understood; no ISO 8601 on the page.
HINT = ("期間は「14日」「2週間」「1か月」「3か月」のように、数と単位（日・週間・か月・年）で入力してください / "
        "Enter a period as a number and a unit, e.g. 14日, 2週間, 1か月 (or ISO 8601 such as P14D)")


def _number(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    if not all(c in _KANJI_DIGITS or c in "十百" for c in text):
        return None
    total, current = 0, 0
    for c in text:
        if c in _KANJI_DIGITS:
            current = current * 10 + _KANJI_DIGITS[c] if current else _KANJI_DIGITS[c]
        else:
            total += (current or 1) * (10 if c == "十" else 100)
            current = 0
    return total + current


def to_iso(value: Any) -> str | None:
    """The ISO 8601 duration `value` means (`P2W` for 「2週間」), or None if it means none."""
    if not isinstance(value, str):
        return None
    text = unicodedata.normalize("NFKC", value).strip().replace(" ", "")
    if not text or len(text) > 32:
        return None
    if text.upper().startswith("P"):
        return text.upper() if is_duration(text) else None
    if text in _HALF:
        return _HALF[text]
    m = _PATTERN.match(text)
    if m is None:
        return None
    unit = m.group("unit")
    # A bare 「2月」 is February, not two months: a month needs its counter (か月, ヶ月 …).
    if unit == "月" and not any(c in text for c in _MONTH_MARKS):
        return None
    n = _number(m.group("n"))
    if n is None or not 1 <= n <= MAX_AMOUNT:
        return None
    return f"P{n}{_UNITS[unit]}"
