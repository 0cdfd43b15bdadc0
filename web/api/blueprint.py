"""The API's Blueprint: flask-smorest's, with a request-body parser that refuses JSON nested
too deeply before parsing it (Python's json parser recurses, and would fail on deep input
with a RecursionError instead of an answer), and strings holding NUL characters (which
PostgreSQL cannot store; refused on every database alike)."""

from __future__ import annotations

from typing import Any

import flask
import flask_smorest
from webargs.flaskparser import FlaskParser, is_json_request

from engine.errors import Invalid
from engine.limits import MAX_BODY_DEPTH, json_text_depth_exceeds, nul_at

TOO_DEEP = f"nested deeper than {MAX_BODY_DEPTH} levels"
NUL = "contains a NUL character"


class Parser(FlaskParser):
    def _raw_load_json(self, req: flask.Request) -> Any:
        if is_json_request(req) and json_text_depth_exceeds(req.get_data(cache=True)):
            raise Invalid(f"JSON の入れ子が深すぎます（{MAX_BODY_DEPTH} 段まで）/ The request body is {TOO_DEEP}",
                          {"body": TOO_DEEP})
        body = super()._raw_load_json(req)
        field = nul_at(body)
        if field:
            raise Invalid(f"{field} に NUL 文字が含まれています / {field} {NUL}", {field: NUL})
        return body


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()
