"""The staff pages' access rules (tests/security/pages.py), persona × case relation × page, with
signed-in browser sessions: the pages refuse exactly what the JSON API refuses, and a hidden
case or task looks exactly like one that does not exist."""

from __future__ import annotations

import re

import pytest

from engine.casework import cases
from engine.casework.timers import fire_due
from engine.security import sessions, users
from engine.settings import ROOT
from engine.status import DeliveryStatus
from tests.security.pages import FB, NF, OK, PAGES, RELATIONS, checked_elsewhere
from tests.ui.test_pages import text
from webhooks import subscriptions
from webhooks.destinations import parse_allowed

WHO = {"referring": "caseworker", "secretariat": "secretariat", "lead": "lead", "participant": "elder_care",
       "outsider": "outsider", "admin": "admin"}
INTAKE = {"multiple_targets": True, "all_targets_have_lead_department": False,
          "lead_department_can_handle_alone": False, "coordination_problem": False,
          "summary": "本人・家族の氏名を含む相談内容", "consent": "given"}
GHOST = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def world(session, env, personas, clock, session_factory):  # noqa: ANN001, ANN201
    """A case under monitoring (support meeting held with 長寿安心課), its monitoring task open."""
    ref, sec = personas.caseworker, personas.secretariat

    def step(actor, data) -> None:  # noqa: ANN001
        (task,) = cases.case_open_tasks(session, case)
        cases.complete_task(session, env, actor, task.id, data, clock.now())

    case = cases.start_case(session, env, ref, "multi_agency", {"summary": "相談"}, None, clock.now())
    step(ref, INTAKE)
    step(sec, {"members": ["choju-anshin"], "assessment": "a"})
    step(sec, {"issues": "i", "policy": "p", "monitoring_interval": "P14D"})
    step(sec, {"held_on": "2026-04-02", "participants": ["choju-anshin"],
               "roles": [{"group": "choju-anshin", "role": "介護サービスの調整"}]})
    clock.advance(days=15)
    assert fire_due(session_factory, env, clock.now()) == 1
    session.expire_all()
    # the secretariat's monitoring task (the role holder's report of the round is the other)
    (task,) = [t for t in cases.case_open_tasks(session, case) if t.step == "monitoring"]
    admin, nowhere = personas.admin, parse_allowed("")
    hook, _ = subscriptions.create_subscription(session, admin, "https://hooks.example.org/a", ["case.created"], None,
                                                clock.now(), nowhere)
    doomed, _ = subscriptions.create_subscription(session, admin, "https://hooks.example.org/b", ["case.created"],
                                                  None, clock.now(), nowhere)
    dead = subscriptions.ping(session, admin, hook.id, clock.now())
    dead.status = DeliveryStatus.DEAD
    session.commit()
    return {"case": case.id, "task": task.id, "webhook": hook.id, "webhook2": doomed.id, "event": dead.event_id}


def same_page(a, b) -> bool:  # noqa: ANN001
    """Equal but for the address of the page itself (the language switch returns to it)."""
    def strip(r):  # noqa: ANN001, ANN202
        # a message flashed by an earlier request may show on whichever page comes next
        page = re.sub(r'<div class="flashes">.*?</div>', "", text(r), flags=re.S)
        return " ".join(re.sub(r'name="next" value="[^"]*"', "", page).split())

    return strip(a) == strip(b)


def test_every_page_has_a_rule_for_every_relation(app) -> None:  # noqa: ANN001
    names = {r.endpoint for r in app.url_map.iter_rules()}
    pages = {n for n in names if n.startswith(("ui.", "ui_auth.", "ui_admin.", "ui_webhooks.", "ui_scheme.", "ui_print."))
             or n in ("bpmn_js", "favicon")}
    pages = {n for n in pages if not checked_elsewhere(n)}
    assert pages == set(PAGES)
    for name, page in PAGES.items():
        assert set(page.expect) == set(RELATIONS), name


@pytest.mark.parametrize("relation", list(RELATIONS))
def test_page_access_matrix(relation: str, world, staff, personas, session, clock) -> None:  # noqa: ANN001
    if "admin" in relation and not hasattr(personas, "admin"):
        pytest.skip("no admin persona")
    # one world and one signed-in session per relation: what changes the case (claim, then
    # complete), the language or the session comes last
    last = ["ui.claim", "ui.task_submit", "ui.set_language", "ui_auth.logout"]
    client = staff(WHO[relation])
    persona = getattr(personas, WHO[relation])
    other, _ = sessions.add(session, persona, clock.now(), user_agent="another browser")
    session.commit()
    for name in sorted(set(PAGES) - set(last)) + last:
        page = PAGES[name]
        if name == "bpmn_js" and not (ROOT / "node_modules" / "bpmn-js").exists():
            continue  # npm ci not run here; test_pages covers the route
        url = page.url.format(**world, token=users.list_tokens(session, persona)[0].id, session=other.id)
        response = client.get(url) if page.method == "GET" else client.post(url, page.body or {})
        expected, got = page.expect[relation], response.status_code
        if expected == OK:
            assert got < 400, (name, relation, got)
        else:
            assert str(got) == expected, (name, relation, got, text(response)[:300])
        if expected == NF:
            ghost_url = page.url.format(case=GHOST, task=GHOST, token=0, session=0)
            ghost = client.get(ghost_url) if page.method == "GET" else client.post(ghost_url, page.body or {})
            assert ghost.status_code == 404 and same_page(ghost, response), (name, relation)
        if expected == FB:
            assert "この操作を行う権限がありません" in text(response), (name, relation)


def test_outcomes_are_known() -> None:
    assert {v for p in PAGES.values() for v in p.expect.values()} <= {OK, NF, FB}
