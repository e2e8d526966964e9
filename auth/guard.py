"""The access guard: one ``before_request`` that applies ``auth.policy`` to every request.

Deny by default: a URL rule with no entry in ``policy.ROUTES``, a page path not in
``policy.PAGES`` and a Dash callback with no owning page are refused. Anonymous requests get
401 (pages: a redirect to ``/login?next=…``); signed-in users without the role get 403.
Callback requests are judged by the page that registered the callback
(``callbacks.Services.callback_pages``), so a callback of /explore cannot be called by a
wall screen even though all callbacks share one URL.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from urllib.parse import quote, urlsplit

import flask
import werkzeug
from sqlalchemy.orm import Session, sessionmaker

from feeds.sessionstore import SessionStore

from . import policy
from .identity import Identity, current
from .scrape import ScrapeAccess
from .sessions import session_unconfirmed
from .throttle import LoginThrottle
from .views import display_token_signin, home_of, unavailable

log = logging.getLogger(__name__)

# A session that cannot be confirmed because Redis is away is not "signed out": no 401.
UNCONFIRMED_TEXT = "会话服务暂时不可用，正在重试"

DENIED_TEXT = {
    401: "未登录或登录已过期",
    403: "无权访问：当前账户的角色或管辖范围不包括此页面",
    404: "页面不存在",
}


class Decision:
    """What the guard found for a request: the rule, the page (if any), and why."""

    def __init__(self, rule: policy.Rule | None, page: str | None = None, why: str = "") -> None:
        self.rule = rule
        self.page = page
        self.why = why


def _callback_page(callback_pages: Mapping[str, str]) -> str | None:
    body = flask.request.get_json(silent=True, cache=True)
    if not isinstance(body, dict):
        return None
    output = body.get("output")
    return callback_pages.get(output) if isinstance(output, str) else None


def decide(url_rule: str | None, path: str, callback_pages: Mapping[str, str]) -> Decision:
    """The rule for a request, from its matched Flask URL rule and path."""
    if url_rule is None:
        return Decision(None, why="no such route")
    entry = policy.ROUTES.get(url_rule)
    if entry is None:
        return Decision(None, why=f"route {url_rule} has no rule")
    if isinstance(entry, policy.Rule):
        return Decision(entry)
    if isinstance(entry, policy.Scrape):
        return Decision(None, why="a scrape route: auth/scrape.py decides")  # the guard asks it first
    if isinstance(entry, policy.ApiKey):
        return Decision(None, why="an Open311 route: api/open311.py decides by api_key")
    if entry.how == "path":
        page = policy.page_of(path)
    elif entry.how == "referrer":
        page = policy.page_of(urlsplit(flask.request.referrer or "").path)
    else:
        page = _callback_page(callback_pages)
    if page is None:
        return Decision(None, why="no page")
    return Decision(policy.PAGES[page], page)


def install(server: flask.Flask, sessions: sessionmaker[Session], throttle: LoginThrottle,
            store: SessionStore, callback_pages: Callable[[], Mapping[str, str]], scrape: ScrapeAccess) -> None:
    @server.before_request
    def guard() -> werkzeug.Response | None:
        request = flask.request
        url_rule = request.url_rule.rule if request.url_rule is not None else None
        if url_rule is not None and url_rule.startswith(policy.SELF_GUARDED_PREFIXES):
            return None  # the API answers 401/403 itself, in JSON (api/v1.py)
        if url_rule is not None and isinstance(policy.ROUTES.get(url_rule), policy.Scrape):
            return scrape.refusal()  # by client address or scrape token, never by session
        decision = decide(url_rule, request.path, callback_pages())
        if decision.rule is None:
            if url_rule in (None, "/<path:path>"):
                return _denied(404, decision.why)  # unknown page: the same for everyone
            if current() is None and session_unconfirmed():
                return unavailable(UNCONFIRMED_TEXT)
            return _denied(401 if current() is None else 403, decision.why)
        if decision.rule.public:
            return None
        if decision.page == "wall" and url_rule == "/<path:path>":
            signed = display_token_signin(sessions, throttle, store)
            if signed is not None:
                return signed
        who = current()
        if who is None and session_unconfirmed():
            return unavailable(UNCONFIRMED_TEXT)
        if who is None:
            if url_rule in ("/", "/<path:path>") and request.method == "GET":
                return flask.redirect(f"/login?next={quote(request.full_path.rstrip('?'), safe='/')}")
            return _denied(401, "not signed in")
        if not decision.rule.allows(who.role, who.city_scope):
            return _denied(403, f"{who.role} may not use {decision.page or url_rule}")
        if url_rule == "/":
            return flask.redirect(home_of(who))
        return None


def _denied(status: int, why: str) -> flask.Response:
    log.info("refused %s %s: %s (%s)", flask.request.method, flask.request.path, status, why)
    who: Identity | None = current()
    wants_json = flask.request.path.startswith("/_dash") or flask.request.is_json
    if wants_json:
        body = json.dumps({"error": DENIED_TEXT[status]}, ensure_ascii=False)
        response = flask.Response(body, status=status, mimetype="application/json")
    else:
        response = flask.Response(_denied_page(status, who), status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _denied_page(status: int, who: Identity | None) -> str:
    text = DENIED_TEXT[status]
    home = f'<a href="{home_of(who)}">返回首页</a>' if who is not None else '<a href="/login">登录</a>'
    return ('<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{status}</title><link rel="icon" href="data:,">'
            '<link rel="stylesheet" href="/assets/login.css"></head>'
            f'<body class="gh-login"><main class="gh-login__box"><h1>{status}</h1>'
            f'<p class="gh-login__error">{text}</p><p>{home}</p></main></body></html>')
