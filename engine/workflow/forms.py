"""Server-side validation of submitted form data against a task's JSON Schema.

Errors come back keyed by field path (`roles.0.group`), each with a message a caseworker
can act on, in Japanese first with the English after a slash.

"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import date
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError, ValidationError

from engine.errors import Invalid
from engine.org import GroupInfo
from engine.workflow import annotations, durations, roles


def _is_date(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    try:
        date.fromisoformat(value)
        return len(value) == 10
    except ValueError:
        return False


def make_format_checker(group_ids: set[str]) -> FormatChecker:
    checker = FormatChecker(formats=())
    checker.checks("group")(lambda v: not isinstance(v, str) or v in group_ids)
    checker.checks("duration")(lambda v: not isinstance(v, str) or durations.to_iso(v) is not None)
    checker.checks("date")(_is_date)
    return checker


def _path(error: ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        parts.append(missing)
    if error.validator == "additionalProperties":
        extra = error.message.split("'")[1] if "'" in error.message else ""
        parts.append(extra)
    return ".".join(p for p in parts if p) or "data"


def _message(error: ValidationError) -> str:
    v = error.validator
    if v is None or (v == "not" and error.validator_value == {}):  # a `false` schema: nothing is allowed here
        return "この項目は記入できません / Not allowed here"
    if v == "required":
        return "入力してください / This field is required"
    if v == "additionalProperties":
        return "この項目は受け付けられません / Unknown field"
    if v == "type":
        expected = error.validator_value
        return f"形式が正しくありません（{expected}）/ Must be of type {expected}"
    if v == "format":
        fmt = error.validator_value
        hints = {
            "duration": durations.HINT,
            "date": "日付を YYYY-MM-DD で入力してください / Must be a date (YYYY-MM-DD)",
            "group": f"登録されていない機関です: {error.instance} / Unknown group {error.instance}",
        }
        return hints.get(fmt, f"形式が正しくありません / Must be a valid {fmt}")
    if v in ("enum", "oneOf", "const"):
        return f"選択肢から選んでください / Not an allowed value: {error.instance!r}"
    if v == "minLength":
        return "入力してください / Must not be empty"
    if v == "maxLength":
        return f"{error.validator_value} 文字以内で入力してください / At most {error.validator_value} characters"
    if v == "minItems":
        return f"{error.validator_value} 件以上選んでください / Choose at least {error.validator_value}"
    if v == "minimum":
        return f"{error.validator_value} 以上で入力してください / Must be at least {error.validator_value}"
    if v == "maximum":
        return f"{error.validator_value} 以下で入力してください / Must be at most {error.validator_value}"
    if v == "pattern":
        return "使えない文字が含まれています / Contains characters that are not allowed here"
    if v == "uniqueItems":
        return "同じ値が重複しています / Values must be unique"
    return error.message


def validate(schema: dict[str, Any], data: Any, group_ids: set[str]) -> dict[str, Any]:
    """Return `data` if valid; raise Invalid with every failing field named."""
    if not isinstance(data, dict):
        raise Invalid("data must be a JSON object", {"data": "オブジェクトで送ってください / Must be an object"})
    validator = Draft202012Validator(schema, format_checker=make_format_checker(group_ids))
    fields: dict[str, str] = {}
    block = set(annotations.consent_only_fields(schema))
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        path = _path(error)
        if path in block and "else" in error.absolute_schema_path:  # the rule of annotations.for_consent
            fields[path] = annotations.CONSENT_ONLY_MESSAGE
        # For oneOf choices the most specific message is the one on the field itself.
        fields.setdefault(path, _message(error))
    if fields:
        names = ", ".join(sorted(fields))
        raise Invalid(f"入力内容に誤りがあります / Invalid fields: {names}", fields)
    return _as_iso(schema, data)


def _as_iso(schema: dict[str, Any], value: Any) -> Any:
    """`value` with each `duration` field in the ISO form the timers read (「2週間」 → P2W); the
    rest as given. Called on valid data only."""
    if not isinstance(schema, dict):
        return value
    if schema.get("format") == "duration" and isinstance(value, str):
        return durations.to_iso(value) or value
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        props = schema["properties"]
        return {k: _as_iso(props[k], v) if k in props else v for k, v in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_as_iso(schema["items"], v) for v in value]
    return value


def with_defaults(schema: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """`data` with the schema's `default` for each top-level field it left out: what the
    workflow gets, so a gateway may read an optional field (history keeps what was sent)."""
    defaults = {k: v["default"] for k, v in schema.get("properties", {}).items()
                if isinstance(v, dict) and "default" in v and k not in data}
    return {**defaults, **data} if defaults else data


# The formats the engine checks (make_format_checker); any other would go unchecked.
FORMATS = ("group", "duration", "date")


def check_schema(schema: Any) -> dict[str, str]:
    """What is wrong with a form, by path: it must be a valid JSON Schema (the 2020-12
    metaschema) for an object with `properties`, whose `required` names are among them and whose
    formats are ones the engine checks. Empty when it is fine."""
    if not isinstance(schema, dict):
        return {"schema": "JSON オブジェクトで送ってください / must be a JSON object"}
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = ".".join(str(p) for p in exc.path) or "schema"
        return {where: f"JSON Schema として正しくありません / not a valid JSON Schema: {exc.message}"}
    problems: dict[str, str] = {}
    if schema.get("type") != "object":
        problems["type"] = "フォームは type: object です / a form's type must be \"object\""
    if not isinstance(schema.get("properties"), dict):
        problems["properties"] = "項目（properties）がありません / a form needs properties"
        return problems
    for name in schema.get("required", []):
        if name not in schema["properties"]:
            problems[f"required.{name}"] = (f"必須の {name} が properties にありません / required field {name} "
                                            "is not among the properties")

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            fmt = node.get("format")
            if isinstance(fmt, str) and fmt not in FORMATS:
                problems[f"{path}.format" if path else "format"] = (
                    f"形式 {fmt!r} は使えません（{', '.join(FORMATS)}）/ format {fmt!r} is not checked by the "
                    f"engine; use one of {', '.join(FORMATS)}")
            for key, value in node.items():
                if not key.startswith("x-"):
                    walk(value, f"{path}.{key}" if path else key)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}.{i}")

    walk(schema["properties"], "properties")
    for name, problem in annotations.problems(schema).items():
        problems[f"properties.{name}"] = problem
    return problems
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def standard(schema: dict[str, Any] | None, groups: Iterable[GroupInfo], title: str = "",
             documentation: str | None = None) -> dict[str, Any]:
    """The form as plain JSON Schema (Draft 2020-12) that rjsf, JSON Forms or Ajv can render and
    validate knowing nothing of Tsunagu: a `format: group` field lists the registered groups
    as `oneOf` [{const: id, title: name}] (its format kept as `x-tsunagu-format`, since
    strict validators refuse formats they do not know); everything else Tsunagu adds is an
    `x-` annotation a client may ignore. No form (a confirmation step): an object that takes
    no answers, described by the step's documentation."""
    if schema is None:
        out: dict[str, Any] = {**roles.CONFIRMATION, "title": title, "x-tsunagu-confirmation": True}
        if documentation:
            out["description"] = documentation
        return {"$schema": DIALECT, **out}
    choices = [{"const": g.id, "title": g.name} for g in groups]
    out = _standard(copy.deepcopy(schema), choices)
    out.setdefault("$schema", DIALECT)
    return out


def _standard(node: Any, choices: list[dict[str, str]]) -> Any:
    if isinstance(node, list):
        return [_standard(n, choices) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "$defs", "patternProperties") and isinstance(value, dict):
            out[key] = {name: _standard(sub, choices) for name, sub in value.items()}
        elif key in ("const", "default", "enum", "examples"):
            out[key] = value  # values, not schemas
        else:
            out[key] = _standard(value, choices)
    if out.get("format") == "group":
        del out["format"]
        out["x-tsunagu-format"] = "group"
        if "oneOf" not in out and "enum" not in out:
            out["oneOf"] = [dict(c) for c in choices]
    return out
