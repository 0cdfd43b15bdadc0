"""What other BPMN modelers write that Spiff's parser does not read, turned into what the
engine runs: a Camunda Modeler user task's `camunda:formKey` and embedded `camunda:formData`
(its fields become a JSON Schema form), read straight from the XML."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree

BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
CAMUNDA = "{http://camunda.org/schema/1.0/bpmn}"

# Camunda form field types -> JSON Schema (anything else is taken as text)
_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "long": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
}


@dataclass(frozen=True)
class CamundaForm:
    form_key: str | None
    schema: dict[str, Any] | None  # from camunda:formData, when the task embeds its fields


def camunda_forms(root: etree._Element) -> dict[str, CamundaForm]:
    """element id -> its Camunda form, for every element that has `camunda:formKey` or
    `camunda:formData`."""
    out: dict[str, CamundaForm] = {}
    for node in root.iter(f"{BPMN}userTask", f"{BPMN}startEvent", f"{BPMN}manualTask"):
        key = node.get(f"{CAMUNDA}formKey")
        data = node.find(f"{BPMN}extensionElements/{CAMUNDA}formData")
        if key is None and data is None:
            continue
        out[node.get("id")] = CamundaForm(key, form_data_schema(data) if data is not None else None)
    return out


def form_data_schema(data: etree._Element) -> dict[str, Any]:
    """A JSON Schema for a `camunda:formData` element's fields."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in data.iter(f"{CAMUNDA}formField"):
        name = field.get("id")
        if not name:
            continue
        kind = field.get("type") or "string"
        prop: dict[str, Any] = dict(_TYPES.get(kind, {"type": "string"}))
        if kind == "enum":
            choices = [(v.get("id"), v.get("name") or v.get("id")) for v in field.iter(f"{CAMUNDA}value")]
            prop = {"type": "string", "oneOf": [{"const": c, "title": t} for c, t in choices if c]}
        prop["title"] = field.get("label") or name
        default = field.get("defaultValue")
        if default is not None:
            prop["default"] = _typed(default, prop.get("type"))
        for constraint in field.iter(f"{CAMUNDA}constraint"):
            if constraint.get("name") == "required" and (constraint.get("config") or "true").lower() != "false":
                required.append(name)
        properties[name] = prop
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _typed(text: str, kind: Any) -> Any:
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            return None
    if kind == "boolean":
        return text.strip().lower() == "true"
    return text
