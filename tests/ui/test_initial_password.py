"""A password an administrator chose (a new user, a reset) is temporary: until the user changes
it, every page leads to the account page's password form; the user's own change ends that. An
operator's password set with the CLI is not temporary (it sets up the first accounts)."""

from __future__ import annotations

import html

from engine.security import users
from tests.ui.conftest import PageClient

INITIAL = "an initial passphrase from the admin"
OWN = "my very own passphrase"


def _text(r) -> str:  # noqa: ANN001
    return html.unescape(r.get_data(as_text=True))


def _new_user(api) -> None:  # noqa: ANN001
    r = api("admin").post("/api/users", json={"name": "seikatsu.mori", "display_name": "森 一郎",
                                              "groups": ["hokatsu-center"], "roles": ["staff"], "password": INITIAL})
    assert r.status_code == 201 and r.json["password_change_required"] is True


def test_a_new_user_changes_the_initial_password_before_anything_else(app, api) -> None:  # noqa: ANN001
    _new_user(api)
    client = PageClient(app.test_client())
    assert client.login("seikatsu.mori", INITIAL).status_code == 302
    client.get("/account/tokens")  # the page's CSRF token, for the POST below
    for url in ("/", "/cases", "/account/tokens/1/revoke"):
        r = client.get(url) if not url.endswith("revoke") else client.post(url)
        assert r.status_code == 302 and r.headers["Location"].endswith("/account/tokens#password-title"), url
    page = _text(client.get("/account/tokens"))
    assert "管理者が設定したパスワードのままです" in page
    refused = client.post("/account/password", {"current_password": "wrong", "password": OWN})
    assert refused.status_code == 302 and client.get("/").status_code == 302
    client.post("/account/password", {"current_password": INITIAL, "password": OWN})
    assert client.get("/").status_code == 200
    listed = {u["name"]: u for u in api("admin").get("/api/users").json}
    assert listed["seikatsu.mori"]["password_change_required"] is False


def test_a_reset_by_an_administrator_is_temporary_but_the_clis_is_not(app, api, session, clock) -> None:  # noqa: ANN001
    _new_user(api)
    client = PageClient(app.test_client())
    client.login("seikatsu.mori", INITIAL)
    client.post("/account/password", {"current_password": INITIAL, "password": OWN})
    reset = api("admin").patch("/api/users/seikatsu.mori", json={"password": "a reset passphrase here"})
    assert reset.status_code == 200 and reset.json["password_change_required"] is True
    client = PageClient(app.test_client())
    client.login("seikatsu.mori", "a reset passphrase here")
    assert client.get("/").status_code == 302
    users.change_user(session, None, "seikatsu.mori", clock.now(), password="set by the operator")
    client = PageClient(app.test_client())
    client.login("seikatsu.mori", "set by the operator")
    assert client.get("/").status_code == 200
