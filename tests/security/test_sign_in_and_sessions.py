"""Sign-in hardening and server-side page sessions, on the domain functions: limits per
(name, address) with a growing delay, the same cost for a wrong password and an unknown
name, one password policy, and sessions that end at once."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from cli.main import main
from engine.errors import Invalid, NotFound, Unauthorized
from engine.models import AuditRecord, LoginAttempt, User, WebSession
from engine.security import sessions, users
from engine.security.users import TooManyAttempts
from engine.status import SessionEnd

PASSWORD = "correct horse battery"
IDLE = timedelta(minutes=30)


@pytest.fixture
def sato(session, personas) -> User:  # noqa: ANN001
    users.set_password(personas.caseworker, PASSWORD)
    session.commit()
    return personas.caseworker


def _fail(session, clock, origin: str, name: str = "hokatsu.sato") -> None:  # noqa: ANN001
    with pytest.raises(Unauthorized):
        users.authenticate(session, name, "wrong password", origin, clock.now())


def test_failures_slow_down_only_that_name_from_that_address(session, clock, sato) -> None:  # noqa: ANN001
    for _ in range(users.FREE_FAILURES):
        _fail(session, clock, "10.0.0.2")
    with pytest.raises(TooManyAttempts) as refused:
        users.authenticate(session, "hokatsu.sato", PASSWORD, "10.0.0.2", clock.now())
    assert refused.value.retry_after == 2
    # the colleague at their own desk is not locked out by someone else's guesses
    assert users.authenticate(session, "hokatsu.sato", PASSWORD, "10.0.0.1", clock.now()).name == "hokatsu.sato"
    # and the guesser may still try other names (the per-address limit is further off)
    _fail(session, clock, "10.0.0.2", name="kyosei.tanaka")


def test_the_wait_doubles_with_each_failure_and_is_capped(session, clock, sato) -> None:  # noqa: ANN001
    for _ in range(users.FREE_FAILURES):
        _fail(session, clock, "10.0.0.2")
    waits = []
    for _ in range(12):
        with pytest.raises(TooManyAttempts) as refused:
            users.authenticate(session, "hokatsu.sato", "wrong password", "10.0.0.2", clock.now())
        waits.append(refused.value.retry_after)
        clock.advance(seconds=refused.value.retry_after)
        _fail(session, clock, "10.0.0.2")
    assert waits[:5] == [2, 4, 8, 16, 32]
    assert max(waits) == users.MAX_SIGNIN_DELAY.total_seconds()
    # a success from that address starts the count afresh
    clock.advance(users.MAX_SIGNIN_DELAY)
    assert users.authenticate(session, "hokatsu.sato", PASSWORD, "10.0.0.2", clock.now())
    _fail(session, clock, "10.0.0.2")
    assert users.authenticate(session, "hokatsu.sato", PASSWORD, "10.0.0.2", clock.now())


def test_a_refused_attempt_checks_no_password_and_does_not_extend_the_wait(session, clock, sato) -> None:  # noqa: ANN001
    for _ in range(users.FREE_FAILURES):
        _fail(session, clock, "10.0.0.2")
    for _ in range(5):
        with pytest.raises(TooManyAttempts):
            users.authenticate(session, "hokatsu.sato", PASSWORD, "10.0.0.2", clock.now())
    clock.advance(seconds=2)
    assert users.authenticate(session, "hokatsu.sato", PASSWORD, "10.0.0.2", clock.now())


def test_a_wrong_password_costs_as_long_as_an_unknown_name(session, clock, sato) -> None:  # noqa: ANN001
    # The one timing comparison the issue asks for, as a ratio (never an absolute time): the
    # median over 15 pairs of tries, each pair back to back and in alternating order, so that
    # load from elsewhere on the machine weighs on both sides alike. Each try comes from its
    # own address so that no limit applies. (Before: about 2 argon2 checks against 1, ~2.0.)
    users.dummy_hash()
    ratios = []
    for i in range(15):
        pair = {}
        for name in (("hokatsu.sato", f"nobody{i}") if i % 2 else (f"nobody{i}", "hokatsu.sato")):
            start = time.perf_counter()
            with pytest.raises(Unauthorized):
                users.authenticate(session, name, "wrong password", f"10.1.{i}.{len(pair)}", clock.now())
            pair[name == "hokatsu.sato"] = time.perf_counter() - start
        ratios.append(pair[True] / pair[False])
    ratio = statistics.median(ratios)
    assert 0.8 <= ratio <= 1.25, (ratio, sorted(ratios))


def test_a_disabled_user_with_the_right_password_is_refused(session, clock, sato) -> None:  # noqa: ANN001
    users.change_user(session, None, "hokatsu.sato", clock.now(), active=False)
    with pytest.raises(Unauthorized):
        users.authenticate(session, "hokatsu.sato", PASSWORD, "10.0.0.1", clock.now())


# ---------------------------------------------------------------- password policy

@pytest.mark.parametrize(("password", "problem"), [
    ("", "required"), ("a", "at least 10"), ("short pw", "at least 10"), ("x" * 1001, "at most 1000"),
    ("aaaaaaaaaaaa", "repeated"), ("hokatsu.sato", "user name"), ("HOKATSU.SATO", "user name"),
    ("1234567890", "common"), ("Password123", "common"), (None, "required"),
])
def test_the_password_policy_refuses_weak_passwords(password, problem: str) -> None:  # noqa: ANN001
    with pytest.raises(Invalid) as refused:
        users.check_password_policy(password, "hokatsu.sato")
    assert problem in refused.value.fields["password"] and " / " in refused.value.message


def test_the_password_policy_accepts_a_passphrase() -> None:
    users.check_password_policy("tsunagu-demo", "hokatsu.sato")
    users.check_password_policy("あいうえおかきくけこ", "hokatsu.sato")


def test_adding_a_user_with_a_weak_password_changes_nothing(session, clock, personas) -> None:  # noqa: ANN001
    with pytest.raises(Invalid) as refused:
        users.add_user(session, "new.user", ["hokatsu-center"], ["staff"], clock.now(), password="a")
    assert "password" in refused.value.fields
    session.rollback()
    assert session.scalar(select(User).where(User.name == "new.user")) is None


def test_an_empty_password_is_refused_and_the_old_one_stays(session, clock, sato) -> None:  # noqa: ANN001
    for weak in ("", "short"):
        with pytest.raises(Invalid):
            users.change_user(session, None, "hokatsu.sato", clock.now(), password=weak)
    assert users.check_password(session.get(User, sato.id), PASSWORD)


def test_cli_refuses_a_weak_password(sato, database_url, monkeypatch, capsys) -> None:  # noqa: ANN001
    import io

    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["user", "add", "new.user", "--group", "hokatsu-center", "--password", "a"]) == 1
    assert "password" in capsys.readouterr().err
    for line in ("\n", "", "hokatsu.sato\n"):
        monkeypatch.setattr("sys.stdin", io.StringIO(line))
        assert main(["user", "password", "hokatsu.sato"]) == 1
        out = capsys.readouterr()
        assert "active=" not in out.out and "password" in out.err
    monkeypatch.setattr("sys.stdin", io.StringIO("a much better passphrase\n"))
    assert main(["user", "password", "hokatsu.sato"]) == 0


# ---------------------------------------------------------------- sessions

def _open(session, clock, user: User, address: str = "10.0.0.1") -> tuple[WebSession, str]:  # noqa: ANN001
    _, row, key = users.sign_in(session, user.name, PASSWORD, address, clock.now(), user_agent="Mozilla/5.0 (Windows NT 10.0) Chrome/120.0 Safari/537.36")
    return row, key


def _alive(session, clock, key: str) -> bool:  # noqa: ANN001
    session.rollback()  # a fresh snapshot, as each request has: the app wrote through its own connection
    return sessions.resume(session, key, clock.now(), IDLE).row is not None


def test_a_session_keeps_only_a_hash_of_its_key(session, clock, sato) -> None:  # noqa: ANN001
    row, key = _open(session, clock, sato)
    assert row.key_hash == sessions.hash_key(key) and key not in row.key_hash
    assert sessions.resume(session, row.key_hash, clock.now(), IDLE).row is None


def test_a_session_ends_after_inactivity_and_after_a_working_day(session, clock, sato) -> None:  # noqa: ANN001
    _, key = _open(session, clock, sato)
    clock.advance(minutes=29)
    assert _alive(session, clock, key)
    clock.advance(minutes=30, seconds=1)
    assert sessions.resume(session, key, clock.now(), IDLE).lapsed == "expired"
    _, busy = _open(session, clock, sato)
    for _ in range(12 * 3 - 1):
        clock.advance(minutes=20)
        assert _alive(session, clock, busy)
    clock.advance(minutes=20)
    assert not _alive(session, clock, busy)


def test_last_seen_is_written_at_most_once_a_minute(session, clock, sato) -> None:  # noqa: ANN001
    row, key = _open(session, clock, sato)
    clock.advance(seconds=30)
    sessions.resume(session, key, clock.now(), IDLE, "10.0.0.1")
    session.expire_all()
    assert session.get(WebSession, row.id).last_seen_at == clock.now() - timedelta(seconds=30)
    clock.advance(seconds=31)
    sessions.resume(session, key, clock.now(), IDLE, "10.0.0.1")
    session.expire_all()
    assert session.get(WebSession, row.id).last_seen_at == clock.now()


def test_a_password_change_ends_every_session_of_the_user(session, clock, sato, personas) -> None:  # noqa: ANN001
    _, first = _open(session, clock, sato)
    _, second = _open(session, clock, sato, "10.0.0.9")
    users.change_user(session, personas.admin, "hokatsu.sato", clock.now(), password="a new long passphrase")
    assert not _alive(session, clock, first) and not _alive(session, clock, second)
    ended = session.scalars(select(WebSession.end_reason).where(WebSession.user_id == sato.id)).all()
    assert set(ended) == {SessionEnd.PASSWORD_CHANGED}
    assert session.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.action == "session.end")) == 1


def test_changing_ones_own_password_keeps_the_current_session(session, clock, sato) -> None:  # noqa: ANN001
    here, here_key = _open(session, clock, sato)
    _, elsewhere = _open(session, clock, sato, "10.0.0.9")
    with pytest.raises(Invalid) as refused:
        users.change_own_password(session, sato, "not my password", "a new long passphrase", clock.now(), here.id)
    assert "current_password" in refused.value.fields and _alive(session, clock, elsewhere)
    with pytest.raises(Invalid) as refused:
        users.change_own_password(session, sato, PASSWORD, "short", clock.now(), here.id)
    assert "password" in refused.value.fields and _alive(session, clock, elsewhere)
    users.change_own_password(session, sato, PASSWORD, "a new long passphrase", clock.now(), here.id)
    assert _alive(session, clock, here_key) and not _alive(session, clock, elsewhere)
    assert users.authenticate(session, "hokatsu.sato", "a new long passphrase", "10.0.0.1", clock.now())


def test_disabling_a_user_ends_their_sessions(session, clock, sato) -> None:  # noqa: ANN001
    _, key = _open(session, clock, sato)
    users.change_user(session, None, "hokatsu.sato", clock.now(), active=False)
    assert sessions.resume(session, key, clock.now(), IDLE).lapsed == "ended"


def test_a_session_is_ended_by_its_owner_or_an_administrator_only(session, clock, sato, personas) -> None:  # noqa: ANN001
    row, key = _open(session, clock, sato)
    with pytest.raises(NotFound):
        sessions.end(session, personas.outsider, row.id, clock.now())
    assert _alive(session, clock, key)
    assert [r.id for r in sessions.list_active(session, sato, clock.now(), IDLE)] == [row.id]
    assert [r.id for r in sessions.list_active(session, personas.admin, clock.now(), IDLE, "hokatsu.sato")] == [row.id]
    sessions.end(session, personas.admin, row.id, clock.now())
    assert not _alive(session, clock, key)
    assert session.get(WebSession, row.id).end_reason == SessionEnd.ENDED_BY_ADMIN
    assert sessions.list_active(session, sato, clock.now(), IDLE) == []


def test_devices_are_summarised_from_the_user_agent() -> None:
    assert sessions.describe_device(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
    ) == "Chrome / Windows"
    assert sessions.describe_device(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile Safari/604.1"
    ) == "Safari / iPhone"
    assert sessions.describe_device("") == "?"


def test_cli_ends_every_page_session_of_a_user(session, clock, sato, database_url, monkeypatch, capsys) -> None:  # noqa: ANN001
    _, first = _open(session, clock, sato)
    _, second = _open(session, clock, sato, "10.0.0.9")
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["user", "signout", "hokatsu.sato"]) == 0
    assert "2 page session(s) ended" in capsys.readouterr().out
    assert not _alive(session, clock, first) and not _alive(session, clock, second)
    assert main(["user", "signout", "nobody"]) == 1


# ---------------------------------------------------------------- over the API

def _call(api, who: str, method: str, url: str, json=None):  # noqa: ANN001, ANN202
    client = api(who)
    return client.client.open(url, method=method, json=json, headers=client.headers)


def test_sessions_are_listed_and_ended_over_the_api(api, session, clock, sato, personas) -> None:  # noqa: ANN001
    row, key = _open(session, clock, sato)
    mine = _call(api, "caseworker", "GET", "/api/sessions").json
    assert [s["id"] for s in mine] == [row.id] and mine[0]["device"] == "Chrome / Windows"
    assert mine[0]["address"] == "10.0.0.1" and "key_hash" not in mine[0]
    assert _call(api, "outsider", "GET", "/api/sessions").json == []
    refused = _call(api, "outsider", "GET", "/api/sessions?user=hokatsu.sato")
    assert refused.status_code == 403 and refused.json["error"]["code"] == "forbidden"
    assert _call(api, "admin", "GET", "/api/sessions?user=nobody").status_code == 404
    assert [s["id"] for s in _call(api, "admin", "GET", "/api/sessions?user=hokatsu.sato").json] == [row.id]
    hidden = _call(api, "outsider", "DELETE", f"/api/sessions/{row.id}")
    assert hidden.status_code == 404 and _alive(session, clock, key)
    ended = _call(api, "caseworker", "DELETE", f"/api/sessions/{row.id}")
    assert ended.status_code == 200 and ended.json["end_reason"] == "ended_by_user"
    assert not _alive(session, clock, key)


def test_a_password_set_over_the_api_follows_the_policy_and_ends_sessions(api, session, clock, sato) -> None:  # noqa: ANN001
    _, key = _open(session, clock, sato)
    weak = _call(api, "admin", "PATCH", "/api/users/hokatsu.sato", {"password": "short"})
    assert weak.status_code == 422 and "password" in weak.json["error"]["fields"]
    assert _alive(session, clock, key)
    ok = _call(api, "admin", "PATCH", "/api/users/hokatsu.sato", {"password": "a new long passphrase"})
    assert ok.status_code == 200 and "password" not in ok.json
    assert not _alive(session, clock, key)


# ---------------------------------------------------------------- behind a reverse proxy

def _sign_in_origin(app, session, headers: dict[str, str]) -> str:  # noqa: ANN001
    from tests.ui.conftest import csrf_from

    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.9.9.9"
    token = csrf_from(client.get("/login", headers=headers).get_data(as_text=True))
    r = client.post("/login", data={"username": "hokatsu.sato", "password": "wrong password", "csrf_token": token},
                    headers=headers)
    assert r.status_code == 401
    session.rollback()
    return session.scalars(select(LoginAttempt.origin).order_by(LoginAttempt.id.desc())).first()


def _app(settings, env, clock, proxies: int):  # noqa: ANN001, ANN202
    from dataclasses import replace

    from web import create_app

    return create_app(replace(settings, trusted_proxies=proxies), clock=clock, env=env, config={"TESTING": True})


def test_forwarded_addresses_are_ignored_without_trusted_proxies(settings, env, clock, session, sato) -> None:  # noqa: ANN001
    app = _app(settings, env, clock, 0)
    assert _sign_in_origin(app, session, {"X-Forwarded-For": "203.0.113.9"}) == "10.9.9.9"


def test_the_client_address_comes_from_as_many_entries_as_trusted_proxies(settings, env, clock, session, sato) -> None:  # noqa: ANN001
    app = _app(settings, env, clock, 1)
    assert _sign_in_origin(app, session, {"X-Forwarded-For": "203.0.113.9"}) == "203.0.113.9"
    # an entry the client wrote itself, before the one our proxy added, is not believed
    assert _sign_in_origin(app, session, {"X-Forwarded-For": "198.51.100.1, 203.0.113.10"}) == "203.0.113.10"
    https = app.test_client().get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in https.headers["Set-Cookie"]
