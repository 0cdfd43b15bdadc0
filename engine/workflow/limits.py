"""Bounds on what clients may send: integer ids and counts, and how deeply JSON data may nest.

Client data is stored as JSON and later loaded again by the workflow engine, which walks it
recursively: data nested hundreds of levels deep would be accepted once and then make its case
impossible to open. So data deeper than MAX_DEPTH is refused before anything is stored, by
every command that stores client data; the web layer also refuses request bodies deeper than
MAX_BODY_DEPTH before parsing them (Python's json parser itself recurses)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from engine.errors import Invalid

# Integer ids and counts fit a PostgreSQL `integer` (and SQLite's 64-bit integers).
MAX_INT = 2**31 - 1
# Containers (objects, arrays) inside one another, counting `data` itself as the first level.
MAX_DEPTH = 32
# A request body wraps `data` in an object or two; anything deeper than this is refused unread.
MAX_BODY_DEPTH = 64

# Instants a search may name: converting anything near year 1 or 9999 between time zones overflows.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)

_JSON_SIGNIFICANT = re.compile(r'[\[\]{}"\\]')


def check_int(value: Any, field: str, minimum: int = 0, maximum: int = MAX_INT) -> int:
    """`value` if it is an integer in [minimum, maximum]; else Invalid naming `field`."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise Invalid(f"{field} は {minimum} から {maximum} までの整数です / {field} must be an integer "
                      f"from {minimum} to {maximum}", {field: f"integer from {minimum} to {maximum}"})
    return value


def check_instant(value: datetime | None, field: str) -> datetime | None:
    """`value` (timezone-aware, or None) if between EARLIEST and LATEST; else Invalid naming `field`."""
    if value is None:
        return None
    try:
        # Comparing converts to UTC, which itself overflows next to year 1 and 9999.
        within = value.tzinfo is not None and EARLIEST <= value <= LATEST
    except OverflowError:
        within = False
    if not within:
        raise Invalid(f"{field} は {EARLIEST.year} 年から {LATEST.year} 年までのタイムゾーン付き日時です / {field} must "
                      f"be a date-time with a time zone between {EARLIEST.year} and {LATEST.year}",
                      {field: f"date-time between {EARLIEST.year} and {LATEST.year}"})
    return value


NUL = "contains a NUL character"
SURROGATE = "contains a lone surrogate (not valid Unicode)"
NOT_FINITE = "is not a finite number"
_SURROGATE = re.compile("[\ud800-\udfff]")


def _text_fault(text: str) -> str | None:
    if "\x00" in text:
        return NUL
    return SURROGATE if _SURROGATE.search(text) else None


def unstorable_at(value: Any, field: str = "") -> tuple[str, str] | None:
    """(path, what is wrong) of the first value parsed JSON may hold that no database can store
    as JSON: a string (keys included) with a NUL character or a lone surrogate (Python's parser
    accepts "\\ud800"), or a float that is NaN or infinite (it accepts NaN and Infinity, and
    1e999 overflows to inf); None if there is none. Iterative."""
    stack = [(value, field)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            fault = _text_fault(item)
            if fault:
                return path or "body", fault
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                return path or "body", NOT_FINITE
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else str(key)
                fault = _text_fault(key) if isinstance(key, str) else None
                if fault:
                    return path or "body", fault
                stack.append((child, child_path))
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{path}.{i}" if path else str(i)) for i, child in enumerate(item))
    return None


def depth_exceeding(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` nests containers more than `limit` deep (`value` itself is level 1).
    Iterative, so that any depth is measured without recursion."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if level > limit:
            return True
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list | tuple))
    return False


def check_depth(data: Any, field: str = "data", limit: int = MAX_DEPTH) -> None:
    """Invalid naming the first entry of `data` (`data.x`) that nests deeper than `limit`
    levels, `data` itself counting as the first."""
    if not depth_exceeding(data, limit):
        return
    entries = data.items() if isinstance(data, dict) else enumerate(data)
    name = next((f"{field}.{key}" for key, child in entries if depth_exceeding(child, limit - 1)), field)
    raise Invalid(f"入れ子が深すぎます（{limit} 段まで）/ {name} is nested deeper than {limit} levels",
                  {name: f"nested deeper than {limit} levels"})


def json_text_depth_exceeds(text: str | bytes, limit: int = MAX_BODY_DEPTH) -> bool:
    """Whether JSON text nests arrays and objects more than `limit` deep, read without parsing
    (and without recursion): brackets inside strings do not count."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if text.count("[") + text.count("{") <= limit:
        return False
    depth, in_string, escaped_at = 0, False, -1
    for match in _JSON_SIGNIFICANT.finditer(text):
        char, at = match.group(), match.start()
        if in_string:
            if at == escaped_at:
                continue
            if char == "\\":
                escaped_at = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False
