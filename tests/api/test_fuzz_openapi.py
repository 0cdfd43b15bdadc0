"""Schemathesis fuzzes every operation of the OpenAPI document the running server serves,
with valid and invalid input, as several personas: no answer may be a 500, or carry a status,
content type or body the document does not describe.

The app runs as a real HTTP server on localhost (a thread), over a fresh database holding cases
and open tasks. Operations that take away credentials (revoking tokens, changing users) run
last, as throwaway users, so that they cannot lock the personas out of the rest of the run.

The coverage phase is driven through schemathesis.generation.drivers (not re-exported at the
top level), hence the narrow version pin in pyproject.toml."""

from __future__ import annotations

import io
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate as validate_spec
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.drivers import CoverageGenerator
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.generation.overrides import Override
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from engine.models import Escalation, HumanTask, OutboxEvent, WebhookDelivery, WebhookSubscription, WebSession
from engine.security import sessions, users
from engine.status import Audience, DeliveryStatus
from webhooks import signing

# Examples per operation and generation mode; derandomized, so every run sends the same requests.
# TSUNAGU_FUZZ_EXAMPLES=500 fuzzes harder (minutes instead of a minute).
EXAMPLES = int(os.environ.get("TSUNAGU_FUZZ_EXAMPLES", "30"))
# Run last and in this order, as throwaway users.
# Those that disable or take credentials (users, tokens) go last of all.
DESTRUCTIVE = [("DELETE", "/api/sessions/{session_id}"), ("DELETE", "/api/webhooks/{sub_id}"),
               ("DELETE", "/api/sources/{name}"), ("PATCH", "/api/users/{name}"), ("DELETE", "/api/tokens/{token_id}")]
# Names of messages the processes wait for or start with (POST /api/messages/{name}).
MESSAGES = ["multi_agency_referral", "outreach_referral"]
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
PERSONAS = ("caseworker", "secretariat", "lead", "supervisor", "outsider", "elder_care", "admin")


def status_documented_explicitly(ctx, response, case) -> None:  # noqa: ANN001
    """Stricter than status_code_conformance, which any `default` response satisfies: each
    status an operation sends is listed on it by number."""
    method = case.method.upper()
    if method != case.operation.method.upper():
        # The coverage phase also tries methods the path does not accept: 405 naming those it
        # does (OPTIONS: 200 naming them).
        expected = 200 if method == "OPTIONS" else 405
        allow = {k.lower(): v for k, v in response.headers.items()}.get("allow")
        if response.status_code != expected or not allow:
            raise AssertionError(f"{method} {case.operation.path} answered {response.status_code} "
                                 f"(Allow: {allow}), not {expected} with an Allow header")
        return
    listed = {str(code) for code in case.operation.responses.status_codes} - {"default"}
    if str(response.status_code) not in listed:
        raise AssertionError(f"{case.operation.label} answered {response.status_code}, "
                             f"which it does not document (documented: {', '.join(sorted(listed))})")


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          status_documented_explicitly]


@dataclass
class Served:
    url: str
    tokens: dict[str, str]
    # Path parameter → values that exist, so that the fuzzer also reaches past the lookup;
    # (method, path, parameter) → values for that operation alone (a `name` is a user's, a
    # message's or a source's).
    known: dict = field(default_factory=dict)

    def values(self, method: str, path: str, name: str) -> list:
        return self.known.get((method.upper(), path, name)) or self.known[name]


def _seed(api) -> dict[str, list]:  # noqa: ANN001
    """Cases with open tasks in several queues (one claimed), consent given on some."""
    ref, sec = api("caseworker"), api("secretariat")
    for summary in ("高齢の母と無職の息子", "ヤングケアラーの疑い"):
        case = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": summary}}).json
        intake = case["open_tasks"][0]
        r = ref.post(f"/api/tasks/{intake['id']}/complete", json={"data": {
            "multiple_targets": True, "all_targets_have_lead_department": True,
            "lead_department_can_handle_alone": False, "coordination_problem": False,
            "summary": summary, "consent": "given"}})
        assert r.status_code == 200, r.json
    assert ref.post("/api/cases", json={"process": "emergency", "data": {"summary": "異臭"}}).status_code == 201
    tasks = sec.get("/api/tasks").json + ref.get("/api/tasks").json
    assert sec.post(f"/api/tasks/{tasks[0]['id']}/claim").status_code == 200
    return {"task_id": [t["id"] for t in tasks], "case_id": sorted({t["case_id"] for t in tasks})}


