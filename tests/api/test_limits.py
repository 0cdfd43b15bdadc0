"""Absurd input: integers beyond any id or count, JSON nested ever deeper, unreadable bodies and
wrong methods. Each gets a clear error naming what is wrong, never a 500, and nothing is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine.errors import Invalid
from engine.models import AuditRecord, Case, CaseEvent, HumanTask
from engine.workflow.limits import MAX_BODY_DEPTH, MAX_DEPTH, MAX_INT, check_depth, json_text_depth_exceeds

HUGE = "9223372036854775808"  # 2^63: beyond every database integer


def nested(depth: int) -> dict:
    """`data` nesting `depth` levels, itself counting as the first: {"x": [[...["leaf"]...]]}."""
    value: object = "leaf"
    for _ in range(depth - 1):
        value = [value]
    return {"x": value}


def nested_body_text(depth: int) -> str:
    """A request body {"data": {"x": [[...]]}} nesting `depth` levels under `data`, as text
    (json.dumps itself would recurse on the deepest ones)."""
    return '{"data": {"x": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}}"


def counts(session) -> tuple[int, int, int, int]:  # noqa: ANN001
    session.expire_all()
    return tuple(session.scalar(select(func.count()).select_from(t)) for t in (Case, CaseEvent, AuditRecord, HumanTask))


# ---------------------------------------------------------------- integers


@pytest.mark.parametrize("url,field", [
    (f"/api/tasks?limit={HUGE}", "limit"),
    (f"/api/tasks?offset={HUGE}", "offset"),
    ("/api/tasks?offset=-1", "offset"),
    (f"/api/tasks?offset={MAX_INT + 1}", "offset"),
    (f"/api/audit?limit={HUGE}", "limit"),
    (f"/api/audit?offset={HUGE}", "offset"),
    (f"/api/audit.csv?offset={HUGE}", "offset"),
    ("/api/audit.csv?limit=0", "limit"),
])
def test_integer_parameters_out_of_bounds_are_refused_naming_them(api, url: str, field: str) -> None:  # noqa: ANN001
    r = api("admin" if "audit" in url else "caseworker").get(url)
    assert r.status_code == 422, r.get_data(as_text=True)[:300]
    assert set(r.json["error"]["fields"]) == {field}


def test_the_largest_offset_is_answered(api) -> None:  # noqa: ANN001
    assert api("caseworker").get(f"/api/tasks?offset={MAX_INT}").json == []
    assert api("admin").get(f"/api/audit?offset={MAX_INT}").json == []


@pytest.mark.parametrize("token_id", ["1911991875930310382786183168", str(MAX_INT + 1), "9" * 5000, "0"])
def test_token_ids_out_of_bounds_are_refused_naming_the_id(api, session, token_id: str) -> None:  # noqa: ANN001
    ref = api("caseworker")
    before = counts(session)
    r = ref.client.delete(f"/api/tokens/{token_id}", headers=ref.headers)
    assert r.status_code == 422, r.get_data(as_text=True)[:300]
    assert set(r.json["error"]["fields"]) == {"token_id"}
    assert counts(session) == before
    assert ref.get("/api/me").status_code == 200


def test_an_unknown_token_id_within_bounds_is_not_found(api) -> None:  # noqa: ANN001
    ref = api("caseworker")
    r = ref.client.delete(f"/api/tokens/{MAX_INT}", headers=ref.headers)
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"


# ---------------------------------------------------------------- depth


def test_depth_counts_data_itself_as_the_first_level() -> None:
    check_depth(nested(MAX_DEPTH))
    check_depth({"a": 1, "b": {"c": [1, 2, {"d": None}]}})
    with pytest.raises(Invalid) as exc:
        check_depth({"ok": [1], "x": nested(MAX_DEPTH + 1)["x"]})
    assert exc.value.fields == {"data.x": f"nested deeper than {MAX_DEPTH} levels"}
    with pytest.raises(Invalid):  # measured without recursion, however deep
        check_depth(nested(100_000))


@pytest.mark.parametrize("text,deeper_than_2", [
    ('{"a": [1]}', False),
    ('{"a": [[1]]}', True),
    ('{"a": "[[[[[[{{{{"}', False),
    ('{"a": "\\"[[[[", "b": [1]}', False),
    ('{"a": "\\\\", "b": [[1]]}', True),
    ('[{"k": "]]]]]]"}, [[2]]]', True),
])
def test_json_text_depth_ignores_brackets_in_strings(text: str, deeper_than_2: bool) -> None:
    assert json_text_depth_exceeds(text, limit=2) is deeper_than_2


def test_data_deeper_than_the_limit_opens_no_case(api, session) -> None:  # noqa: ANN001
    ref = api("caseworker")
    before = counts(session)
    r = ref.post("/api/cases", json={"process": "multi_agency", "data": nested(MAX_DEPTH + 1)})
    assert r.status_code == 422, r.json
    assert r.json["error"]["fields"] == {"data.x": f"nested deeper than {MAX_DEPTH} levels"}
    assert counts(session) == before
    r = ref.post("/api/cases", json={"process": "multi_agency", "data": {**nested(MAX_DEPTH), "summary": "相談"}})
    assert r.status_code == 201, r.json
    # The case opens again later: its state loads.
    assert ref.get(f"/api/cases/{r.json['id']}").status_code == 200
    task = r.json["open_tasks"][0]
    assert ref.get(f"/api/tasks/{task['id']}").status_code == 200


@pytest.fixture
def intake(api) -> str:  # noqa: ANN001
    case = api("caseworker").post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json
    return case["open_tasks"][0]["id"]


def test_draft_deeper_than_the_limit_is_not_kept(api, session, intake: str) -> None:  # noqa: ANN001
    ref = api("caseworker")
    before = counts(session)
    r = ref.put(f"/api/tasks/{intake}/draft", json={"data": nested(MAX_DEPTH + 1)})
    assert r.status_code == 422 and set(r.json["error"]["fields"]) == {"data.x"}
    assert counts(session) == before
    assert ref.put(f"/api/tasks/{intake}/draft", json={"data": nested(MAX_DEPTH)}).status_code == 200
    assert ref.get(f"/api/tasks/{intake}").json["data"] == nested(MAX_DEPTH)


def test_submission_deeper_than_the_limit_moves_nothing(api, session, intake: str) -> None:  # noqa: ANN001
    ref = api("caseworker")
    before = counts(session)
    r = ref.post(f"/api/tasks/{intake}/complete", json={"data": nested(MAX_DEPTH + 1)})
    assert r.status_code == 422 and r.json["error"]["fields"] == {"data.x": f"nested deeper than {MAX_DEPTH} levels"}
    assert counts(session) == before
    # At the limit the depth is fine and the form itself decides (the intake form has no `x`).
    r = ref.post(f"/api/tasks/{intake}/complete", json={"data": nested(MAX_DEPTH)})
    assert r.status_code == 422 and "data.x" not in r.json["error"]["fields"], r.json
    assert counts(session) == before


@pytest.mark.parametrize("depth", [960, 100_000])
@pytest.mark.parametrize("call", ["start", "draft", "complete"])
def test_absurdly_deep_bodies_are_refused_unread(api, session, intake: str, call: str, depth: int) -> None:  # noqa: ANN001
    ref = api("caseworker")
    url, method = {"start": ("/api/cases", "post"), "draft": (f"/api/tasks/{intake}/draft", "put"),
                   "complete": (f"/api/tasks/{intake}/complete", "post")}[call]
    body = nested_body_text(depth)
    if call == "start":
        body = '{"process": "multi_agency", ' + body[1:]
    before = counts(session)
    r = getattr(ref.client, method)(url, data=body, headers={**ref.headers, "Content-Type": "application/json"})
    assert r.status_code == 422, r.get_data(as_text=True)[:300]
    assert r.json["error"]["fields"] == {"body": f"nested deeper than {MAX_BODY_DEPTH} levels"}
    assert counts(session) == before
    assert ref.get(f"/api/tasks/{intake}").status_code == 200


def test_bodies_between_the_data_and_body_limits_are_refused_naming_the_entry(api, intake: str) -> None:  # noqa: ANN001
    ref = api("caseworker")
    r = ref.client.put(f"/api/tasks/{intake}/draft", data=nested_body_text(MAX_BODY_DEPTH - 1),
                       headers={**ref.headers, "Content-Type": "application/json"})
    assert r.status_code == 422 and set(r.json["error"]["fields"]) == {"data.x"}, r.json


# ---------------------------------------------------------------- malformed requests


def test_unreadable_json_is_a_400_in_the_envelope(api) -> None:  # noqa: ANN001
    ref = api("caseworker")
    r = ref.client.post("/api/cases", data='{"process": ', headers={**ref.headers, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json["error"]["code"] == "malformed"


def test_a_wrong_method_names_the_allowed_ones(api) -> None:  # noqa: ANN001
    ref = api("caseworker")
    r = ref.client.delete("/api/cases", headers=ref.headers)
    assert r.status_code == 405 and r.json["error"]["code"] == "method_not_allowed"
    assert set(r.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


# ---------------------------------------------------------------- instants and NUL characters


@pytest.mark.parametrize("query,field", [
    ("since=0001-01-01T00:00:00%2B01:00", "since"),
    ("until=0001-01-01T00:00:00%2B14:00", "until"),
    ("since=9999-12-31T23:59:59-14:00", "since"),
    ("until=9999-12-31T23:59:59Z", "until"),
])
@pytest.mark.parametrize("url", ["/api/audit", "/api/audit.csv"])
def test_instants_beyond_any_audit_record_are_refused_naming_them(api, url: str, query: str, field: str) -> None:  # noqa: ANN001
    r = api("admin").get(f"{url}?{query}")
    assert r.status_code == 422, r.get_data(as_text=True)[:300]
    assert set(r.json["error"]["fields"]) == {field}


@pytest.mark.parametrize("url,field", [("/api/audit?user=a%00b", "user"), ("/api/audit.csv?case=%00", "case"),
                                       ("/api/tasks?process=%00", "process")])
def test_nul_characters_in_parameters_are_refused_naming_them(api, url: str, field: str) -> None:  # noqa: ANN001
    r = api("admin").get(url)
    assert r.status_code == 422 and set(r.json["error"]["fields"]) == {field}, r.get_data(as_text=True)[:300]


@pytest.mark.parametrize("url", ["/api/cases/%00", "/api/tasks/a%00", "/api/users/%00"])
def test_nul_characters_in_paths_name_nothing(api, url: str) -> None:  # noqa: ANN001
    ref = api("admin")
    method = "patch" if "users" in url else "get"
    r = getattr(ref.client, method)(url, json={}, headers=ref.headers)
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"


@pytest.mark.parametrize("body,field", [
    ({"process": "multi_agency\u0000"}, "process"),
    ({"process": "multi_agency", "data": {"summary": "相談\u0000"}}, "data.summary"),
    ({"process": "multi_agency", "data": {"roles": [{"role": "\u0000"}]}}, "data.roles.0.role"),
    ({"process": "multi_agency", "data": {"a\u0000": 1}}, "data"),
])
def test_nul_characters_in_bodies_open_no_case(api, session, body: dict, field: str) -> None:  # noqa: ANN001
    before = counts(session)
    r = api("caseworker").post("/api/cases", json=body)
    assert r.status_code == 422 and set(r.json["error"]["fields"]) == {field}, r.json
    assert counts(session) == before


@pytest.mark.parametrize("raw,field", [
    ('{"process": "multi_agency", "data": {"score": NaN}}', "data.score"),
    ('{"process": "multi_agency", "data": {"score": -Infinity}}', "data.score"),
    ('{"process": "multi_agency", "data": {"score": 1e999}}', "data.score"),
    ('{"process": "multi_agency", "data": {"summary": "\\ud800"}}', "data.summary"),
    ('{"process": "multi_agency", "data": {"\\udfff": 1}}', "data"),
])
def test_values_no_database_can_store_open_no_case(api, session, raw: str, field: str) -> None:  # noqa: ANN001
    """Python's parser takes NaN, Infinity, overflowing numbers and lone surrogates; PostgreSQL's
    JSON refuses them (and SQLite's would keep what cannot be read back as JSON)."""
    before = counts(session)
    ref = api("caseworker")
    r = ref.client.post("/api/cases", data=raw, content_type="application/json", headers=ref.headers)
    assert r.status_code == 422 and set(r.json["error"]["fields"]) == {field}, r.get_data(as_text=True)[:300]
    assert counts(session) == before


def test_a_body_over_a_megabyte_is_a_413_in_the_envelope(api) -> None:  # noqa: ANN001
    ref = api("caseworker")
    body = '{"process": "multi_agency", "data": {"summary": "' + "x" * (1024 * 1024) + '"}}'
    r = ref.client.post("/api/cases", data=body, headers={**ref.headers, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json["error"]["code"] == "too_large"
