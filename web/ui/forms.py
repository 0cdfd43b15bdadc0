"""Task forms from the forms' JSON Schemas: widgets to render, submitted fields back to JSON,
and earlier answers as readable text.

Widgets by schema:
  string → text input; x-multiline → textarea; number / integer → number (kept as typed if it
  does not parse, so the engine reports it); boolean → checkbox (yes/no radios when required);
  format date → date input; format duration → number + unit (P{n}D/W/M/Y) with a free-text
  fallback; oneOf const/title → radios (select when long); array of oneOf → checkboxes;
  format group → select of groups; array of group → checkboxes of groups; array of objects →
  a table of rows whose fields are named `<array>-<row>-<field>` (roles-0-group).
A field's `x-tsunagu-section` starts a headed section of the form there; an item reported to the
national government (`x-tsunagu-report`) is marked beside its label.
Validation is the engine's (engine.workflow.forms via cases.complete_task): errors come back keyed by
path (roles.0.group), which is how fields are named here (`Field.path`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from engine.workflow import annotations
from web.ui.i18n import group_name, has_message, lang, pick, t

DURATION_UNITS = ("D", "W", "M", "Y")
_SIMPLE_DURATION = re.compile(r"^P(\d{1,4})([DWMY])$")
RADIO_LIMIT = 5


@dataclass
class Field:
    path: str  # "roles.0.group": the key the engine's errors use
    kind: str
    label: str
    description: str = ""
    required: bool = False
    value: Any = None
    options: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    section: str = ""  # x-tsunagu-section: the heading the page puts before the first field of a section
    national: bool = False  # x-tsunagu-report "national": an item reported to the national government
    # kind "table": one Field per column (unnamed, for the header and the row template) and rows of Fields
    columns: list[Field] = field(default_factory=list)
    rows: list[list[Field]] = field(default_factory=list)
    # kind "duration": the parts
    amount: str = ""
    unit: str = "D"
    text: str = ""

    @property
    def name(self) -> str:
        return self.path.replace(".", "-")

    @property
    def id(self) -> str:
        return "f-" + self.name

    @property
    def error_id(self) -> str:
        return self.id + "-error"

    @property
    def help_id(self) -> str:
        return self.id + "-help"

    def checked(self, option: str) -> bool:
        if isinstance(self.value, list):
            return option in [str(v) for v in self.value]
        return self.value is not None and _text(self.value) == option


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _choices(schema: dict[str, Any]) -> list[tuple[str, str]] | None:
    if "oneOf" in schema and all(isinstance(o, dict) and "const" in o for o in schema["oneOf"]):
        return [(_text(o["const"]), o.get("title") or _text(o["const"])) for o in schema["oneOf"]]
    if "enum" in schema:
        return [(_text(v), _text(v)) for v in schema["enum"]]
    return None


def _kind(schema: dict[str, Any], required: bool) -> str:
    typ = schema.get("type")
    fmt = schema.get("format")
    if typ == "array":
        items = schema.get("items") or {}
        if items.get("type") == "object":
            return "table"
        if items.get("format") == "group":
            return "groups"
        if _choices(items) is not None:
            return "checkboxes"
        return "lines"
    if typ == "boolean":
        return "yesno" if required and schema.get("const") is not True else "checkbox"
    if typ in ("number", "integer"):
        return typ
    if fmt == "group":
        return "group"
    if fmt == "date":
        return "date"
    if fmt == "duration":
        return "duration"
    choices = _choices(schema)
    if choices is not None:
        return "radio" if len(choices) <= RADIO_LIMIT else "select"
    if schema.get("x-multiline"):
        return "textarea"
    return "text"


def _group_options(groups: list[Any]) -> list[tuple[str, str]]:
    return [(g.id, group_name(g)) for g in groups]


def build(schema: dict[str, Any] | None, values: dict[str, Any] | None, errors: dict[str, str] | None,
          groups: list[Any], extra_rows: dict[str, int] | None = None) -> list[Field]:
    """The fields of a form, with values to show and the engine's errors beside them."""
    schema = schema or {}
    values = values if isinstance(values, dict) else {}
    errors = errors or {}
    required = set(schema.get("required") or [])
    out = []
    for key, prop in (schema.get("properties") or {}).items():
        out.append(_field(key, prop, values.get(key), key in required, errors, groups,
                          (extra_rows or {}).get(key, 0)))
    return out


