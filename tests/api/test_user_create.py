"""POST /api/users: an administrator adds a user through the API, as the page's add form does."""

from __future__ import annotations

from sqlalchemy import func, select

from engine.models import AuditRecord, User
from engine.security import users

NEW = {"name": "seikatsu.mori", "display_name": "森 一郎", "groups": ["hokatsu-center"], "roles": ["staff"],
       "password": "a long enough passphrase"}


def test_an_administrator_adds_a_user_who_can_then_sign_in(api, session, clock) -> None:  # noqa: ANN001
    admin = api("admin")
    r = admin.post("/api/users", json=NEW)
    assert r.status_code == 201, r.json
    assert r.json == {"name": "seikatsu.mori", "display_name": "森 一郎", "groups": ["hokatsu-center"],
                      "roles": ["staff"], "active": True, "password_change_required": True}
    assert NEW["password"] not in r.get_data(as_text=True)
    assert "seikatsu.mori" in [u["name"] for u in admin.get("/api/users").json]
    session.expire_all()
    user = users.authenticate(session, "seikatsu.mori", NEW["password"], "127.0.0.1", clock.now())
    assert user.display_name == "森 一郎"
    actions = session.scalars(select(AuditRecord.action).where(AuditRecord.action == "user.create")).all()
    assert actions == ["user.create"]


def test_a_refused_user_names_each_field_and_adds_nobody(api, session) -> None:  # noqa: ANN001
    admin = api("admin")
    before = session.scalar(select(func.count()).select_from(User))
    r = admin.post("/api/users", json={"name": "Bad Name", "display_name": " ", "groups": ["no-such-group"],
                                       "roles": ["king"], "password": "short"})
    assert r.status_code == 422
    assert set(r.json["error"]["fields"]) == {"name", "display_name", "groups", "roles", "password"}
    assert "ユーザー名" in r.json["error"]["fields"]["name"]
    taken = admin.post("/api/users", json={**NEW, "name": "hokatsu.sato"})
    assert taken.status_code == 422 and "hokatsu.sato" in taken.json["error"]["fields"]["name"]
    missing = admin.post("/api/users", json={"name": "x"})
    assert missing.status_code == 422 and {"display_name", "groups", "roles", "password"} <= set(
        missing.json["error"]["fields"])
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(User)) == before


def test_only_an_administrator_adds_users(api, session) -> None:  # noqa: ANN001
    for who in ("caseworker", "secretariat", "supervisor"):
        r = api(who).post("/api/users", json={**NEW, "name": f"by.{who}"})
        assert r.status_code == 403, (who, r.json)
    session.expire_all()
    assert session.scalar(select(User.id).where(User.name.like("by.%"))) is None
