"""Consent gating, token revocation, sign-in limits, and data minimisation."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.errors import Unauthorized
from engine.models import OutboxEvent
from engine.security import users
from engine.security.users import TooManyAttempts

INTAKE = {"multiple_targets": True, "all_targets_have_lead_department": False,
          "lead_department_can_handle_alone": False, "coordination_problem": True,
          "summary": "山田花子さん（豊中市○○町1-2-3）宅、ごみ屋敷", "consent": "not_given"}


def _intake(api, consent: str) -> dict:  # noqa: ANN001
    ref = api("caseworker")
    case = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json
    ref.post(f"/api/tasks/{case['open_tasks'][0]['id']}/complete", json={"data": {**INTAKE, "consent": consent}})
    return ref.get(f"/api/cases/{case['id']}").json


def test_consent_is_recorded_with_date_and_who(api, clock) -> None:  # noqa: ANN001
    case = _intake(api, "unknown")
    assert case["consent"] == "unknown" and case["consent_recorded_by"] == "hokatsu.sato"
    clock.advance(days=3)
    sec = api("secretariat")
    after = sec.post(f"/api/cases/{case['id']}/consent", json={"consent": "given"}).json
    assert after["consent"] == "given" and after["consent_recorded_by"] == "kyosei.tanaka"
    assert after["consent_recorded_at"].startswith(clock.now().date().isoformat())
    assert any(h["kind"] == "consent_recorded" and h["data"] == {"consent": "given", "previous": "unknown"}
               for h in after["history"])
    bad = sec.post(f"/api/cases/{case['id']}/consent", json={"consent": "yes"})
    assert bad.status_code == 422 and "consent" in bad.json["error"]["fields"]


def test_sharing_beyond_the_meeting_needs_consent(api) -> None:  # noqa: ANN001
    case = _intake(api, "not_given")
    sec, housing = api("secretariat"), api("outsider")
    share = {"group": "wakamono-sodan", "purpose": "重層的支援会議での評価"}
    refused = sec.post(f"/api/cases/{case['id']}/shares", json=share)
    assert refused.status_code == 409 and "consent" in refused.json["error"]["fields"]
    assert housing.get(f"/api/cases/{case['id']}").status_code == 404
    sec.post(f"/api/cases/{case['id']}/consent", json={"consent": "given"})
    assert sec.post(f"/api/cases/{case['id']}/shares", json=share).status_code == 201
    assert housing.get(f"/api/cases/{case['id']}").status_code == 200


def test_revoked_token_stops_working_at_once(api, personas) -> None:  # noqa: ANN001
    ref = api("caseworker")
    assert ref.get("/api/me").status_code == 200
    token_id = ref.get("/api/tokens").json[0]["id"]
    assert ref.client.delete(f"/api/tokens/{token_id}", headers=ref.headers).status_code == 200
    assert ref.get("/api/me").status_code == 401


def test_others_cannot_revoke_or_list_my_tokens(api) -> None:  # noqa: ANN001
    mine = api("caseworker").get("/api/tokens").json[0]["id"]
    other = api("outsider")
    assert other.client.delete(f"/api/tokens/{mine}", headers=other.headers).status_code == 404
    assert mine not in [t["id"] for t in other.get("/api/tokens").json]
    assert other.get("/api/tokens", query_string={"all": "true"}).status_code == 403
    assert mine in [t["id"] for t in api("admin").get("/api/tokens", query_string={"all": "true"}).json]


def test_disabled_user_is_locked_out(api, session, clock) -> None:  # noqa: ANN001
    admin = api("admin")
    r = admin.client.patch("/api/users/hokatsu.sato", json={"active": False}, headers=admin.headers)
    assert r.status_code == 200 and r.json["active"] is False
    assert api("caseworker").get("/api/me").status_code == 401


def test_sign_in_is_rate_limited_per_address(session, clock, personas) -> None:  # noqa: ANN001
    for i in range(users.MAX_FAILURES_PER_ORIGIN):
        with pytest.raises(Unauthorized):
            users.authenticate(session, f"guess{i}", "x", "192.0.2.7", clock.now())
    with pytest.raises(TooManyAttempts):
        users.authenticate(session, "anyone", "x", "192.0.2.7", clock.now())


def test_passwords_are_stored_as_argon2_hashes(session, personas) -> None:  # noqa: ANN001
    users.set_password(personas.caseworker, "correct horse battery")
    assert personas.caseworker.password_hash.startswith("$argon2")
    assert "correct horse" not in personas.caseworker.password_hash


def test_queue_and_outgoing_events_carry_no_personal_data(api, session) -> None:  # noqa: ANN001
    _intake(api, "given")
    queue = api("secretariat").get("/api/tasks").json
    assert queue and all("山田" not in str(t) and "豊中市" not in str(t) for t in queue)
    payloads = [e.payload for e in session.scalars(select(OutboxEvent))]
    assert payloads and all("山田" not in str(p) and "豊中市" not in str(p) for p in payloads)
    assert {"case_number", "case_id"} <= set(payloads[0])


def test_responses_carry_security_headers(app, api) -> None:  # noqa: ANN001
    for response in (api("caseworker").get("/api/me"), app.test_client().get("/api/openapi.json")):
        h = response.headers
        assert "default-src 'self'" in h["Content-Security-Policy"] and "frame-ancestors 'none'" in h[
            "Content-Security-Policy"]
        assert h["X-Frame-Options"] == "DENY" and h["X-Content-Type-Options"] == "nosniff"
    assert api("caseworker").get("/api/me").headers["Cache-Control"] == "no-store"
