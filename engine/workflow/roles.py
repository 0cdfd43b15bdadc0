"""What a form's fields mean for the case, declared on the field.

A field gives the case its meaning by declaring it, `"x-tsunagu": "case.summary"` (the case's
summary), `"case.consent"` (the resident's consent: given, not_given, unknown) or
`"case.participants"` (groups that join the case), `"case.roles"` (rows of `group` and `role`:
the role each group holds, 役割分担), so a designer's new form gets the same
behaviour as ours. A form that declares none (one deployed before these annotations) keeps
the old meaning by field name: `summary`, `consent`, `participants`, `roles`.
"""

from __future__ import annotations

from typing import Any

# What a confirmation step (a task with no form) accepts: nothing but the confirmation itself.
CONFIRMATION: dict[str, Any] = {"type": "object", "additionalProperties": False}
ROLE = "x-tsunagu"
CASE_SUMMARY, CASE_CONSENT, CASE_PARTICIPANTS = "case.summary", "case.consent", "case.participants"
CASE_ROLE_HOLDERS = "case.roles"
CASE_ROLES = (CASE_SUMMARY, CASE_CONSENT, CASE_PARTICIPANTS, CASE_ROLE_HOLDERS)
# The meaning forms had before they declared it, by field name; also what start data without
# a start form means (`POST /api/cases` `data.summary`).
BY_NAME = {CASE_SUMMARY: "summary", CASE_CONSENT: "consent", CASE_PARTICIPANTS: "participants",
           CASE_ROLE_HOLDERS: "roles"}


def case_fields(schema: dict[str, Any] | None) -> dict[str, str]:
    """{role: top-level field name} of the case roles a form's fields declare."""
    if schema is None:
        return {}  # a confirmation step: no answers, no meaning
    props = schema.get("properties") or {}
    if not any(isinstance(p, dict) and ROLE in p for p in props.values()):
        return dict(BY_NAME)
    return {p[ROLE]: name for name, p in props.items() if isinstance(p, dict) and p.get(ROLE) in CASE_ROLES}


def role_problems(schema: dict[str, Any]) -> list[str]:
    """What is wrong with a form's `x-tsunagu` declarations (empty when nothing)."""
    problems = []
    seen: dict[str, str] = {}
    for name, prop in ((schema.get("properties") or {}).items()):
        role = prop.get(ROLE) if isinstance(prop, dict) else None
        if role is None:
            continue
        if role not in CASE_ROLES:
            problems.append(f"field {name}: x-tsunagu {role!r} is not one of {', '.join(CASE_ROLES)}")
        elif role in seen:
            problems.append(f"field {name}: {role} is already declared by field {seen[role]}")
        else:
            seen[role] = name
    return problems


