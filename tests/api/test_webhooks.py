"""POST /webhooks/<source> (Standard Webhooks signatures) and POST /api/messages/<name>: a
signed message starts a case or moves the waiting one; a bad signature, a stale timestamp,
an unknown source, a replay, an unknown message or a malformed body is refused, and then
nothing at all has changed."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from cli.main import main
from engine.models import AuditRecord, Case, CaseEvent, InboundMessage, MessageWait, OutboxEvent, Source
from engine.security import sources
from tests.engine.messages_support import REFERRAL, deploy_message_diagrams
from webhooks.inbound import sign


@pytest.fixture
def hook(app, session, session_factory, env, clock, personas):  # noqa: ANN001, ANN201
    """A registered source `referrals` and a function that posts a signed message to it."""
    deploy_message_diagrams(session_factory, env, clock)
    source = sources.add_source(session, env, None, "referrals", clock.now())
    client = app.test_client()
    sent = iter(range(1, 10**6))

    def post(body: Any, *, secret: str | None = None, webhook_id: str | None = None, at=None, name="referrals",  # noqa: ANN001
             raw: bytes | None = None):  # noqa: ANN202
        text = raw.decode("utf-8", "replace") if raw is not None else json.dumps(body, ensure_ascii=False)
        headers = sign(secret or source.secret, webhook_id or f"msg_{next(sent)}", at or clock.now(), text)
        return client.post(f"/webhooks/{name}", data=raw if raw is not None else text.encode(), headers=headers,
                           content_type="application/json")

    post.source = source  # type: ignore[attr-defined]
    post.client = client  # type: ignore[attr-defined]
    return post


def counts(session) -> tuple[int, ...]:  # noqa: ANN001
    session.rollback()
    return tuple(session.query(m).count() for m in (Case, CaseEvent, OutboxEvent, AuditRecord, MessageWait,
                                                    InboundMessage))


REFERRAL_MSG = {"type": "test_referral", "data": {"summary": "民生委員からの紹介"}, "correlation": {"household_ref": "H-100"}}


def test_signed_message_starts_a_case_and_moves_it(hook, api, session) -> None:  # noqa: ANN001
    r = hook(REFERRAL_MSG)
    assert r.status_code == 202, r.json
    case_id = r.json["case_id"]
    case = session.get(Case, case_id)
    assert (case.process_key, case.summary, case.referring_group_id) == (REFERRAL, "民生委員からの紹介", "secretariat")
    body = api("secretariat").get(f"/api/cases/{case_id}").json
    assert [(w["kind"], w["step"], w["name"]) for w in body["waiting"]] == [("message", "wait_reply", "返信待ち")]
    assert body["waiting"][0]["detail"] == {"message": "test_reply", "correlation": ["household_ref"]}

    r = hook({"type": "test_reply", "data": {"reply": "訪問済み"}, "correlation": {"household_ref": "H-100"}})
    assert (r.status_code, r.json) == (202, {"case_id": case_id})
    body = api("secretariat").get(f"/api/cases/{case_id}").json
    assert [(w["kind"], w["step"]) for w in body["waiting"]] == [("message", "receive_ack")]
    kinds = [(e["kind"], (e["data"] or {}).get("source")) for e in body["history"] if e["kind"] == "message_received"]
    assert kinds == [("message_received", "referrals")] * 2
    session.rollback()  # read what the requests committed, not this session's earlier snapshot
    audit = session.scalars(select(AuditRecord).where(AuditRecord.action == "message.receive")).all()
    assert [a.actor_name for a in audit] == ["source:referrals"] * 2


def test_bad_signature_stale_timestamp_and_unknown_source_get_401(hook, session, clock) -> None:  # noqa: ANN001
    before = counts(session)
    other = sources.new_secret()
    answers = [
        hook(REFERRAL_MSG, secret=other),
        hook(REFERRAL_MSG, at=clock.now() - timedelta(minutes=5, seconds=1)),
        hook(REFERRAL_MSG, at=clock.now() + timedelta(minutes=6)),
        hook(REFERRAL_MSG, name="nobody"),
    ]
    assert [a.status_code for a in answers] == [401] * 4
    assert all(a.json["error"]["code"] == "unauthorized" for a in answers)
    # An unknown source is answered exactly like a bad signature.
    assert answers[3].json == answers[0].json
    assert counts(session) == before
    # Unsigned, and signed over a different body.
    assert hook.client.post("/webhooks/referrals", json=REFERRAL_MSG).status_code == 401
    headers = sign(hook.source.secret, "msg_x", clock.now(), json.dumps(REFERRAL_MSG))
    tampered = json.dumps({**REFERRAL_MSG, "correlation": {"household_ref": "H-999"}})
    assert hook.client.post("/webhooks/referrals", data=tampered, headers=headers).status_code == 401
    for broken in ("v1,not-base64!!", "v2,abc", "garbage", ""):
        assert hook.client.post("/webhooks/referrals", data=json.dumps(REFERRAL_MSG),
                                headers={**headers, "webhook-signature": broken}).status_code == 401
    assert counts(session) == before


def test_replayed_webhook_id_gets_409(hook, session) -> None:  # noqa: ANN001
    assert hook(REFERRAL_MSG, webhook_id="msg_once").status_code == 202
    before = counts(session)
    r = hook(REFERRAL_MSG, webhook_id="msg_once")
    assert r.status_code == 409 and r.json["error"]["fields"] == {"webhook-id": "already received"}
    assert counts(session) == before


def test_refused_delivery_does_not_use_up_its_webhook_id(hook, session) -> None:  # noqa: ANN001
    assert hook({"type": "test_nothing_takes_this"}, webhook_id="msg_retry").status_code == 404
    assert hook(REFERRAL_MSG, webhook_id="msg_retry").status_code == 202


def test_webhook_ids_are_kept_24_hours_then_pruned(hook, session, clock) -> None:  # noqa: ANN001
    assert hook(REFERRAL_MSG, webhook_id="msg_old").status_code == 202
    clock.advance(hours=23)
    assert sources.prune_received(session, clock.now()) == 0
    clock.advance(hours=1, seconds=1)
    assert sources.prune_received(session, clock.now()) == 1


def test_unknown_message_gets_404_no_match(hook, session) -> None:  # noqa: ANN001
    before = counts(session)
    for body in ({"type": "test_unheard_of", "data": {}},
                 {"type": "test_reply", "data": {}, "correlation": {"household_ref": "H-404"}}):
        r = hook(body)
        assert r.status_code == 404 and r.json["error"]["code"] == "no_match", r.json
    assert counts(session) == before


@pytest.mark.parametrize(("raw", "field"), [
    pytest.param(b"{not json", "body", id="not-json"),
    pytest.param(b"\xff\xfe", None, id="not-utf8"),  # cannot even be signed over as text: 401
    pytest.param(b"[1, 2]", "body", id="not-object"),
    pytest.param(b'{"data": {}}', "type", id="no-type"),
    pytest.param(b'{"type": "test_referral", "data": [1]}', "data", id="data-not-object"),
    pytest.param(b'{"type": "test_referral", "data": {}, "extra": 1}', "extra", id="unknown-field"),
    pytest.param(b'{"type": "test_referral", "correlation": "H-1"}', "correlation", id="correlation-not-object"),
    pytest.param(b'{"type": 12}', "type", id="type-not-text"),
    pytest.param(('{"type": "test_referral", "data": {"a": ' + '[' * 40 + ']' * 40 + '}}').encode(), "data",
                 id="data-too-deep"),
])
def test_malformed_body_gets_400_naming_the_field(hook, session, raw: bytes, field: str | None) -> None:  # noqa: ANN001
    before = counts(session)
    r = hook(None, raw=raw)
    if field is None:
        assert r.status_code == 401
    else:
        assert r.status_code == 400, r.json
        assert r.json["error"]["code"] == "malformed" and field in r.json["error"]["fields"]
    assert counts(session) == before


def test_body_over_the_size_limit_gets_413_in_the_envelope(hook, session) -> None:  # noqa: ANN001
    before = counts(session)
    r = hook({"type": "test_referral", "data": {"note": "x" * (1024 * 1024)}})
    assert r.status_code == 413 and r.json["error"]["code"] == "too_large"
    assert counts(session) == before


def test_source_tied_to_a_process_reaches_only_its_cases(hook, session, env, clock, app) -> None:  # noqa: ANN001
    tied = sources.add_source(session, env, None, "waiting-only", clock.now(), "test_waiting_process")
    r = hook(REFERRAL_MSG, secret=tied.secret, name="waiting-only")
    assert r.status_code == 404 and r.json["error"]["code"] == "no_match"


def test_staff_tools_send_messages_with_a_token(hook, api, session) -> None:  # noqa: ANN001
    r = api("secretariat").post("/api/messages/test_referral",
                                json={"data": {"summary": "窓口から"}, "correlation": {"household_ref": "H-200"}})
    assert r.status_code == 202, r.json
    case_id = r.json["case_id"]
    r = api("admin").post("/api/messages/test_reply", json={"correlation": {"household_ref": "H-200"}, "data": {}})
    assert (r.status_code, r.json) == (202, {"case_id": case_id})
    before = counts(session)
    assert api("caseworker").post("/api/messages/test_ack", json={"correlation": {"household_ref": "H-200"}}
                                  ).status_code == 403
    r = api("secretariat").post("/api/messages/test_ack", json={"correlation": {"household_ref": "H-999"}})
    assert r.status_code == 404 and r.json["error"]["code"] == "no_match"
    r = api("secretariat").post("/api/messages/test_ack", json={"data": "text"})
    assert r.status_code == 400 and "data" in r.json["error"]["fields"]
    assert hook.client.post("/api/messages/test_ack", json={}).status_code == 401
    assert counts(session) == before


def test_sources_api_is_for_administrators(hook, api, session) -> None:  # noqa: ANN001
    admin = api("admin")
    r = admin.post("/api/sources", json={"name": "shakyo", "process": REFERRAL})
    assert r.status_code == 201, r.json
    assert r.json["secret"].startswith("whsec_") and r.json["url"] == "/webhooks/shakyo"
    listed = admin.get("/api/sources").json
    assert [s["name"] for s in listed] == ["referrals", "shakyo"] and all("secret" not in s for s in listed)
    assert admin.post("/api/sources", json={"name": "shakyo"}).status_code == 409
    assert admin.post("/api/sources", json={"name": "Bad Name!"}).status_code == 422
    assert admin.post("/api/sources", json={"name": "x", "process": "nope"}).status_code == 422
    assert api("secretariat").get("/api/sources").status_code == 403
    assert api("secretariat").post("/api/sources", json={"name": "y"}).status_code == 403
    assert admin.client.open("/api/sources/shakyo", method="DELETE", headers=admin.headers).status_code == 200
    assert admin.client.open("/api/sources/shakyo", method="DELETE", headers=admin.headers).status_code == 404
    session.rollback()
    assert session.scalar(select(Source.name).where(Source.name == "shakyo")) is None


def test_cli_source_add_prints_the_secret_on_its_last_line(app, session_factory, env, clock, database_url,  # noqa: ANN001
                                                            monkeypatch, capsys) -> None:
    deploy_message_diagrams(session_factory, env, clock)
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["source", "add", "minsei", "--process", REFERRAL]) == 0
    secret = capsys.readouterr().out.splitlines()[-1]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    assert main(["source", "add", "minsei"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["source", "list"]) == 0
    assert capsys.readouterr().out.split("\t")[:3] == ["minsei", REFERRAL, "secretariat"]

    body = json.dumps(REFERRAL_MSG)
    r = app.test_client().post("/webhooks/minsei", data=body, headers=sign(secret, "msg_cli", clock.now(), body),
                               content_type="application/json")
    assert r.status_code == 202, r.json
    assert main(["source", "remove", "minsei"]) == 0
    r = app.test_client().post("/webhooks/minsei", data=body, headers=sign(secret, "msg_cli2", clock.now(), body),
                               content_type="application/json")
    assert r.status_code == 401


@pytest.mark.parametrize("raw", [
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="array-nested-past-the-recursion-limit"),
    pytest.param(b'{"type": "test_referral", "data": ' + b"{\"a\": " * 5000 + b"1" + b"}" * 5001, id="deep-data"),
    pytest.param(b'{"type": "test_referral", "data": {"n": ' + b"9" * 5000
                 + b'}, "correlation": {"household_ref": "H-9"}}', id="integer-of-5000-digits"),
    pytest.param(b'{"type": "test_referral", "data": {"n": 1e999999}, "correlation": {"household_ref": "H-9"}}',
                 id="float-overflowing-to-infinity"),
    pytest.param(b'{"type": "test_referral", "data": {"n": NaN}, "correlation": {"household_ref": "H-9"}}', id="nan"),
    pytest.param(b'{"type": "test_\\u0000referral", "data": {}}', id="nul-in-type"),
    pytest.param(b'{"type": "test_referral", "data": {"summary": "a\\u0000b"}}', id="nul-in-data"),
    pytest.param(b'{"type": "test_referral", "data": {"a\\u0000": 1}}', id="nul-in-a-key"),
    pytest.param(b'{"type": "test_referral", "data": {"s": "\\ud800"}, "correlation": {"household_ref": "H-9"}}',
                 id="lone-surrogate"),
    pytest.param(b'{"type": "' + b"x" * 100_000 + b'"}', id="very-long-type"),
    pytest.param(b'{"type": "test_reply", "correlation": {"household_ref": {"x": [1]}}}', id="correlation-value-object"),
    pytest.param(b'{"type": "test_reply", "correlation": {"\\u0000": "a\\u0000"}}', id="nul-in-correlation"),
    pytest.param(b'{"type": ["test_referral"]}', id="type-a-list"),
    pytest.param(b'{"type": null, "data": null, "correlation": null}', id="all-null"),
    pytest.param(b"", id="empty-body"),
    pytest.param(b"null", id="null-body"),
])
def test_odd_signed_body_never_gets_a_500(hook, session, raw: bytes) -> None:  # noqa: ANN001
    """Correctly signed, so that the body is read: whatever it holds, a clear error (or, for a
    message that fits, 202) and, on an error, nothing changed."""
    before = counts(session)
    r = hook(None, raw=raw)
    assert r.status_code in (202, 400, 401, 404, 409, 413, 422), (r.status_code, r.get_data()[:300])
    assert r.is_json
    if r.status_code != 202:
        assert r.json["error"]["code"] and r.json["error"]["message"]
        assert counts(session) == before


def _odd_headers(secret: str, at, body: str) -> list[dict[str, str]]:  # noqa: ANN001
    good = sign(secret, "msg_odd", at, body)
    odd = [{}, {**good, "webhook-timestamp": "soon"}, {**good, "webhook-timestamp": "9" * 400},
           {**good, "webhook-timestamp": "-1"}, {**good, "webhook-timestamp": "1e10"},
           {**good, "webhook-signature": ""}, {**good, "webhook-signature": "v1,"},
           {**good, "webhook-signature": "v1,@@@not base64@@@"}, {**good, "webhook-signature": "v1a," + "A" * 10_000},
           {**good, "webhook-id": ""}, {**good, "webhook-id": "x" * 10_000}, {**good, "webhook-id": "ｍｓｇ_全角"}]
    return odd + [{k: v for k, v in good.items() if k != name} for name in good]


def test_odd_headers_and_source_names_get_401_never_a_500(hook, session, clock) -> None:  # noqa: ANN001
    before = counts(session)
    body = json.dumps(REFERRAL_MSG)
    for headers in _odd_headers(hook.source.secret, clock.now(), body):
        r = hook.client.post("/webhooks/referrals", data=body.encode(), headers=headers, content_type="application/json")
        assert r.status_code == 401 and r.json["error"]["code"] == "unauthorized", (headers, r.status_code)
    for name in ("%00", "a%00b", "x" * 5000, "%E2%98%83", "REFERRALS", "%FF"):
        r = hook.client.post(f"/webhooks/{name}", data=body.encode(), content_type="application/json",
                             headers=sign(hook.source.secret, "msg_name", clock.now(), body))
        assert r.status_code in (401, 404), (name, r.status_code)
        assert r.is_json, name
    assert counts(session) == before
