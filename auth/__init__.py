"""Sign-in, sessions, CSRF, security headers and the access guard of the web app.

``auth.install(app, settings, sessions, redis_client, callback_pages)`` wires it all onto the
Dash app's Flask server (app.py does). The policy — which role may use which route, page and
callback — is ``auth/policy.py``; docs/security.md states it for people.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import dash
import flask
import redis
import werkzeug
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from sqlalchemy.orm import Session, sessionmaker

from dashboard.settings import Settings
from feeds.sessionstore import SessionStore
from feeds.signinlocks import SigninLocks

from . import guard, headers, identity, logredact, policy, sessions, views
from .proxies import TrustedProxies, networks_of
from .scrape import ScrapeAccess
from .throttle import LoginThrottle

CSRF_COOKIE = "_csrf_token"  # Dash's renderer sends this cookie back as X-CSRFToken


def install(app: dash.Dash, settings: Settings, db_sessions: sessionmaker[Session],
            redis_client: redis.Redis, callback_pages: Callable[[], Mapping[str, str]]) -> None:
    server = app.server
    logredact.install()  # display tokens never reach an access log line
    # Behind a reverse proxy: the client's address as the trusted proxies report it (first,
    # so every limit and log below sees the real client).
    networks = networks_of(settings.trusted_proxies)
    server.wsgi_app = TrustedProxies(server.wsgi_app, networks)
    store = SessionStore(redis_client, settings)
    checks = sessions.install(server, settings, db_sessions, store)
    server.config.update(
        # A wall runs for weeks on one page load: its token lives as long as the session.
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_HEADERS=["X-CSRFToken"],
    )
    throttle = LoginThrottle(settings, redis_client)
    views.register(server, settings, db_sessions, throttle, store, SigninLocks(redis_client, settings), checks)
    # Order matters: session lifetimes, then the guard (401/403 before anything else looks at
    # the request), then CSRF on the requests the guard let through.
    guard.install(server, db_sessions, throttle, store, callback_pages, ScrapeAccess(settings.metrics_token, networks))
    csrf = CSRFProtect(server)
    headers.install(app, settings)

    for name, blueprint in server.blueprints.items():
        if name.startswith("api_"):
            csrf.exempt(blueprint)  # bearer-token API, GET only: no cookie-borne writes

    @server.errorhandler(CSRFError)
    def _csrf_failed(_exc: CSRFError) -> werkzeug.Response:
        response: werkzeug.Response
        if flask.request.path.startswith("/_dash"):
            response = flask.Response('{"error": "页面已过期，请刷新页面"}', status=400,
                                      mimetype="application/json")
        else:
            response = flask.redirect("/login", code=303)
        return response

    @server.after_request
    def _csrf_cookie(response: flask.Response) -> flask.Response:
        # Pages (HTML) of a signed-in user carry the CSRF token for the page's callbacks.
        if identity.current() is not None and response.mimetype == "text/html" \
                and flask.request.method == "GET":
            response.set_cookie(CSRF_COOKIE, generate_csrf(), samesite="Lax",
                                secure=settings.cookie_secure, httponly=False)
        return response


__all__ = ["identity", "install", "policy"]
