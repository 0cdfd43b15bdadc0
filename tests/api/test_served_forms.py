"""GET /api/tasks/<id> serves each form as plain JSON Schema (Draft 2020-12): a client that
knows nothing of Tsunagu (rjsf, JSON Forms, Ajv; here plain `jsonschema`) can check it,
render the group choices and validate an answer the way the engine does."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from engine.settings import ROOT
from engine.workflow import forms, specs
from tests.engine.support import intake

FORMS = specs.read_forms(ROOT / "forms")
# The formats of JSON Schema 2020-12 our forms use; anything else is Tsunagu's own.
STANDARD_FORMATS = {"date", "duration"}


def formats(node: Any) -> set[str]:
    if isinstance(node, dict):
        return ({node["format"]} if isinstance(node.get("format"), str) else set()) | {
            f for v in node.values() for f in formats(v)}
    if isinstance(node, list):
        return {f for v in node for f in formats(v)}
    return set()


def plain(schema: dict[str, Any]) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.mark.parametrize("key", sorted(FORMS))
def test_every_form_is_served_as_standard_json_schema(env, key: str) -> None:  # noqa: ANN001
    served = forms.standard(FORMS[key], env.org.groups)
    plain(served)
    assert served["$schema"] == forms.DIALECT
    assert formats(served) <= STANDARD_FORMATS
    # What the page renderer reads is left as it is.
    assert FORMS[key] == specs.read_forms(ROOT / "forms")[key]


def test_a_group_field_lists_the_registered_groups_and_refuses_others(env) -> None:  # noqa: ANN001
    served = forms.standard(FORMS["support_meeting"], env.org.groups)
    item = served["properties"]["participants"]["items"]
    assert item["x-tsunagu-format"] == "group"
    assert {"const": "choju-anshin", "title": env.org.group("choju-anshin").name} in item["oneOf"]
    assert {c["const"] for c in item["oneOf"]} == env.org.group_ids()
    answer = {"held_on": "2026-04-20", "participants": ["choju-anshin"],
              "roles": [{"group": "choju-anshin", "role": "見守り"}]}
    validator = plain(served)
    assert list(validator.iter_errors(answer)) == []
    forms.validate(FORMS["support_meeting"], answer, env.org.group_ids())  # the engine agrees
    assert list(validator.iter_errors({**answer, "participants": ["no-such-agency"]}))


def test_the_task_api_serves_the_standard_schema(api) -> None:  # noqa: ANN001
    ref = api("caseworker")
    case = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).get_json()
    task = next(t for t in ref.get(f"/api/cases/{case['id']}").get_json()["open_tasks"] if t["step"] == "intake")
    schema = ref.get(f"/api/tasks/{task['id']}").get_json()["schema"]
    validator = plain(schema)
    assert schema["properties"]["summary"]["x-tsunagu"] == "case.summary"
    assert list(validator.iter_errors(intake())) == []
    assert list(validator.iter_errors({**intake(), "consent": "maybe"}))
    assert ref.post(f"/api/tasks/{task['id']}/complete", json={"data": intake()}).status_code == 200
