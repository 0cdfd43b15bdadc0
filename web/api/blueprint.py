"""The API's Blueprint: flask-smorest's, with a request-body parser that refuses JSON nested
too deeply before parsing it (Python's json parser recurses, and would fail on deep input
with a RecursionError instead of an answer), and values no database can store as JSON: strings
holding NUL characters or lone surrogates, NaN and infinite numbers (PostgreSQL refuses them;
refused on every database alike)."""

from __future__ import annotations

from typing import Any

import flask
import flask_smorest
from webargs.flaskparser import FlaskParser, is_json_request

from engine.errors import Invalid
from engine.workflow.limits import MAX_BODY_DEPTH, json_text_depth_exceeds, unstorable_at

TOO_DEEP = f"nested deeper than {MAX_BODY_DEPTH} levels"


class Parser(FlaskParser):
    def _raw_load_json(self, req: flask.Request) -> Any:
        if is_json_request(req) and json_text_depth_exceeds(req.get_data(cache=True)):
            raise Invalid(f"JSON の入れ子が深すぎます（{MAX_BODY_DEPTH} 段まで）/ The request body is {TOO_DEEP}",
                          {"body": TOO_DEEP})
        body = super()._raw_load_json(req)
        fault = unstorable_at(body)
        if fault:
            field, what = fault
            raise Invalid(f"{field} は保存できない値です / {field} {what}", {field: what})
        return body


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()
