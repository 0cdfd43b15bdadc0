"""What a form's `x-tsunagu-*` annotations ask of the engine beyond validation.

- `x-tsunagu-consent-only: true` on a field: it belongs to the application and signature block
  (相談申込み欄, the person's own signing of the plan) of the national sheets, which a case shared
  without the person's consent (a 支援会議 case, 社会福祉法第106条の6) does not have. Such a
  form has two variants: `without_consent` (those fields left out, the title from the form's
  `x-tsunagu-variants.without_consent`) for a case whose recorded consent is `not_given`, and
  `with_consent` for any other case. In the latter, a form that records the consent itself
  (a `case.consent` field) refuses the block's answers unless that consent is `given`, with a
  plain JSON Schema `if`/`else`, so a client validating the served schema agrees with the engine.
- `x-tsunagu-prefill: [key, ...]` on a field: an open task's form offers the newest earlier
  answer of the case among those keys (the support meeting's 決定した支援方針 offers the
  policy decided last, at a meeting or in the plan); the user may change it.
- `x-tsunagu-report: "national"` on a field: an item the city reports to the national
  government (国への報告事項, the bold frames of the national sheets), for the statistics.
- `x-tsunagu-section: "title"` on a field: the page starts a section with that heading there.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from engine.workflow import roles

CONSENT_ONLY = "x-tsunagu-consent-only"
PREFILL = "x-tsunagu-prefill"
REPORT = "x-tsunagu-report"
SECTION = "x-tsunagu-section"
VARIANT = "x-tsunagu-variant"
VARIANTS = "x-tsunagu-variants"
WITH_CONSENT, WITHOUT_CONSENT = "with_consent", "without_consent"
NATIONAL = "national"
CONSENT_ONLY_MESSAGE = ("本人の同意（同意あり）がある場合にだけ記入します / Only filled in when the person has "
                        "given consent")


def _props(schema: dict[str, Any] | None) -> dict[str, Any]:
    props = (schema or {}).get("properties")
    return props if isinstance(props, dict) else {}


def consent_only_fields(schema: dict[str, Any] | None) -> list[str]:
    return [k for k, p in _props(schema).items() if isinstance(p, dict) and p.get(CONSENT_ONLY) is True]


def variant_of(consent: str | None) -> str:
    """The variant a case's recorded consent calls for: only a case recorded as shared without
    consent lacks the application block (an unrecorded consent may still be given at intake)."""
    return WITHOUT_CONSENT if consent == "not_given" else WITH_CONSENT


def for_consent(schema: dict[str, Any] | None, consent: str | None) -> dict[str, Any] | None:
    """The form as a case with this recorded consent gets it (the stored schema is left as it
    is); a form without consent-only fields is returned unchanged."""
    block = consent_only_fields(schema)
    if schema is None or not block:
        return schema
    out = copy.deepcopy(schema)
    variant = variant_of(consent)
    out[VARIANT] = variant
    if variant == WITHOUT_CONSENT:
        for key in block:
            del out["properties"][key]
        out["required"] = [r for r in out.get("required", []) if r not in block]
        for key, value in ((out.get(VARIANTS) or {}).get(WITHOUT_CONSENT) or {}).items():
            if key in ("title", "description") and isinstance(value, str):
                out[key] = value
        return out
    consent_field = roles.case_fields(schema).get(roles.CASE_CONSENT)
    if consent_field in out["properties"]:
        # An unticked box is an answer a page always sends (false); anything else is refused.
        # (`not: {}` rather than `false`, whose errors lose the field's path in jsonschema)
        refused = {k: {"const": False} if schema["properties"][k].get("type") == "boolean" else {"not": {}}
                   for k in block}
        rule = {"if": {"properties": {consent_field: {"const": "given"}}, "required": [consent_field]},
                "else": {"properties": refused}}
        out["allOf"] = [*out.get("allOf", []), rule]
    return out


def prefill(schema: dict[str, Any] | None, values: dict[str, Any],
            earlier: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """`values` with each `x-tsunagu-prefill` field it lacks taken from `earlier` (completed
    steps' answers, newest first, read only while a field is still wanted): the first answer
    holding one of the field's keys."""
    wanted = {k: p[PREFILL] for k, p in _props(schema).items()
              if k not in values and isinstance(p, dict) and isinstance(p.get(PREFILL), list)}
    if not wanted:
        return values
    out = dict(values)
    for answer in earlier:
        for key, sources in list(wanted.items()):
            found = next((answer[s] for s in sources if isinstance(s, str) and answer.get(s) not in (None, "")), None)
            if found is not None:
                out[key] = found
                del wanted[key]
        if not wanted:
            break
    return out


def national_report_fields(schema: dict[str, Any] | None) -> list[str]:
    """The form's fields the city reports to the national government (国への報告事項)."""
    return [k for k, p in _props(schema).items() if isinstance(p, dict) and p.get(REPORT) == NATIONAL]


def problems(schema: dict[str, Any]) -> dict[str, str]:
    """What is wrong with a form's annotations of this module, by field (empty when nothing)."""
    out: dict[str, str] = {}
    required = schema.get("required") or []
    for name, prop in _props(schema).items():
        if not isinstance(prop, dict):
            continue
        if CONSENT_ONLY in prop and prop[CONSENT_ONLY] is not True:
            out[name] = f"{CONSENT_ONLY} must be true"
        elif CONSENT_ONLY in prop and name in required:
            out[name] = f"a {CONSENT_ONLY} field cannot be required"
        elif PREFILL in prop and not (isinstance(prop[PREFILL], list) and prop[PREFILL]
                                      and all(isinstance(s, str) for s in prop[PREFILL])):
            out[name] = f"{PREFILL} must be a list of field names"
        elif REPORT in prop and prop[REPORT] != NATIONAL:
            out[name] = f"{REPORT} must be {NATIONAL!r}"
        elif SECTION in prop and not isinstance(prop[SECTION], str):
            out[name] = f"{SECTION} must be a string"
    return out
