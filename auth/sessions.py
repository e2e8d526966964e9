"""Browser sessions: Flask-Login over Flask's signed cookie, with the lifetimes of docs/security.md.

- The cookie holds ``user id | binding`` (``Identity.get_id``) and two times: when the session
  began (``iat``) and when it was last used (``seen``). It is signed with the deployment's
  secret key (``GRIDHALL_SECRET_KEY`` or ``DATA_DIR/secret_key``), HttpOnly, SameSite=Lax.
- People (leader, shift_lead, admin): at most :data:`SESSION_MAX_AGE` (12 h: a shift and its
  handover) and :data:`SESSION_IDLE` (2 h) without a request.
- Wall screens (display users) are bound to their display token: the session lives while the
  token is usable (not revoked, user not disabled, used within 30 days), with no age limit.
- Every request re-checks the user (cached :data:`RECHECK_S` seconds per session id): a
  disabled user, a changed password or a revoked token ends the session within that time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import flask
import flask_login
from sqlalchemy.orm import Session, sessionmaker

from dashboard.models import ApiToken, User
from dashboard.settings import Settings
from dashboard.users import SESSION_IDLE, SESSION_MAX_AGE, TOKEN_TOUCH_INTERVAL, UserRole, token_usable

from .identity import Identity

log = logging.getLogger(__name__)

COOKIE_NAME = "gridhall_session"
RECHECK_S = 5.0  # how stale a session's user check may be (disable → signed out within this)
SEEN_WRITE_S = 60  # write the "last used" time into the cookie at most this often


def secret_key(settings: Settings) -> str:
    """GRIDHALL_SECRET_KEY, or the deployment's key file (made once, 0600)."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.data_dir / "secret_key"
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        _write_new_key(path)
    return path.read_text(encoding="utf-8").strip()


def _write_new_key(path: Path) -> None:
    # O_EXCL: two workers starting together must not each write a different key.
    tmp = path.with_name(f".secret_key.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_urlsafe(64))
    try:
        os.link(tmp, path)  # atomic: fails if another process made the key first
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def password_binding(user: User) -> str:
    """A session of a password sign-in is bound to the password hash: a new password ends it."""
    digest = hashlib.sha256((user.password_hash or "").encode("utf-8")).hexdigest()[:16]
    return f"p:{digest}"


def token_binding(token: ApiToken) -> str:
    return f"t:{token.id}"


def identity_of(user: User, binding: str) -> Identity:
    return Identity(user.id, user.username, user.display_name, user.role, user.scope_region_id, binding)


class UserChecks:
    """Loads the identity behind a session id, re-checked against the database every few seconds."""

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], float] = time.monotonic) -> None:
        self.sessions = sessions
        self.clock = clock
        self._cache: dict[str, tuple[float, Identity | None]] = {}
        self._lock = threading.Lock()

    def load(self, session_id: str) -> Identity | None:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(session_id)
        if hit is not None and now - hit[0] < RECHECK_S:
            return hit[1]
        who = self._check(session_id)
        with self._lock:
            if len(self._cache) > 10_000:  # bounded: stale entries of old sessions go
                self._cache.clear()
            self._cache[session_id] = (now, who)
        return who

    def forget(self, session_id: str) -> None:
        with self._lock:
            self._cache.pop(session_id, None)

    def _check(self, session_id: str) -> Identity | None:
        uid_text, _, binding = session_id.partition("|")
        if not uid_text.isdigit() or not binding:
            return None
        with self.sessions() as session:
            user = session.get(User, int(uid_text))
            if user is None or user.disabled:
                return None
            if binding.startswith("p:"):
                if user.role == UserRole.DISPLAY.value or binding != password_binding(user):
                    return None
                return identity_of(user, binding)
            if binding.startswith("t:") and binding[2:].isdigit():
                token = session.get(ApiToken, int(binding[2:]))
                now = datetime.now(timezone.utc)
                if token is None or token.user_id != user.id or not token_usable(token, now):
                    return None
                if token.last_used_at is None or now - token.last_used_at >= TOKEN_TOUCH_INTERVAL:
                    token.last_used_at = now  # a wall in use keeps its token alive
                    session.commit()
                return identity_of(user, binding)
        return None


def install(server: flask.Flask, settings: Settings, sessions: sessionmaker[Session]) -> UserChecks:
    """Configure the session cookie and Flask-Login on ``server``."""
    server.secret_key = secret_key(settings)
    server.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        # The cookie outlives a shift so a wall screen stays signed in; people are limited
        # server-side by iat/seen below, whatever the cookie says.
        PERMANENT_SESSION_LIFETIME=30 * 24 * 3600,
        # Not a new cookie on every 500 ms poll: it is re-sent when the session changes, which
        # the "seen" time below does once a minute — enough to keep the 30 days rolling.
        SESSION_REFRESH_EACH_REQUEST=False,
        REMEMBER_COOKIE_DURATION=0,
    )
    checks = UserChecks(sessions)
    manager = flask_login.LoginManager()
    manager.session_protection = None  # IP/UA pinning breaks walls behind changing proxies
    manager.init_app(server)
    manager.user_loader(checks.load)

    @server.before_request
    def _lifetimes() -> None:
        who = flask_login.current_user
        if not isinstance(who, Identity):
            return
        now = int(time.time())
        session = flask.session
        iat = int(session.get("iat", 0))
        seen = int(session.get("seen", 0))
        if not who.via_token:
            if now - iat > SESSION_MAX_AGE.total_seconds() or now - seen > SESSION_IDLE.total_seconds():
                end_session()
                return
        if now - seen >= SEEN_WRITE_S:
            session["seen"] = now

    return checks


def begin_session(who: Identity) -> None:
    """Sign ``who`` in for this browser (a fresh session: no fixation)."""
    flask.session.clear()
    flask_login.login_user(who)
    now = int(time.time())
    flask.session.permanent = True
    flask.session["iat"] = now
    flask.session["seen"] = now


def end_session() -> None:
    flask_login.logout_user()
    flask.session.clear()
