"""Who may do what to a case, over every endpoint: persona × case relation × action.

Every URL rule of the app must have a row in ENDPOINTS, so a new endpoint without an
access rule fails `test_every_endpoint_has_an_access_rule`. Pages (the staff UI) are in
PAGES; both tables are checked the same way.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import update

from engine.casework.timers import fire_due
from engine.models import WebhookDelivery
from engine.security import sessions
from engine.status import DeliveryStatus
from engine.workflow.limits import MAX_INT
from tests.security.pages import CASE_READ, FB, NF, OK, PAGES, TASK_ACT, checked_elsewhere, everyone

INTAKE = {"multiple_targets": True, "all_targets_have_lead_department": False,
          "lead_department_can_handle_alone": False, "coordination_problem": False,
          "summary": "本人・家族の氏名を含む相談内容", "consent": "given"}
MEETING = {"held_on": "2026-04-02", "participants": ["choju-anshin"],
           "roles": [{"group": "choju-anshin", "role": "介護サービスの調整"}]}

# Case relations and the persona holding them
RELATIONS = {
    "referring": "caseworker",      # staff of the agency that opened the case
    "secretariat": "secretariat",   # secretariat member
    "lead": "lead",                 # coordination lead
    "participant": "elder_care",    # group named in the support meeting
    "outsider": "outsider",         # another agency, no link
    "admin": "admin",               # administrator: manages users, sees no case data by role
}


@dataclass(frozen=True)
class Endpoint:
    method: str
    url: str  # {case}, {task}, {token}, {user}, {session} (a page session of wakamono.ito) are filled in
    expect: dict[str, str]  # relation -> ok / 404 / 403
    body: Any = None


ADMIN_ONLY = {**everyone(FB), "admin": OK}

# endpoint name (Flask) -> how it is exercised and who may
ENDPOINTS: dict[str, Endpoint] = {
    "groups.list_groups": Endpoint("GET", "/api/groups", everyone(OK)),
    "groups.me": Endpoint("GET", "/api/me", everyone(OK)),
    "roles.list_roles": Endpoint("GET", "/api/roles", everyone(OK)),
    "cases.open_case": Endpoint("POST", "/api/cases", {**everyone(OK), "secretariat": OK},
                                {"process": "emergency", "group": "{own_group}", "data": {"summary": "異臭"}}),
    "cases.list_cases": Endpoint("GET", "/api/cases", everyone(OK)),
    "cases.get_case": Endpoint("GET", "/api/cases/{case}", CASE_READ),
    "tasks.queue": Endpoint("GET", "/api/tasks", everyone(OK)),
    "tasks.get_task": Endpoint("GET", "/api/tasks/{task}", CASE_READ),
    "tasks.claim": Endpoint("POST", "/api/tasks/{task}/claim", TASK_ACT),
    "tasks.release": Endpoint("POST", "/api/tasks/{task}/release",
                              {**TASK_ACT, "secretariat": FB}),  # only the assignee or a supervisor
    "tasks.assign": Endpoint("POST", "/api/tasks/{task}/assign", {**everyone(FB)}, {"assignee": "kyosei.tanaka"}),
    "tasks.draft": Endpoint("PUT", "/api/tasks/{task}/draft", TASK_ACT, {"data": {"progress": "途中"}}),
    "tasks.complete": Endpoint("POST", "/api/tasks/{task}/complete", TASK_ACT,
                               {"data": {"next": "continue", "progress": "経過良好"}}),
    "admin.record_consent": Endpoint("POST", "/api/cases/{case}/consent", CASE_READ, {"consent": "given"}),
    "admin.share": Endpoint("POST", "/api/cases/{case}/shares",
                            {"referring": FB, "secretariat": OK, "lead": OK, "participant": FB, "outsider": NF,
                             "admin": NF}, {"group": "jutaku", "purpose": "重層的支援会議での評価"}),
    "admin.list_tokens": Endpoint("GET", "/api/tokens", everyone(OK)),
    "admin.revoke_token": Endpoint("DELETE", "/api/tokens/{token}", everyone(OK)),
    "admin.list_sessions": Endpoint("GET", "/api/sessions", everyone(OK)),
    "admin.end_session": Endpoint("DELETE", "/api/sessions/{session}", {**everyone(NF), "outsider": OK, "admin": OK}),
    "admin.list_users": Endpoint("GET", "/api/users", {**everyone(FB), "admin": OK}),
    "admin.create_user": Endpoint("POST", "/api/users", {**everyone(FB), "admin": OK},
                                  {"name": "matrix.new", "display_name": "新規 職員", "groups": ["hokatsu-center"],
                                   "roles": ["staff"], "password": "a long enough passphrase"}),
    "admin.change_user": Endpoint("PATCH", "/api/users/{user}", {**everyone(FB), "admin": OK}, {"add_roles": ["staff"]}),
    "admin.search_audit": Endpoint("GET", "/api/audit", {**everyone(FB), "lead": OK, "admin": OK}),
    "admin.export_audit": Endpoint("GET", "/api/audit.csv", {**everyone(FB), "lead": OK, "admin": OK}),
    "api-docs.openapi_json": Endpoint("GET", "/api/openapi.json", everyone(OK)),
    # outgoing webhooks: administrators only
    "webhooks.create": Endpoint("POST", "/api/webhooks", ADMIN_ONLY,
                                {"url": "https://hooks.example.org/tsunagu", "events": ["case.created"]}),
    "webhooks.list_webhooks": Endpoint("GET", "/api/webhooks", ADMIN_ONLY),
    "webhooks.get_webhook": Endpoint("GET", "/api/webhooks/{webhook}", ADMIN_ONLY),
    "webhooks.change": Endpoint("PATCH", "/api/webhooks/{webhook}", ADMIN_ONLY, {"description": "福祉総合システム"}),
    "webhooks.remove": Endpoint("DELETE", "/api/webhooks/{webhook}", ADMIN_ONLY),
    "webhooks.rotate": Endpoint("POST", "/api/webhooks/{webhook}/rotate", ADMIN_ONLY),
    "webhooks.ping": Endpoint("POST", "/api/webhooks/{webhook}/ping", ADMIN_ONLY),
    "webhooks.deliveries": Endpoint("GET", "/api/webhooks/{webhook}/deliveries", ADMIN_ONLY),
    "webhooks.events": Endpoint("GET", "/api/webhooks/{webhook}/events", ADMIN_ONLY),
    "webhooks.resend": Endpoint("POST", "/api/webhooks/{webhook}/deliveries/{event}/resend", ADMIN_ONLY),
    # issue 11: messages. The deployed diagrams take no message, so a sender who passes the
    # access check gets 404 no_match; the others 403.
    "messages.send_message": Endpoint("POST", "/api/messages/matrix_probe",
                                      {**everyone(FB), "secretariat": NF, "admin": NF}, {"data": {}}),
    "messages.list_sources": Endpoint("GET", "/api/sources", {**everyone(FB), "admin": OK}),
    "messages.add_source": Endpoint("POST", "/api/sources", {**everyone(FB), "admin": OK}, {"name": "matrix"}),
    "messages.remove_source": Endpoint("DELETE", "/api/sources/no-such-source", {**everyone(FB), "admin": NF}),
    # issue 10: supervision. The coordination lead and administrators pass the role check; then the
    # access rules apply (the administrator sees no case). No escalation exists in this world.
    "supervise.list_escalations": Endpoint("GET", "/api/escalations", {**everyone(FB), "lead": OK, "admin": OK}),
    "supervise.acknowledge": Endpoint("POST", "/api/escalations/1/acknowledge",
                                      {**everyone(FB), "lead": NF, "admin": NF}, {}),
    # the case is not in error: the lead is told so (409)
    "supervise.retry": Endpoint("POST", "/api/cases/{case}/retry", {**everyone(FB), "lead": "409", "admin": NF}, {}),
    # on a case at one step (the monitoring round's case is at two: the decision and the report)
    "supervise.move": Endpoint("POST", "/api/cases/{single_case}/move", {**everyone(FB), "lead": OK, "admin": NF},
                               {"to_step": "closure", "reason": "支援の終結"}),
    # a result per task: the administrator's says not_found
    "supervise.assign_many": Endpoint("POST", "/api/tasks/assign", {**everyone(FB), "lead": OK, "admin": OK},
                                      {"tasks": ["{task}"], "assignee": "kyosei.tanaka"}),
    # issue 13: consultations at any window, consultation days, places, statistics
    "scheme.consultation_categories": Endpoint("GET", "/api/consultations/categories", everyone(OK)),
    "scheme.record_consultation": Endpoint("POST", "/api/consultations", everyone(OK),
                                           {"received_on": "2026-03-31", "content": "other", "response": "information",
                                            "group": "{own_group}"}),
    "scheme.list_consultations": Endpoint("GET", "/api/consultations", everyone(OK)),
    "scheme.create_event": Endpoint("POST", "/api/events", {**everyone(FB), "secretariat": OK, "lead": OK, "admin": OK},
                                    {"title": "総合相談会", "held_on": "2026-03-20", "place": "市役所",
                                     "groups": ["hokatsu-center"]}),
    "scheme.list_events": Endpoint("GET", "/api/events", everyone(OK)),
    "scheme.get_event": Endpoint("GET", "/api/events/999", everyone(NF)),
    "scheme.record_walk_in": Endpoint("POST", "/api/events/999/consultations", everyone(NF), {"kinds": ["other"]}),
    "scheme.list_places": Endpoint("GET", "/api/places", everyone(OK)),
    "scheme.add_place": Endpoint("POST", "/api/places", {**everyone(FB), "secretariat": OK, "lead": OK, "admin": OK},
                                 {"name": "居場所", "kind": "community"}),
    "scheme.change_place": Endpoint("PATCH", "/api/places/999", {**everyone(FB), "secretariat": NF, "lead": NF,
                                                                  "admin": NF}, {"active": False}),
    "scheme.get_statistics": Endpoint("GET", "/api/reports/statistics",
                                      {**everyone(FB), "secretariat": OK, "lead": OK, "admin": OK}),
    "scheme.get_statistics_csv": Endpoint("GET", "/api/reports/statistics.csv",
                                          {**everyone(FB), "secretariat": OK, "lead": OK, "admin": OK}),
    # case history: the same visibility as the case itself
    "cases.history": Endpoint("GET", "/api/cases/{case}/history", CASE_READ),
    # issue 12: the household. Everyone here who sees the case may change it (the participant is
    # a support meeting's agency); read-only sight (a shared case) is tested in tests/api/test_household.py
    "cases.get_household": Endpoint("GET", "/api/cases/{case}/household", CASE_READ),
    "cases.put_household": Endpoint("PUT", "/api/cases/{case}/household", CASE_READ,
                                    {"members": [{"name": "山田 花子", "kana": "やまだ はなこ", "relation": "本人"}]}),
    # process design: role designer or admin, others 403 (no persona here is a designer)
    "processes.list_processes": Endpoint("GET", "/api/processes", ADMIN_ONLY),
    "processes.version_bpmn": Endpoint("GET", "/api/processes/multi_agency/versions/1/bpmn", ADMIN_ONLY),
    "processes.version_dmn": Endpoint("GET", "/api/processes/multi_agency/versions/1/dmn/intake_criteria.dmn",
                                      ADMIN_ONLY),
    "processes.validate_diagram": Endpoint("POST", "/api/processes/validate", {**everyone(FB), "admin": "422"}),
    "processes.deploy": Endpoint("POST", "/api/processes", {**everyone(FB), "admin": "422"}),
    "processes.diff": Endpoint("GET", "/api/processes/multi_agency/diff?from=1&to=1", ADMIN_ONLY),
    "processes.migration_preview": Endpoint("GET", "/api/processes/multi_agency/migration?from=1&to=1", ADMIN_ONLY),
    "processes.migrate": Endpoint("POST", "/api/processes/multi_agency/migration", {**everyone(FB), "admin": "422"},
                                  {"from": 1, "to": 1, "cases": []}),
    "processes.list_forms": Endpoint("GET", "/api/forms", ADMIN_ONLY),
    "processes.get_form": Endpoint("GET", "/api/forms/no-such-form", {**everyone(FB), "admin": NF}),
    "processes.put_form": Endpoint("PUT", "/api/forms/matrix_probe", ADMIN_ONLY,
                                   {"type": "object", "properties": {}}),
    "process_drafts.get_draft": Endpoint("GET", "/api/processes/multi_agency/draft", {**everyone(FB), "admin": NF}),
    "process_drafts.put_draft": Endpoint("PUT", "/api/processes/multi_agency/draft", ADMIN_ONLY,
                                         {"bpmn": "<bpmn:definitions xmlns:bpmn=\"http://www.omg.org/spec/BPMN/20100524/MODEL\"/>"}),
    "process_drafts.delete_draft": Endpoint("DELETE", "/api/processes/multi_agency/draft",
                                            {**everyone(FB), "admin": NF}),  # the admin has no draft
    "process_drafts.run_test": Endpoint("POST", "/api/processes/test-run", {**everyone(FB), "admin": "422"},
                                        {"bpmn": "not xml"}),
    # reports: supervisors, the coordination lead, administrators
    "reports.stuck_report": Endpoint("GET", "/api/reports/stuck", {**everyone(FB), "lead": OK, "admin": OK}),
    "reports.stuck_csv": Endpoint("GET", "/api/reports/stuck.csv", {**everyone(FB), "lead": OK, "admin": OK}),
    "reports.heatmap_report": Endpoint("GET", "/api/reports/heatmap?process=multi_agency",
                                       {**everyone(FB), "lead": OK, "admin": OK}),
    "reports.workload_report": Endpoint("GET", "/api/reports/workload", {**everyone(FB), "lead": OK, "admin": OK}),
    # issue 12: the case file. {note} and {attachment} were written by the referring caseworker.
    "casefile.add_note": Endpoint("POST", "/api/cases/{case}/notes", CASE_READ, {"kind": "visit", "text": "訪問"}),
    "casefile.list_notes": Endpoint("GET", "/api/cases/{case}/notes", CASE_READ),
    "casefile.edit_note": Endpoint("PATCH", "/api/cases/{case}/notes/{note}",  # its author only
                                   {**CASE_READ, "secretariat": FB, "lead": FB, "participant": FB}, {"text": "修正"}),
    # the matrix sends no file: who may see the case is told the file is missing, before anything is stored
    "casefile.upload_attachment": Endpoint("POST", "/api/cases/{case}/attachments",
                                           {**everyone("422"), "outsider": NF, "admin": NF}),
    "casefile.list_attachments": Endpoint("GET", "/api/cases/{case}/attachments", CASE_READ),
    "casefile.download_attachment": Endpoint("GET", "/api/cases/{case}/attachments/{attachment}", CASE_READ),
    # its uploader and the secretariat (and the lead, who sees every case)
    "casefile.remove_attachment": Endpoint("POST", "/api/cases/{case}/attachments/{attachment}/remove",
                                           {**CASE_READ, "participant": FB}, {"reason": "誤って添付"}),
    # signed by a registered source, never by a bearer token: no persona's token gets in
    "inbound_webhooks.receive": Endpoint("POST", "/webhooks/matrix", everyone("401"), {"type": "matrix_probe"}),
}


NOT_ROUTES = {"static"}


def test_every_endpoint_has_an_access_rule(app) -> None:  # noqa: ANN001
    names = {rule.endpoint for rule in app.url_map.iter_rules()} - NOT_ROUTES
    missing = sorted(n for n in names if n not in ENDPOINTS and n not in PAGES and not n.endswith(".static")
                     and not checked_elsewhere(n))
    assert not missing, f"endpoints without an access rule: {missing}"


@pytest.fixture
def world(api, personas, clock, session_factory, env, session):  # noqa: ANN001, ANN201
    """A case under monitoring (meeting held with choju-anshin) with its monitoring task open,
    and a signed-in page session of wakamono.ito."""
    ref, sec = api("caseworker"), api("secretariat")
    case = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json

    def step(client, name, data) -> None:  # noqa: ANN001
        task = next(t for t in client.get(f"/api/cases/{case['id']}").json["open_tasks"] if t["step"] == name)
        assert client.post(f"/api/tasks/{task['id']}/complete", json={"data": data}).status_code == 200

    step(ref, "intake", INTAKE)
    step(sec, "assessment", {"members": ["choju-anshin"], "assessment": "a"})
    step(sec, "plan", {"issues": "i", "policy": "p", "monitoring_interval": "P14D"})
    step(sec, "meeting", MEETING)
    clock.advance(days=15)
    assert fire_due(session_factory, env, clock.now()) == 1
    # The round's report of the role holder is in: the case is at its monitoring step alone.
    step(api("elder_care"), "role_report", {"status": "on_track", "report": "見守りを続けている"})
    task = next(t for t in sec.get(f"/api/cases/{case['id']}").json["open_tasks"] if t["step"] == "monitoring")
    page_session, _ = sessions.add(session, personas.outsider, clock.now(), user_agent="a browser")
    session.commit()
    # a subscription with one dead event (its ping), to re-send
    admin = api("admin")
    hook = admin.post("/api/webhooks", json={"url": "https://hooks.example.org/tsunagu", "events": ["case.created"]}).json
    event = admin.post(f"/api/webhooks/{hook['id']}/ping").json["event_id"]
    with session_factory() as s:
        s.execute(update(WebhookDelivery).values(status=DeliveryStatus.DEAD))
        s.commit()
    note = ref.post(f"/api/cases/{case['id']}/notes", json={"kind": "phone", "text": "電話"}).json
    attachment = ref.client.post(f"/api/cases/{case['id']}/attachments", headers=ref.headers,
                                 data={"file": (io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "a.pdf")},
                                 content_type="multipart/form-data").json
    single = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json
    return {"case": case["id"], "single_case": single["id"], "task": task["id"], "session": page_session.id, "webhook": hook["id"],
            "event": event, "note": note["id"], "attachment": attachment["id"]}


@pytest.mark.parametrize("relation", list(RELATIONS))
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_access_matrix(endpoint: str, relation: str, world, api, personas, app) -> None:  # noqa: ANN001
    rule = ENDPOINTS[endpoint]
    who = RELATIONS[relation]
    persona = getattr(personas, who)
    client = api(who)
    token_id = _own_token_id(client)
    values = {"case": world["case"], "task": world["task"], "token": token_id, "user": "wakamono.ito",
              "session": world["session"],
              "own_group": persona.group_ids[0], "webhook": world["webhook"], "event": world["event"],
              "note": world["note"], "attachment": world["attachment"], "single_case": world["single_case"]}
    url = rule.url.format(**values)
    body = _fill(rule.body, values)
    response = client.client.open(url, method=rule.method, json=body, headers=client.headers)
    expected = rule.expect[relation]
    got = response.status_code
    if expected == OK:
        assert got < 400, (endpoint, relation, got, response.get_data(as_text=True)[:300])
    else:
        assert str(got) == expected, (endpoint, relation, got, response.get_data(as_text=True)[:300])
    if expected == NF:
        # a hidden case looks exactly like a case that does not exist
        ghost = rule.url.format(**{**values, "case": "00000000-0000-0000-0000-000000000000", "session": MAX_INT,
                                   "task": "00000000-0000-0000-0000-000000000000"})
        twin = client.client.open(ghost, method=rule.method, json=body, headers=client.headers)
        assert twin.status_code == 404 and twin.json["error"]["message"] == response.json["error"]["message"]


def _own_token_id(client) -> int:  # noqa: ANN001
    return client.get("/api/tokens").json[0]["id"]


def _fill(body: Any, values: dict[str, Any]) -> Any:
    if isinstance(body, dict):
        return {k: _fill(v, values) for k, v in body.items()}
    if isinstance(body, list):
        return [_fill(v, values) for v in body]
    if isinstance(body, str) and body.startswith("{") and body.endswith("}"):
        return values[body[1:-1]]
    return body


@pytest.mark.parametrize("relation", ["outsider", "admin"])
def test_lists_and_counts_do_not_reveal_hidden_cases(relation: str, world, api) -> None:  # noqa: ANN001
    client = api(RELATIONS[relation])
    assert world["case"] not in [c["id"] for c in client.get("/api/cases").json]
    assert world["task"] not in [t["id"] for t in client.get("/api/tasks").json]


def test_meeting_participation_grants_access_from_the_moment_it_is_saved(api) -> None:  # noqa: ANN001
    ref, sec, elder = api("caseworker"), api("secretariat"), api("elder_care")
    case = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json

    def step(client, name, data) -> None:  # noqa: ANN001
        task = next(t for t in client.get(f"/api/cases/{case['id']}").json["open_tasks"] if t["step"] == name)
        assert client.post(f"/api/tasks/{task['id']}/complete", json={"data": data}).status_code == 200

    step(ref, "intake", INTAKE)
    step(sec, "assessment", {"members": ["choju-anshin"], "assessment": "a"})
    step(sec, "plan", {"issues": "i", "policy": "p", "monitoring_interval": "P14D"})
    assert elder.get(f"/api/cases/{case['id']}").status_code == 404  # convened for assessment ≠ meeting member
    step(sec, "meeting", MEETING)
    assert elder.get(f"/api/cases/{case['id']}").status_code == 200
    assert case["id"] in [c["id"] for c in elder.get("/api/cases").json]
