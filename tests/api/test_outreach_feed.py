"""The arrears feed: a collection section's system posts the signed message
`outreach_referral` to POST /webhooks/<source>, and an outreach case (アウトリーチ等継続支援)
starts from it, referred by that section, with the referral checked against the start form."""

from __future__ import annotations

import json

from engine.models import Case, InboundMessage
from engine.security import sources
from tests.api.test_api import only_task
from webhooks.inbound import sign

REFERRAL = {"source": "water", "household_ref": "W-2026-0077", "amount_yen": 42000, "months_in_arrears": 5}


def _post(client, source, clock, body: dict, webhook_id: str):  # noqa: ANN001, ANN202
    text = json.dumps(body, ensure_ascii=False)
    return client.post(f"/webhooks/{source.name}", data=text.encode(), content_type="application/json",
                       headers=sign(source.secret, webhook_id, clock.now(), text))


def test_the_arrears_feed_starts_an_outreach_case(app, session, env, clock, api) -> None:  # noqa: ANN001
    feed = sources.add_source(session, env, None, "suido-arrears", clock.now(), "outreach", "suido-ryokin")
    session.commit()
    client = app.test_client()

    r = _post(client, feed, clock, {"type": "outreach_referral", "data": REFERRAL}, "arrears-1")
    assert r.status_code == 202, r.json
    session.rollback()
    case = session.get(Case, r.json["case_id"])
    assert (case.process_key, case.number, case.referring_group_id) == ("outreach", "OR-2026-00001", "suido-ryokin")
    assign = only_task(api("supervisor"), case.id, "assign")
    assert assign["group"] == "chiiki-kyosei"
    prefill = api("supervisor").get(f"/api/tasks/{assign['id']}").json["data"]
    assert prefill["summary"] == "上下水道料金の滞納 5か月・42,000円（世帯番号 W-2026-0077）"
    assert api("outsider").get(f"/api/cases/{case.id}").status_code == 404

    # A referral carrying a name is refused by the start form, and nothing is kept of it.
    named = {"type": "outreach_referral", "data": {**REFERRAL, "household_ref": "W-2026-0078", "name": "豊中 太郎"}}
    r = _post(client, feed, clock, named, "arrears-2")
    assert r.status_code == 422 and "data.name" in r.json["error"]["fields"], r.json
    session.rollback()
    assert session.query(Case).count() == 1
    assert [m.webhook_id for m in session.query(InboundMessage)] == ["arrears-1"]