def _field(path: str, prop: dict[str, Any], value: Any, required: bool, errors: dict[str, str],
           groups: list[Any], extra_rows: int = 0) -> Field:
    kind = _kind(prop, required)
    f = Field(path=path, kind=kind, label=prop.get("title") or path.rsplit(".", 1)[-1],
              description=prop.get("description") or "", required=required, value=value,
              error=pick(errors.get(path)) or None,
              section=prop.get(annotations.SECTION) if isinstance(prop.get(annotations.SECTION), str) else "",
              national=prop.get(annotations.REPORT) == annotations.NATIONAL)
    if kind in ("radio", "select"):
        f.options = _choices(prop) or []
    elif kind == "checkboxes":
        f.options = _choices(prop.get("items") or {}) or []
    elif kind in ("group", "groups"):
        f.options = _group_options(groups)
    elif kind == "duration":
        text = value if isinstance(value, str) else _text(value)
        m = _SIMPLE_DURATION.match(text.strip().upper()) if text else None
        if m:
            f.amount, f.unit = m.group(1), m.group(2)
        elif text:
            f.text = text
    elif kind == "table":
        items = prop.get("items") or {}
        item_required = set(items.get("required") or [])
        props = items.get("properties") or {}
        f.columns = [_field(f"{path}.__index__.{k}", p, None, k in item_required, {}, groups)
                     for k, p in props.items()]
        rows = value if isinstance(value, list) else []
        count = max(len(rows), 1 if prop.get("minItems") or required else 0) + extra_rows
        for i in range(count):
            row = rows[i] if i < len(rows) and isinstance(rows[i], dict) else {}
            f.rows.append([_field(f"{path}.{i}.{k}", p, row.get(k), k in item_required, errors, groups)
                           for k, p in props.items()])
        # An error about a row as a whole (e.g. "roles.0": not an object) shows on the table.
        row_errors = [pick(m) for k, m in errors.items() if re.fullmatch(rf"{re.escape(path)}\.\d+", k)]
        if row_errors and not f.error:
            f.error = " ".join(row_errors)
    return f


# ---------------------------------------------------------------- submitted form → JSON


def parse(schema: dict[str, Any] | None, form: MultiDict) -> dict[str, Any]:
    """The submitted fields as the JSON object the schema describes. What does not parse is kept
    as typed (a string), so that the engine names the field and the page shows the input again."""
    schema = schema or {}
    required = set(schema.get("required") or [])
    data: dict[str, Any] = {}
    for key, prop in (schema.get("properties") or {}).items():
        present, value = _parse_field(key, prop, key in required, form)
        if present:
            data[key] = value
    return data


def _parse_field(name: str, prop: dict[str, Any], required: bool, form: MultiDict) -> tuple[bool, Any]:
    kind = _kind(prop, required)
    if kind == "table":
        items = prop.get("items") or {}
        props = items.get("properties") or {}
        item_required = set(items.get("required") or [])
        pattern = re.compile(rf"^{re.escape(name)}-(\d+)-")
        indices = sorted({int(m.group(1)) for k in form if (m := pattern.match(k))})
        rows = []
        for i in indices:
            row = {}
            for k, p in props.items():
                present, value = _parse_field(f"{name}-{i}-{k}", p, k in item_required, form)
                if present:
                    row[k] = value
            if any(v not in ("", None, [], False) for v in row.values()):
                rows.append(row)
        return True, rows
    if kind in ("checkboxes", "groups"):
        return True, [v for v in form.getlist(name) if v != ""]
    if kind == "lines":
        raw = form.get(name, "")
        return True, [line.strip() for line in raw.splitlines() if line.strip()]
    if kind == "checkbox":
        if name in form:
            return True, True
        # A box that must be ticked (const true) left empty is "not answered"; others mean "no".
        return (False, None) if prop.get("const") is True or required else (True, False)
    if kind == "yesno":
        raw = form.get(name)
        if raw == "true":
            return True, True
        if raw == "false":
            return True, False
        return (False, None) if not raw else (True, raw)
    if kind == "duration":
        text = form.get(name, "").strip()
        if text:
            return True, text.upper() if text.upper().startswith("P") else text
        amount = form.get(f"{name}-amount", "").strip()
        unit = form.get(f"{name}-unit", "D")
        if not amount:
            return False, None
        if amount.isdigit() and unit in DURATION_UNITS:
            return True, f"P{int(amount)}{unit}"
        return True, amount
    raw = form.get(name)
    if raw is None:
        return False, None
    if kind == "textarea":
        raw = raw.replace("\r\n", "\n")
        return (False, None) if not raw.strip() else (True, raw)
    raw = raw.strip()
    if raw == "":
        return False, None
    if kind == "integer":
        try:
            return True, int(raw)
        except ValueError:
            return True, raw
    if kind == "number":
        try:
            number = float(raw)
            return True, int(number) if number.is_integer() and "." not in raw else number
        except ValueError:
            return True, raw
    return True, raw


