"""Sign-in, sessions, the display-token sign-in, throttling and security headers (auth/)."""

from __future__ import annotations

import stat
import time
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

import auth.sessions
from authkit import PASSWORD, csrf_of, display_token, make_user, signin_client
from dashboard import users
from dashboard.settings import Settings


@pytest.fixture
def app(dash_app: Any) -> Any:
    return dash_app


@pytest.fixture
def recheck_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sessions re-check their user on every request (instead of every 5 s)."""
    monkeypatch.setattr(auth.sessions, "RECHECK_S", 0.0)


def _post_login(client: Any, username: str, password: str, next_path: str = "") -> Any:
    form = client.get("/login" + (f"?next={next_path}" if next_path else "")).get_data(as_text=True)
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf_of(form), "next": next_path})


def test_sign_in_lands_on_the_role_home_and_next_stays_local(app: Any, sessions: sessionmaker[Session]) -> None:
    leader = make_user(sessions, "leader")
    r = _post_login(app.server.test_client(), leader.username, PASSWORD)
    assert r.status_code == 303 and r.headers["Location"] == "/view"
    r = _post_login(app.server.test_client(), leader.username, PASSWORD, "/explore?region=990101")
    assert r.headers["Location"] == "/explore?region=990101"
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        r = _post_login(app.server.test_client(), leader.username, PASSWORD, evil)
        assert r.headers["Location"] == "/view", evil  # no open redirect


def test_every_failure_says_the_same(app: Any, sessions: sessionmaker[Session]) -> None:
    lead = make_user(sessions, "shift_lead")
    gone = make_user(sessions, "leader")
    with sessions() as s:
        users.disable_user(s, users.require_user(s, gone.username))
        s.commit()
    wall = make_user(sessions, "display")
    bodies = set()
    for name, password in ((lead.username, "wrong-password-1"), ("nobody", PASSWORD),
                           (gone.username, PASSWORD), (wall.username, PASSWORD)):
        r = _post_login(app.server.test_client(), name, password)
        assert r.status_code == 401
        text = r.get_data(as_text=True)
        assert "用户名或密码错误" in text
        bodies.add(text.split('name="csrf_token"')[0])  # the page up to the per-request token
    assert len(bodies) == 1
    # Without the CSRF token the form is refused before the password is looked at.
    client = app.server.test_client()
    r = client.post("/login", data={"username": lead.username, "password": PASSWORD})
    assert r.status_code == 303 and r.headers["Location"] == "/login"
    assert client.get("/explore").status_code == 302  # not signed in


def test_per_ip_throttle_counts_in_redis(settings: Settings, engine: Any, sessions: sessionmaker[Session]) -> None:
    import app as appmod

    application = appmod.create_app(settings.model_copy(update={"login_rate_per_minute": 3}))
    try:
        lead = make_user(sessions, "shift_lead")
        client = application.server.test_client()
        codes = [_post_login(client, lead.username, "wrong-password-1").status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        # The right password is refused too while the address is over its limit …
        assert _post_login(client, lead.username, PASSWORD).status_code == 429
        # … but another address is not affected.
        other = application.server.test_client()
        form = other.get("/login").get_data(as_text=True)
        r = other.post("/login", data={"username": lead.username, "password": PASSWORD, "csrf_token": csrf_of(form)},
                       environ_base={"REMOTE_ADDR": "10.0.0.9"})
        assert r.status_code == 303
    finally:
        application.server.extensions[appmod.EXTENSION_KEY].close()


def test_session_lifetimes_are_enforced_on_the_server(app: Any, sessions: sessionmaker[Session]) -> None:
    leader = make_user(sessions, "leader")
    client = signin_client(app.server.test_client(), leader)
    assert client.get("/view").status_code == 200
    with client.session_transaction() as sess:
        sess["seen"] = int(time.time()) - 2 * 3600 - 5  # idle for just over 2 hours
    assert client.get("/view").status_code == 302
    client = signin_client(app.server.test_client(), leader)
    with client.session_transaction() as sess:
        sess["iat"] = int(time.time()) - 12 * 3600 - 5  # active all along, but over 12 hours old
    r = client.get("/view")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")


def test_new_password_and_disabling_end_sessions(app: Any, sessions: sessionmaker[Session], recheck_now: None) -> None:
    leader = make_user(sessions, "leader")
    client = signin_client(app.server.test_client(), leader)
    assert client.get("/view").status_code == 200
    with sessions() as s:
        users.set_password(s, users.require_user(s, leader.username), "another-password-2")
        s.commit()
    assert client.get("/view").status_code == 302
    lead = make_user(sessions, "shift_lead")
    client = signin_client(app.server.test_client(), lead)
    assert client.get("/explore").status_code == 200
    with sessions() as s:
        users.disable_user(s, users.require_user(s, lead.username))
        s.commit()
    assert client.get("/explore").status_code == 302


def test_display_token_signs_a_wall_in_and_nothing_else(app: Any, sessions: sessionmaker[Session],
                                                        recheck_now: None) -> None:
    wall = make_user(sessions, "display")
    token = display_token(sessions, wall)
    client = app.server.test_client()
    r = client.get(f"/wall?metric=overdue&token={token}")
    assert r.status_code == 303 and r.headers["Location"] == "/wall?metric=overdue"  # token dropped
    assert client.get("/wall?metric=overdue").status_code == 200
    for path in ("/explore", "/view", "/live", "/api/v1/summary"):
        assert client.get(path).status_code == 403, path
    # A person's API token does not open the wall; a wrong token signs nobody in.
    person = make_user(sessions, "leader")
    with sessions() as s:
        _, api_token = users.issue_token(s, users.require_user(s, person.username))
        s.commit()
    for bad in (api_token, "gh_not-a-token", ""):
        fresh = app.server.test_client()
        assert fresh.get(f"/wall?token={bad}").status_code == 401
        assert fresh.get("/wall").status_code == 302
    # Revoking the token signs the screen out.
    with sessions() as s:
        users.revoke_tokens(s, users.require_user(s, wall.username))
        s.commit()
    assert client.get("/wall").status_code == 302


def test_security_headers_and_csp(app: Any, sessions: sessionmaker[Session]) -> None:
    client = signin_client(app.server.test_client(), make_user(sessions, "shift_lead"))
    for path in ("/login", "/explore", "/healthz"):
        h = client.get(path).headers
        csp = h["Content-Security-Policy"]
        script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert h["X-Frame-Options"] == "DENY" and h["X-Content-Type-Options"] == "nosniff"
    page = client.get("/explore")
    cookie = page.headers.getlist("Set-Cookie")
    assert any(c.startswith("_csrf_token=") for c in cookie)
    session_cookie = client.get_cookie("gridhall_session")
    assert session_cookie is not None and session_cookie.http_only


def test_secret_key_file_is_private_and_shared(settings: Settings) -> None:
    key = auth.sessions.secret_key(settings)
    path = settings.data_dir / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.sessions.secret_key(settings) == key and len(key) >= 64
    assert auth.sessions.secret_key(settings.model_copy(update={"secret_key": "x" * 40})) == "x" * 40


def test_display_users_cannot_have_a_region_scope(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(users.UserError, match="city-wide wall"):
        make_user(sessions, "display", region="990101")


def test_api_takes_the_browser_session_too(app: Any, sessions: sessionmaker[Session]) -> None:
    leader = signin_client(app.server.test_client(), make_user(sessions, "leader", region=None))
    r = leader.get("/api/v1/summary")
    assert r.status_code == 200 and r.get_json()["scope_name"] == "全市"
    # A header that is present but wrong is refused, session or not.
    assert leader.get("/api/v1/summary", headers={"Authorization": "Bearer gh_wrong"}).status_code == 401
    assert app.server.test_client().get("/api/v1/summary").status_code == 401


def test_polls_do_not_resend_the_session_cookie(app: Any, sessions: sessionmaker[Session]) -> None:
    """A wall polls twice a second: its responses carry no Set-Cookie unless the session changed."""
    client = app.server.test_client()
    assert client.get(f"/wall?token={display_token(sessions)}").status_code == 303
    assert client.get("/wall").status_code == 200
    for _ in range(3):
        r = client.get("/_dash-dependencies")
        assert r.status_code == 200 and "Set-Cookie" not in r.headers


def test_a_deep_link_survives_the_sign_in(app: Any, sessions: sessionmaker[Session]) -> None:
    client = app.server.test_client()
    deep = "/explore?region=990101&window=7d&stage=dispatched"
    r = client.get(deep)
    assert r.status_code == 302
    login = r.headers["Location"]
    assert login.startswith("/login?next=")
    form = client.get(login).get_data(as_text=True)
    lead = make_user(sessions, "shift_lead")
    r = client.post("/login", data={"username": lead.username, "password": PASSWORD,
                                    "csrf_token": csrf_of(form), "next": _hidden_next(form)})
    assert r.status_code == 303 and r.headers["Location"] == deep


def _hidden_next(form: str) -> str:
    import html
    import re

    match = re.search(r'name="next"[^>]*value="([^"]*)"', form) or re.search(r'value="([^"]*)"[^>]*name="next"', form)
    assert match, "no next field"
    return html.unescape(match.group(1))
