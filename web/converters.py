"""URL converters shared by the API and the pages."""

from __future__ import annotations

from werkzeug.routing import BaseConverter

from engine.workflow.limits import MAX_INT

# More digits than any id can have: passed on as text, so that the domain's bound check
# answers 422 naming the parameter (int() of thousands of digits would raise instead).
_ID_DIGITS = len(str(MAX_INT)) + 1


class IdConverter(BaseConverter):
    """`<id:name>`: a positive integer id. Digits only (anything else does not match: 404);
    values beyond MAX_INT reach the domain function, which refuses them naming the field."""

    regex = r"\d+"

    def to_python(self, value: str) -> int | str:
        return int(value) if len(value) <= _ID_DIGITS else value

    def to_url(self, value: int) -> str:
        return str(value)


def id_param_schema(_converter: IdConverter) -> dict:
    return {"type": "integer", "minimum": 1, "maximum": MAX_INT}