def _subscription(session, now) -> WebhookSubscription:  # noqa: ANN001
    """Written directly: creating one through the API resolves its host. Never contacted (the
    delivery sweep does not run here)."""
    sub = WebhookSubscription(url="https://hooks.example.org/tsunagu", events=["case.created", "task.created"],
                              secret=signing.new_secret(), created_by="kanri.kato", created_at=now, updated_at=now)
    session.add(sub)
    session.flush()
    return sub


def _seed_more(session, api, personas, now) -> dict:  # noqa: ANN001
    """A page session for each persona; a webhook subscription with events dead, delivered and
    pending (the seeded cases' outbox); a message source."""
    for persona in PERSONAS:
        sessions.add(session, getattr(personas, persona), now, user_agent=BROWSER, address="127.0.0.1")
    sub = _subscription(session, now)
    events = list(session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))
    for event, status in zip(events, [DeliveryStatus.DEAD, DeliveryStatus.DELIVERED, DeliveryStatus.PENDING] * 3,
                             strict=False):
        session.add(WebhookDelivery(subscription_id=sub.id, event_id=event.id, case_id=event.case_id, kind=event.kind,
                                    status=status, attempts=1, next_attempt_at=now, created_at=now,
                                    delivered_at=now if status == DeliveryStatus.DELIVERED else None))
    # A 要対応 item of the supervisor's group, as the escalation sweep writes one.
    task = session.scalar(select(HumanTask).where(HumanTask.group_id == "secretariat").limit(1))
    item = Escalation(task_id=task.id, case_id=task.case_id, level=1, audience=Audience.SUPERVISOR,
                      group_id=task.group_id, due_at=now, created_at=now)
    session.add(item)
    session.flush()
    known = {"session_id": list(session.scalars(select(WebSession.id))), "sub_id": [sub.id],
             "event_id": [e.id for e in events[:9]], ("POST", "/api/messages/{name}", "name"): MESSAGES,
             "process_key": ["multi_agency", "emergency", "no_such_process"],
             "key": ["emergency", "multi_agency", "intake"], "version": [1],
             ("GET", "/api/processes/{key}/versions/{version}/dmn/{name}", "name"): ["intake_criteria.dmn",
                                                                                      "intake_criteria", "x.dmn"],
             ("GET", "/api/forms/{key}", "key"): ["advice"], ("PUT", "/api/forms/{key}", "key"): ["advice"],
             "escalation_id": [item.id]}
    # Ends the transaction, so that no snapshot of it is held while the server writes.
    session.commit()
    assert api("admin").post("/api/sources", json={"name": "fuzz-kept"}).status_code == 201
    # A participation place and a consultation day (issue 13) for the paths that name one.
    place = api("secretariat").post("/api/places", json={"name": "ふらっとカフェ", "kind": "community"})
    day = api("secretariat").post("/api/events", json={"title": "くらしを守る総合相談会", "held_on": "2026-03-20",
                                                        "place": "市役所", "groups": ["hokatsu-center"]})
    assert place.status_code == day.status_code == 201
    known["place_id"] = [place.json["id"]]
    for method, path in (("GET", "/api/events/{event_id}"), ("POST", "/api/events/{event_id}/consultations")):
        known[(method, path, "event_id")] = [day.json["id"]]
    return known


def _seed_case_file(api, case_id: str) -> dict:  # noqa: ANN001
    """A support record and a document on a case the caseworker opened (issue 12)."""
    ref = api("caseworker")
    note = ref.post(f"/api/cases/{case_id}/notes", json={"kind": "visit", "text": "自宅を訪問"})
    doc = ref.client.post(f"/api/cases/{case_id}/attachments", headers=ref.headers,
                          data={"file": (io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "a.pdf")}, content_type="multipart/form-data")
    assert note.status_code == doc.status_code == 201
    return {"note_id": [note.json["id"]], "attachment_id": [doc.json["id"]]}


@pytest.fixture
def served(app, api, personas, session, clock) -> Iterator[Served]:  # noqa: ANN001
    from werkzeug.serving import make_server

    known = _seed(api)
    known.update(_seed_more(session, api, personas, clock.now()))
    known.update(_seed_case_file(api, known["case_id"][0]))
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, name="fuzz-server", daemon=True)
    thread.start()
    yield Served(f"http://127.0.0.1:{httpd.server_port}", dict(personas.tokens), known)
    httpd.shutdown()
    thread.join(timeout=10)
    httpd.server_close()


