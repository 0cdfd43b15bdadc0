"""The administrator's user pages (issue 12, defect 9): groups are checkboxes by kind, not a
multi-select; a user is added on the page with an initial password; bad input is shown at its
field and changes nothing."""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import func, select

from engine.models import AuditRecord, User
from engine.security import users

NEW = {"name": "shinki.tanaka", "display_name": "田中  新規", "password": "correct horse battery",
       "roles": ["staff", "supervisor"], "groups": ["jutaku", "hokatsu-center"]}


def counts(session) -> tuple[int, int]:  # noqa: ANN001
    session.expire_all()
    return (session.scalar(select(func.count()).select_from(User)),
            session.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.action == "user.create")))


def test_groups_are_checkboxes_by_kind(staff, env) -> None:  # noqa: ANN001
    html = staff("admin").get("/admin/users").get_data(as_text=True)
    assert "<select" not in html
    form = html[html.index('id="add-user"'):]
    boxes = re.findall(r'<input id="new-group-([\w-]+)" name="groups" type="checkbox"', form)
    assert boxes == [g.id for kind in ("lead", "secretariat", "liaison", "referring") for g in env.org.groups
                     if g.kind == kind]
    legends = re.findall(r'<fieldset class="user-groups__kind">\s*<legend>([^<]+)</legend>', form)
    assert legends == ["統括", "事務局・関係課", "連携担当の課", "つなぎ元の機関"]
    edit = staff("admin").get("/admin/users/wakamono.ito").get_data(as_text=True)
    assert "<select" not in edit
    assert re.findall(r'id="edit-group-([\w-]+)" name="groups" type="checkbox" value="[\w-]+" checked', edit) == [
        "wakamono-sodan"]


def test_an_administrator_adds_a_user_who_then_signs_in(staff, session) -> None:  # noqa: ANN001
    admin = staff("admin")
    r = admin.post("/admin/users", NEW)
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    assert "shinki.tanaka を追加しました" in admin.get(r.headers["Location"]).get_data(as_text=True)
    session.expire_all()
    user = users.get_user(session, "shinki.tanaka")
    assert (user.display_name, user.roles, sorted(user.group_ids), user.active) == (
        "田中 新規", ["staff", "supervisor"], ["hokatsu-center", "jutaku"], True)
    record = session.scalar(select(AuditRecord).where(AuditRecord.action == "user.create"))
    assert record.actor_name == "kanri.kato" and record.detail["user"] == "shinki.tanaka"
    assert "correct horse" not in str(record.detail)
    newcomer = staff()
    assert newcomer.login("shinki.tanaka", NEW["password"]).status_code == 302
    # The password the administrator chose is changed first (tests/ui/test_initial_password.py).
    assert newcomer.get("/").headers["Location"].endswith("/account/tokens#password-title")
    newcomer.get("/account/tokens")
    newcomer.post("/account/password", {"current_password": NEW["password"], "password": "the newcomer's own"})
    assert newcomer.get("/").status_code == 200


@pytest.mark.parametrize("change,field,message", [
    ({"name": ""}, "name", "ユーザー名を入力してください"),
    ({"name": "Tanaka San"}, "name", "半角の英小文字"),
    ({"name": "wakamono.ito"}, "name", "既に使われています"),
    ({"display_name": "  "}, "display_name", "氏名を入力してください"),
    ({"display_name": "あ" * 201}, "display_name", "200 文字以内"),
    ({"password": ""}, "password", "パスワードを入力してください"),
    ({"password": "short"}, "password", "10 文字以上"),
    ({"password": "shinki.tanaka"}, "password", "ユーザー名と同じ"),
    ({"roles": []}, "roles", "役割を一つ以上選んでください"),
    ({"roles": ["staff", "emperor"]}, "roles", "役割 'emperor' はありません"),
    ({"groups": []}, "groups", "一つ以上選んでください"),
    ({"groups": ["jutaku", "atlantis"]}, "groups", "機関 'atlantis' はありません"),
])
def test_bad_input_is_shown_at_its_field_and_adds_nobody(staff, session, change: dict, field: str,  # noqa: ANN001
                                                          message: str) -> None:
    before = counts(session)
    r = staff("admin").post("/admin/users", {**NEW, **change})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    error = re.search(rf'<p class="field-error" id="new-{field}-error">([^<]+)</p>', html)
    assert error and message in unescape(error.group(1)), html[html.index('id="add-user"'):][:3000]
    assert f'href="#new-{field}"' in html  # the error summary leads to the field
    assert NEW["password"] not in html  # a password is never sent back
    if field != "display_name":
        assert 'value="田中  新規"' in html  # what was typed stays
    assert counts(session) == before


def test_only_an_administrator_adds_users(staff, session) -> None:  # noqa: ANN001
    before = counts(session)
    assert staff("supervisor").post("/admin/users", NEW).status_code == 403
    assert counts(session) == before


def test_an_edit_without_groups_is_shown_at_the_groups_and_changes_nothing(staff, session, personas) -> None:  # noqa: ANN001
    r = staff("admin").post("/admin/users/wakamono.ito", {"roles": ["staff", "supervisor"], "active": "on"})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert re.search(r'id="edit-groups-error">[^<]*少なくとも一つの機関', html)
    assert re.search(r'id="edit-role-supervisor" name="roles" type="checkbox" value="supervisor" checked', html)
    session.expire_all()
    assert (personas.outsider.roles, personas.outsider.group_ids) == (["staff"], ["wakamono-sodan"])


def test_an_edit_page_of_no_user_is_404(staff) -> None:  # noqa: ANN001
    assert staff("admin").get("/admin/users/nobody.here").status_code == 404
