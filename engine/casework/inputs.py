"""Checks of plain input values (dates, texts, codes, flags) that answer a bad one with an
Invalid naming the field, Japanese first then English."""

from __future__ import annotations

from datetime import date
from typing import Any

from engine.errors import Invalid

MAX_TEXT = 4000


def field_error(field: str, ja: str, en: str) -> Invalid:
    return Invalid(f"{ja} / {en}", {field: f"{ja} / {en}"})


def parse_date(value: Any, field: str, required: bool = True) -> date | None:
    if value is None and not required:
        return None
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise field_error(field, "日付を YYYY-MM-DD で入力してください", f"{field} must be a date (YYYY-MM-DD)")


def text(value: Any, field: str, limit: int = MAX_TEXT, required: bool = False) -> str:
    if value is None or value == "":
        if required:
            raise field_error(field, "入力してください", f"{field} is required")
        return ""
    if not isinstance(value, str):
        raise field_error(field, "文字列で入力してください", f"{field} must be a string")
    if len(value) > limit:
        raise field_error(field, f"{limit} 文字以内で入力してください", f"{field} must be at most {limit} characters")
    if required and not value.strip():
        raise field_error(field, "入力してください", f"{field} is required")
    return value.strip()


def code(value: Any, allowed: set[str], field: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise field_error(field, f"選択肢から選んでください（{', '.join(sorted(allowed))}）",
                          f"{field} must be one of {', '.join(sorted(allowed))}")
    return value


def codes_list(value: Any, allowed: set[str], field: str, required: bool = True) -> list[str]:
    """A list of codes, each allowed, repeats dropped; non-empty when `required`."""
    if value is None and not required:
        return []
    if not isinstance(value, list) or (required and not value) or len(value) > 50:
        raise field_error(field, "1 件以上の一覧で入力してください", f"{field} must be a non-empty list")
    for i, v in enumerate(value):
        if not isinstance(v, str) or v not in allowed:
            raise field_error(f"{field}.{i}", f"選択肢にありません: {v!r}", f"not one of {', '.join(sorted(allowed))}")
    return list(dict.fromkeys(value))


def flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise field_error(field, "true か false です", f"{field} must be true or false")
    return value


def only_fields(body: Any, allowed: set[str]) -> dict[str, Any]:
    """`body` if it is an object with no field outside `allowed`."""
    if not isinstance(body, dict):
        raise field_error("body", "JSON オブジェクトで送ってください", "the body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise field_error(unknown[0], "この項目は受け付けられません", f"unknown field {unknown[0]}")
    return body
