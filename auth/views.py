"""The sign-in page, sign-out, and the wall screen's display-token sign-in.

- ``GET /login`` shows the form; ``POST /login`` checks it (CSRF token, per-IP throttle,
  per-(account, client) lock in ``feeds.signinlocks``) and starts a session with a record in
  Redis. Every failure shows one message, so the page does not tell whether a username exists.
  While Redis is unreachable nobody is signed in (503): no session without a revocable record.
- ``POST /logout`` (with the CSRF token) ends the session and revokes its record, so a copy
  of the cookie stops working on every worker too.
- A wall screen opens ``/wall?token=<display token>`` once: the token is checked, a session
  bound to it begins, and the browser is sent to the same URL without the token (so it does not
  stay in the address bar or the history). Only display tokens sign in this way.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlencode, urlsplit

import flask
import redis
import werkzeug
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session, sessionmaker
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from dashboard.rules.clock import utcnow
from dashboard.settings import Settings
from dashboard.store.cityname import CityNameSource
from dashboard.store.users import MAX_PASSWORD_LENGTH, UserRole, verify_password, verify_token
from feeds.sessionstore import SessionStore
from feeds.signinlocks import SigninLocks

from . import policy
from .identity import Identity, current
from .proxies import client_address
from .sessions import UserChecks, begin_session, end_session, identity_of, password_binding, token_binding
from .throttle import LoginThrottle

log = logging.getLogger(__name__)

FAILED = "用户名或密码错误，或账户已被锁定或停用"
THROTTLED = "尝试次数过多，请稍后再试"
EXPIRED = "页面已过期，请重新登录"
UNAVAILABLE = "登录服务暂时不可用（会话存储无法访问），请稍后再试"

PAGE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="dark">
<title>登录 · {{ city }}数字化城市管理</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/login.css">
</head>
<body class="gh-login">
<main class="gh-login__box">
  <h1>{{ city }}数字化城市管理<br><span>指挥中心</span></h1>
  {% if message %}<p class="gh-login__error" role="alert">{{ message }}</p>{% endif %}
  <form method="post" action="/login" autocomplete="on">
    {{ form.csrf_token }}
    {{ form.next }}
    <label for="username">用户名</label>
    {{ form.username(id="username", autocomplete="username", autofocus=true, maxlength=64) }}
    <label for="password">密码</label>
    {{ form.password(id="password", autocomplete="current-password", maxlength=1024) }}
    <button type="submit">登录</button>
  </form>
  <p class="gh-login__hint">大屏请使用管理员发放的大屏链接（含令牌）打开。</p>
</main>
</body>
</html>"""


class LoginForm(FlaskForm):
    username = StringField(validators=[DataRequired(), Length(max=64)])
    password = PasswordField(validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)])
    next = HiddenField()


def safe_next(target: str | None) -> str | None:
    """A local path to return to after sign-in, or None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def home_of(who: Identity) -> str:
    return policy.HOME.get(who.role, "/login")


def register(server: flask.Flask, settings: Settings, sessions: sessionmaker[Session],
             throttle: LoginThrottle, store: SessionStore, locks: SigninLocks, checks: UserChecks) -> None:
    city_name = CityNameSource(settings, sessions)

    def render(form: LoginForm, message: str | None, status: int) -> flask.Response:
        html = flask.render_template_string(PAGE, form=form, message=message, city=city_name())
        response = flask.Response(html, status=status, mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        return response

    @server.route("/login", methods=["GET", "POST"])
    def login() -> werkzeug.Response:
        who = current()
        form = LoginForm()
        if flask.request.method == "GET":
            if who is not None:
                return flask.redirect(safe_next(flask.request.args.get("next")) or home_of(who))
            form.next.data = safe_next(flask.request.args.get("next")) or ""
            return render(form, None, 200)
        if not throttle.allow("login"):
            return render(form, THROTTLED, 429)
        if not form.validate_on_submit():
            expired = "csrf_token" in form.errors
            return render(form, EXPIRED if expired else FAILED, 400 if expired else 401)
        try:
            with sessions() as session:
                result = verify_password(session, form.username.data or "", form.password.data or "",
                                         locks=locks, client=client_address(),
                                         now=utcnow())
                session.commit()  # a re-hash and the sign-in time
                if not result.ok or result.user is None or result.user.role == UserRole.DISPLAY.value:
                    return render(form, FAILED, 401)
                identity = identity_of(result.user, password_binding(result.user))
            begin_session(identity, store)
        except (redis.RedisError, OSError) as exc:  # no locks, no session record: nobody signs in
            log.warning("sign-in refused: Redis unreachable (%s)", exc)
            return render(form, UNAVAILABLE, 503)
        return flask.redirect(safe_next(form.next.data) or home_of(identity), code=303)

    @server.route("/logout", methods=["POST"])
    def logout() -> werkzeug.Response:
        who = current()
        if who is not None:
            checks.forget(who.get_id())
        end_session(store)
        return flask.redirect("/login", code=303)


def display_token_signin(sessions: sessionmaker[Session], throttle: LoginThrottle,
                         store: SessionStore) -> werkzeug.Response | None:
    """``/wall?token=…``: sign the wall screen in and redirect to the URL without the token.

    Returns None when the request carries no token. A bad token answers 401 with the sign-in
    page's message; it never signs anyone in.
    """
    plaintext = flask.request.args.get("token")
    if plaintext is None:
        return None
    if not throttle.allow("display-token"):
        return flask.Response(THROTTLED, status=429, mimetype="text/plain; charset=utf-8")
    with sessions() as session:
        token = verify_token(session, plaintext)
        if token is None or token.user.role != UserRole.DISPLAY.value:
            session.commit()
            return flask.Response("大屏令牌无效、已停用或已过期", status=401,
                                  mimetype="text/plain; charset=utf-8")
        identity = identity_of(token.user, token_binding(token))
        session.commit()
    try:
        begin_session(identity, store)
    except (redis.RedisError, OSError) as exc:
        log.warning("wall sign-in refused: Redis unreachable (%s)", exc)
        return unavailable(UNAVAILABLE)  # the page retries by itself: the wall signs in when Redis is back
    rest = [(k, v) for k, v in flask.request.args.items(multi=True) if k != "token"]
    target = flask.request.path + (f"?{urlencode(rest)}" if rest else "")
    return flask.redirect(target, code=303)


RETRY_S = 10


def unavailable(message: str) -> flask.Response:
    """503 while Redis is unreachable: JSON for callbacks, else a page that reloads itself.

    Never the sign-in page: a wall screen shows this and carries on by itself when Redis is back.
    """
    if flask.request.path.startswith("/_dash") or flask.request.path.startswith("/api/"):
        response = flask.Response(json.dumps({"error": message}, ensure_ascii=False), status=503,
                                  mimetype="application/json")
    else:
        html = ('<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
                f'<meta http-equiv="refresh" content="{RETRY_S}"><title>503</title>'
                '<link rel="icon" href="data:,"><link rel="stylesheet" href="/assets/login.css"></head>'
                f'<body class="gh-login"><main class="gh-login__box"><h1>暂时无法确认登录状态</h1>'
                f'<p class="gh-login__error" role="alert">{message}</p>'
                f'<p>页面每 {RETRY_S} 秒自动重试，恢复后无需重新登录。</p></main></body></html>')
        response = flask.Response(html, status=503, mimetype="text/html")
    response.headers["Retry-After"] = str(RETRY_S)
    response.headers["Cache-Control"] = "no-store"
    return response
