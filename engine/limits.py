"""Bounds on what clients may send: integer ids and counts, and how deeply JSON data may nest.

Client data is stored as JSON and later loaded again by the workflow engine, which walks it
recursively: data nested hundreds of levels deep would be accepted once and then make its case
impossible to open. So data deeper than MAX_DEPTH is refused before anything is stored, by
every command that stores client data; the web layer also refuses request bodies deeper than
MAX_BODY_DEPTH before parsing them (Python's json parser itself recurses)."""

from __future__ import annotations

import re
from typing import Any

from engine.errors import Invalid

# Integer ids and counts fit a PostgreSQL `integer` (and SQLite's 64-bit integers).
MAX_INT = 2**31 - 1
# Containers (objects, arrays) inside one another, counting `data` itself as the first level.
MAX_DEPTH = 32
# A request body wraps `data` in an object or two; anything deeper than this is refused unread.
MAX_BODY_DEPTH = 64

_JSON_SIGNIFICANT = re.compile(r'[\[\]{}"\\]')


def check_int(value: Any, field: str, minimum: int = 0, maximum: int = MAX_INT) -> int:
    """`value` if it is an integer in [minimum, maximum]; else Invalid naming `field`."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise Invalid(f"{field} は {minimum} から {maximum} までの整数です / {field} must be an integer "
                      f"from {minimum} to {maximum}", {field: f"integer from {minimum} to {maximum}"})
    return value


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
