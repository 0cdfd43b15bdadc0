"""Fixtures of the staff page tests: personas with passwords, and a browser-like client per persona
that signs in through the sign-in page and sends the CSRF token with every form."""

from __future__ import annotations

import functools
import html
import re
from typing import Any

import pytest
from werkzeug.datastructures import MultiDict

from engine.models import User
from engine.security import users

PASSWORD = "tsunagu-test-password"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@functools.cache
def _password_hash() -> str:
    """One argon2 hash of PASSWORD for every persona (hashing is slow on purpose)."""
    user = User(name="x", display_name="x")
    users.set_password(user, PASSWORD)
    return user.password_hash


def csrf_from(page: str) -> str:
    m = _TOKEN.search(page)
    assert m, "no CSRF token in the page"
    return html.unescape(m.group(1))


class PageClient:
    """A test client that keeps its cookies and adds the page's CSRF token to POSTs."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.token: str | None = None

    def get(self, url: str, **kw: Any) -> Any:
        r = self.client.get(url, **kw)
        if r.mimetype == "text/html":
            m = _TOKEN.search(r.get_data(as_text=True))
            if m:
                self.token = html.unescape(m.group(1))
        return r

    def post(self, url: str, data: Any = None, *, csrf: bool = True, **kw: Any) -> Any:
        if csrf:
            if self.token is None:
                self.get("/login")
            data = MultiDict(data or {})
            data.add("csrf_token", self.token)
        return self.client.post(url, data=data, **kw)

    def login(self, name: str, password: str = PASSWORD) -> Any:
        self.get("/login")
        return self.post("/login", {"username": name, "password": password})


@pytest.fixture
def staff(app, personas, session):  # noqa: ANN001, ANN201
    """staff("secretariat") → a PageClient signed in as that persona."""
    for person in vars(personas).values():
        if isinstance(person, User):
            person.password_hash = _password_hash()
    session.commit()

    def make(who: str | None = None) -> PageClient:
        client = PageClient(app.test_client())
        if who:
            r = client.login(getattr(personas, who).name)
            assert r.status_code == 302, r.get_data(as_text=True)[:500]
            client.get("/")
        return client

    return make