def _fuzz(operation, served: Served, tokens: list[str], http: requests.Session, failures: list[str]) -> None:  # noqa: ANN001
    """Valid input, invalid input, and (where the path names something) valid input about
    things that exist. Every failure is kept, not only the first, so that one run shows all
    that is wrong."""
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        try:
            _fuzz_with(operation.as_strategy(generation_mode=mode), f"{operation.label} ({mode.value})",
                       served.url, tokens, http, failures)
        except Unsatisfiable:
            # Nothing of the operation can be made invalid (it takes no input).
            assert mode is GenerationMode.NEGATIVE, operation.label
    _coverage(operation, served, tokens, http, failures)
    names = re.findall(r"{(\w+)}", operation.path)
    if names:
        existing = st.fixed_dictionaries({
            name: st.sampled_from(served.values(operation.method, operation.path, name)) for name in names
        }).flatmap(lambda values: operation.as_strategy(path_parameters=values))
        _fuzz_with(existing, f"{operation.label} (existing {', '.join(names)})", served.url, tokens, http, failures)


def _coverage(operation, served: Served, tokens: list[str], http: requests.Session, failures: list[str]) -> None:  # noqa: ANN001
    """Schemathesis's coverage phase: boundary and just-out-of-bounds values of every parameter
    and body field (limit=0, limit=1001, offset=2^31, missing or mistyped fields), each once."""
    generator = CoverageGenerator(
        operation=operation, generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        generation_config=operation.schema.config.generation_for(operation=operation, phase="coverage"),
        auth_storage=None, override=Override(), feedback=FeedbackSources())
    for i, case in enumerate(generator):
        headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
        response = case.call(base_url=served.url, session=http, headers=headers)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as exc:
            failures.append(f"{operation.label} (coverage): {exc}")


def _fuzz_with(cases, label: str, base_url: str, tokens: list[str], http: requests.Session,  # noqa: ANN001
               failures: list[str]) -> None:
    @given(case=cases, token=st.sampled_from(tokens))
    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case, token: str) -> None:  # noqa: ANN001
        headers = {"Authorization": f"Bearer {token}"}
        response = case.call(base_url=base_url, session=http, headers=headers)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as exc:
            failures.append(f"{label}: {exc}")

    run()


def test_the_served_document_is_valid_openapi(served: Served) -> None:
    document = requests.get(f"{served.url}/api/openapi.json", timeout=10).json()
    validate_spec(document)
    assert document["security"] == [{"bearer": []}]
    error = {"$ref": "#/components/schemas/ApiError"}
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            if method == "parameters":
                continue
            responses = op["responses"]
            assert {"401", "503", "default"} <= set(responses), (method, path)
            for status, response in responses.items():
                if status.startswith(("4", "5")) or status == "default":
                    response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]] \
                        if "$ref" in response else response
                    assert response["content"]["application/json"]["schema"] == error, (method, path, status)
    csv = document["paths"]["/api/audit.csv"]["get"]["responses"]["200"]["content"]
    assert list(csv) == ["text/csv"]


def test_every_operation_answers_as_its_document_says(served: Served, session, clock) -> None:  # noqa: ANN001
    schema = schemathesis.openapi.from_url(f"{served.url}/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    failures: list[str] = []
    by_key = {(op.method.upper(), op.path): op for op in operations}
    with requests.Session() as http:
        tokens = [served.tokens[p] for p in PERSONAS]
        for key, operation in by_key.items():
            if key not in DESTRUCTIVE:
                _fuzz(operation, served, tokens, http, failures)
        # An administrator (who may revoke anyone's tokens and change any user) and a caseworker,
        # each with tokens to lose; only they are named to the destructive operations.
        # Their page sessions, a subscription and sources to end and delete, too.
        throwaway, made = [], []
        for name, roles in (("fuzz.admin", ["admin"]), ("fuzz.staff", ["staff"])):
            made.append(users.add_user(session, name, ["hokatsu-center"], roles, clock.now(), name))
            throwaway += [users.issue_token(session, made[-1], clock.now()) for _ in range(5)]
            for _ in range(3):
                sessions.add(session, made[-1], clock.now(), user_agent=BROWSER)
        gone = _subscription(session, clock.now()).id
        session.commit()
        ended = list(session.scalars(select(WebSession.id).where(WebSession.user_id.in_([u.id for u in made]))))
        token_ids = [t.id for u in made for t in users.list_tokens(session, u)]
        session.commit()
        doomed = [f"fuzz-gone-{i}" for i in range(3)]
        for name in doomed:
            assert http.post(f"{served.url}/api/sources", json={"name": name}, timeout=10,
                             headers={"Authorization": f"Bearer {served.tokens['admin']}"}).status_code == 201
        served.known.update({
            "session_id": ended, "sub_id": [gone], "token_id": token_ids,
            ("PATCH", "/api/users/{name}", "name"): [u.name for u in made],
            ("DELETE", "/api/sources/{name}", "name"): doomed})
        for key in DESTRUCTIVE:
            _fuzz(by_key[key], served, throwaway, http, failures)
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)
