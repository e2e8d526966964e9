"""Users and sign-in for tests: make a user of a role and scope, sign a browser or client in.

    who = make_user(sessions, "leader")                    # city scope
    who = make_user(sessions, "shift_lead", region="110105")  # a district
    signin_page(page, base_url, who)                       # Playwright page, via the real form
    client = signin_client(app.server.test_client(), who)  # Flask test client, via the form
    url = display_url(sessions, base_url)                  # /wall?token=… for a wall screen
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy.orm import Session, sessionmaker

from dashboard.store import users

# Cheap hashing for test users only: the login re-hashes with the real parameters.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct-horse-battery"
_serial = itertools.count(1)


@dataclass(frozen=True)
class TestUser:
    __test__ = False  # a user, not a test class for pytest to collect

    username: str
    password: str | None
    role: str
    region: str | None
    user_id: int


def make_user(sessions: sessionmaker[Session], role: str, *, region: str | None = None,
              username: str | None = None, display_name: str | None = None) -> TestUser:
    """A user of ``role`` scoped to ``region`` (a district/street code; None: the city)."""
    serial = next(_serial)
    name = username or f"{role.replace('_', '')}{serial}"
    # A Chinese display name: pages show it, and the wall tests assert there is no English.
    display_name = display_name or f"{users.UserRole(role).label}{serial}"
    password = None if role == "display" else PASSWORD
    with sessions() as session:
        user = users.create_user(session, name, role, scope=region, password=password,
                                 display_name=display_name, hasher=FAST_HASHER)
        session.commit()
        return TestUser(name, password, role, region, user.id)


def display_token(sessions: sessionmaker[Session], who: TestUser | None = None) -> str:
    """A display token (plaintext) of ``who`` or of a new city-scoped display user."""
    who = who or make_user(sessions, "display")
    with sessions() as session:
        user = users.require_user(session, who.username)
        _, plaintext = users.issue_token(session, user, name="wall")
        session.commit()
        return plaintext


def display_url(sessions: sessionmaker[Session], base_url: str, path: str = "/wall") -> str:
    sep = "&" if "?" in path else "?"
    return f"{base_url}{path}{sep}token={display_token(sessions)}"


def api_token(sessions: sessionmaker[Session], who: TestUser) -> str:
    with sessions() as session:
        user = users.require_user(session, who.username)
        _, plaintext = users.issue_token(session, user, name="test")
        session.commit()
        return plaintext


def signin_page(page: Any, base_url: str, who: TestUser, next_path: str | None = None) -> None:
    """Sign in through the real form in a Playwright page (waits for the redirect)."""
    url = f"{base_url}/login" + (f"?next={next_path}" if next_path else "")
    page.goto(url)
    page.fill("input[name=username]", who.username)
    page.fill("input[name=password]", who.password or "")
    with page.expect_navigation():
        page.click("button[type=submit]")


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token in the form"
    return match.group(1)


def signin_client(client: Any, who: TestUser) -> Any:
    """Sign a Flask test client in through POST /login; returns the client."""
    form = client.get("/login").get_data(as_text=True)
    r = client.post("/login", data={"username": who.username, "password": who.password or "",
                                    "csrf_token": csrf_of(form)})
    assert r.status_code in (302, 303), (r.status_code, r.get_data(as_text=True)[:300])
    return client


def csrf_header(client: Any) -> dict[str, str]:
    """The X-CSRFToken header Dash's renderer sends (from the _csrf_token cookie)."""
    cookie = client.get_cookie("_csrf_token")
    assert cookie is not None, "no _csrf_token cookie: open a page first"
    return {"X-CSRFToken": cookie.value}


def signin_opener(base_url: str, who: TestUser) -> Any:
    """A urllib opener with a cookie jar, signed in through the form (for subprocess servers)."""
    import http.cookiejar
    import urllib.parse
    import urllib.request

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base_url}/login", timeout=10) as r:
        token = csrf_of(r.read().decode())
    data = urllib.parse.urlencode({"username": who.username, "password": who.password or "",
                                   "csrf_token": token}).encode()
    with opener.open(f"{base_url}/login", data=data, timeout=10) as r:
        assert "/login" not in r.geturl(), "sign-in failed"
    return opener