# ---------------------------------------------------------------- answers → readable text


@dataclass
class Answer:
    label: str
    text: str = ""
    multiline: bool = False
    # an array of objects: column labels and rows of texts
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    children: list[Answer] = field(default_factory=list)


def duration_text(value: str) -> str:
    m = _SIMPLE_DURATION.match(value.upper()) if isinstance(value, str) else None
    if not m:
        return value
    unit = t(f"unit_{m.group(2)}")
    return f"{m.group(1)}{unit}（{value}）" if lang() == "ja" else f"{m.group(1)} {unit} ({value})"


def _display(prop: dict[str, Any], value: Any, groups: dict[str, Any]) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return t("yes") if value else t("no")
    fmt = prop.get("format")
    if prop.get("type") == "array":
        items = prop.get("items") or {}
        sep = "、" if lang() == "ja" else ", "
        return sep.join(_display(items, v, groups) for v in value) if isinstance(value, list) else _text(value)
    if fmt == "group":
        g = groups.get(value)
        return group_name(g) if g is not None else _text(value)
    if fmt == "duration":
        return duration_text(value)
    choices = _choices(prop)
    if choices:
        return dict(choices).get(_text(value), _text(value))
    return _text(value)


def describe(schema: dict[str, Any] | None, data: dict[str, Any] | None, groups: dict[str, Any]) -> list[Answer]:
    """Submitted data as label/text pairs in the form's order, with the form's titles."""
    if not isinstance(data, dict):
        return []
    props = (schema or {}).get("properties") or {}
    out: list[Answer] = []
    for key, prop in props.items():
        if key not in data:
            continue
        value = data[key]
        label = prop.get("title") or key
        items = prop.get("items") or {}
        if prop.get("type") == "array" and items.get("type") == "object" and isinstance(value, list):
            sub = items.get("properties") or {}
            out.append(Answer(label, columns=[p.get("title") or k for k, p in sub.items()],
                              rows=[[_display(p, row.get(k), groups) if isinstance(row, dict) else ""
                                     for k, p in sub.items()] for row in value]))
        else:
            out.append(Answer(label, _display(prop, value, groups), multiline=bool(prop.get("x-multiline"))))
    for key, value in data.items():  # anything the schema does not describe (start data, older versions)
        if key not in props:
            out.append(_generic(key, value, groups))
    return out


KNOWN_CHOICES = {"consent": {"given": "consent_given", "not_given": "consent_not_given", "unknown": "consent_unknown"}}


def _generic(key: str, value: Any, groups: dict[str, Any]) -> Answer:
    label = t(f"key_{key}") if has_message(f"key_{key}") else key
    if isinstance(value, dict):
        return Answer(label, children=[_generic(k, v, groups) for k, v in value.items()])
    if key in KNOWN_CHOICES and isinstance(value, str) and value in KNOWN_CHOICES[key]:
        return Answer(label, t(KNOWN_CHOICES[key][value]))
    if isinstance(value, bool):
        return Answer(label, t("yes") if value else t("no"))
    if isinstance(value, list):
        sep = "、" if lang() == "ja" else ", "
        return Answer(label, sep.join(group_name(groups[v]) if isinstance(v, str) and v in groups else _text(v)
                                      for v in value))
    text = _text(value)
    return Answer(label, text, multiline="\n" in text)
