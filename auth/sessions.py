"""Browser sessions: Flask-Login over Flask's signed cookie, with the lifetimes of docs/security.md.

- The cookie holds ``user id | binding | session id`` (``Identity.get_id``) and two times: when
  the session began (``iat``) and when it was last used (``seen``). It is signed with the
  deployment's secret key (``GRIDHALL_SECRET_KEY`` or ``DATA_DIR/secret_key``), HttpOnly,
  SameSite=Lax.
- The session id names a record in Redis (``feeds.sessionstore``), checked on every
  request by every worker: sign-out, a new password and ``gridhall users disable`` delete it,
  and a copy of the cookie stops working at its next request. While Redis is unreachable,
  sessions confirmed in the last :data:`OUTAGE_GRACE_S` keep working and others get 503 (never
  the sign-in page); new sign-ins are refused (503).
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
from dataclasses import replace
from pathlib import Path

import flask
import flask_login
import redis
from sqlalchemy.orm import Session, sessionmaker

from dashboard.rules.clock import utcnow
from dashboard.settings import Settings
from dashboard.store.models import ApiToken, User
from dashboard.store.users import (
    SESSION_IDLE,
    SESSION_MAX_AGE,
    TOKEN_IDLE_LIFETIME,
    TOKEN_TOUCH_INTERVAL,
    UserRole,
    token_usable,
)
from feeds.sessionstore import SessionStore

from .identity import Identity

log = logging.getLogger(__name__)

COOKIE_NAME = "gridhall_session"
RECHECK_S = 5.0  # how stale a session's user check may be (disable → signed out within this)
SEEN_WRITE_S = 60  # write the "last used" time into the cookie at most this often
# While Redis is unreachable, a session this worker saw confirmed in Redis at most this long
# ago keeps working (docs/security.md, "While Redis is unreachable"); others get 503, never 401.
OUTAGE_GRACE_S = 15 * 60
REDIS_RETRY_S = 2.0  # after a Redis error, sessions skip Redis this long (each try may wait 1 s)
WALL_RECORD_TTL = TOKEN_IDLE_LIFETIME  # a wall's record, renewed every minute while in use


# Where install() keeps this app's UserChecks (flask.Flask.extensions).
CHECKS_KEY = "gridhall.user_checks"


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
    """Loads the identity behind a session cookie: its Redis record, then its user in the database.

    The Redis record (``feeds.sessionstore``) is read on every request, so a revoked
    session ends on every worker at its next request. The database check (disabled user, new
    password, revoked token) is cached :data:`RECHECK_S` seconds per session.
    """

    def __init__(self, sessions: sessionmaker[Session], store: SessionStore,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sessions = sessions
        self.store = store
        self.clock = clock
        self._cache: dict[str, tuple[float, Identity | None]] = {}
        # When Redis last confirmed each session id (this worker): the outage grace counts from it.
        self._confirmed: dict[str, float] = {}
        self._redis_down_until = 0.0
        self._lock = threading.Lock()

    def load(self, session_id: str) -> Identity | None:
        uid_text, _, rest = session_id.partition("|")
        binding, _, sid = rest.partition("|")
        if not uid_text.isdigit() or not binding:
            return None
        if sid:
            if not self._alive(sid, int(uid_text)):
                return None
        elif not binding.startswith("t:"):
            return None  # a person's session from before server-side records: sign in again
        # (A wall's cookie from before them is still honoured; _lifetimes gives it a record.)
        who = self._checked(f"{uid_text}|{binding}")
        return replace(who, sid=sid) if who is not None else None

    def _alive(self, sid: str, user_id: int) -> bool:
        """Is the session's Redis record there? Within the outage grace, "yes" when Redis is away."""
        now = self.clock()
        if now >= self._redis_down_until:
            try:
                alive = self.store.alive(sid, user_id)
            except (redis.RedisError, OSError) as exc:
                # Each try may wait for the client's timeout: skip Redis for a moment after a failure.
                self._redis_down_until = now + REDIS_RETRY_S
                log.warning("session records unreachable in Redis (%s); sessions confirmed in the last "
                            "%d s keep working", _first_line(exc), OUTAGE_GRACE_S)
            else:
                with self._lock:
                    if alive:
                        if len(self._confirmed) > 10_000:
                            self._prune(now)
                        self._confirmed[sid] = now
                    else:
                        self._confirmed.pop(sid, None)
                return alive
        with self._lock:
            last = self._confirmed.get(sid)
        if last is not None and now - last <= OUTAGE_GRACE_S:
            return True
        if flask.has_request_context():
            flask.g.session_unconfirmed = True  # the guard answers 503, not 401: no sign-in page
        return False

    def _prune(self, now: float) -> None:
        for sid, at in list(self._confirmed.items()):
            if now - at > OUTAGE_GRACE_S:
                del self._confirmed[sid]

    def _checked(self, key: str) -> Identity | None:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < RECHECK_S:
            return hit[1]
        who = self._check(key)
        with self._lock:
            if len(self._cache) > 10_000:  # bounded: stale entries of old sessions go
                self._cache.clear()
            self._cache[key] = (now, who)
        return who

    def forget(self, session_id: str) -> None:
        uid_text, _, rest = session_id.partition("|")
        binding, _, sid = rest.partition("|")
        with self._lock:
            self._cache.pop(f"{uid_text}|{binding}", None)
            self._confirmed.pop(sid, None)

    def _check(self, key: str) -> Identity | None:
        uid_text, _, binding = key.partition("|")
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
                now = utcnow()
                if token is None or token.user_id != user.id or not token_usable(token, now):
                    return None
                if token.last_used_at is None or now - token.last_used_at >= TOKEN_TOUCH_INTERVAL:
                    token.last_used_at = now  # a wall in use keeps its token alive
                    session.commit()
                return identity_of(user, binding)
        return None


def install(server: flask.Flask, settings: Settings, sessions: sessionmaker[Session],
            store: SessionStore) -> UserChecks:
    """Configure the session cookie and Flask-Login on ``server``."""
    server.secret_key = secret_key(settings)
    server.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        # The cookie outlives a shift so a wall screen stays signed in; people are limited
        # server-side by iat/seen below and by their Redis record, whatever the cookie says.
        PERMANENT_SESSION_LIFETIME=30 * 24 * 3600,
        # Not a new cookie on every 500 ms poll: it is re-sent when the session changes, which
        # the "seen" time below does once a minute — enough to keep the 30 days rolling.
        SESSION_REFRESH_EACH_REQUEST=False,
        REMEMBER_COOKIE_DURATION=0,
    )
    checks = UserChecks(sessions, store)
    server.extensions[CHECKS_KEY] = checks  # session_alive() re-asks it for long-lived streams
    manager = flask_login.LoginManager()
    manager.session_protection = None  # IP/UA pinning breaks walls behind changing proxies
    manager.init_app(server)
    manager.user_loader(checks.load)

    @server.before_request
    def _lifetimes() -> None:
        who = flask_login.current_user._get_current_object()
        if not isinstance(who, Identity):
            return
        now = int(time.time())
        session = flask.session
        iat = int(session.get("iat", 0))
        seen = int(session.get("seen", 0))
        if not who.via_token:
            if now - iat > SESSION_MAX_AGE.total_seconds() or now - seen > SESSION_IDLE.total_seconds():
                end_session(store)
                return
        if now - seen >= SEEN_WRITE_S:
            session["seen"] = now
            if who.via_token:
                _keep_wall_record(store, who)

    return checks


def _keep_wall_record(store: SessionStore, who: Identity) -> None:
    """A wall in use keeps its record alive; a wall signed in before records existed gets one."""
    try:
        if who.sid:
            store.touch(who.sid, who.user_id, WALL_RECORD_TTL)
        else:
            upgraded = replace(who, sid=store.create(who.user_id, WALL_RECORD_TTL))
            flask_login.login_user(upgraded)
    except (redis.RedisError, OSError) as exc:  # next minute again; the session goes on meanwhile
        log.warning("wall session record not renewed: %s", _first_line(exc))


def begin_session(who: Identity, store: SessionStore) -> None:
    """Sign ``who`` in for this browser (a fresh session: no fixation), with a new Redis record.

    Raises ``redis.RedisError`` when Redis is unreachable: no sign-in without a record that
    sign-out can revoke (the caller answers 503).
    """
    ttl = WALL_RECORD_TTL if who.via_token else SESSION_MAX_AGE
    sid = store.create(who.user_id, ttl)
    flask.session.clear()
    flask_login.login_user(replace(who, sid=sid))
    now = int(time.time())
    flask.session.permanent = True
    flask.session["iat"] = now
    flask.session["seen"] = now


def end_session(store: SessionStore | None = None) -> None:
    """Sign this browser out and revoke its record, so a copy of the cookie stops working too."""
    who = flask_login.current_user
    if store is not None and isinstance(who, Identity) and who.sid:
        try:
            store.revoke(who.sid, who.user_id)
        except (redis.RedisError, OSError) as exc:
            # The browser's cookie goes anyway; the record lapses at its normal end.
            log.warning("session record not revoked (Redis unreachable): %s", _first_line(exc))
    flask_login.logout_user()
    flask.session.clear()


def session_check() -> Callable[[], bool]:
    """A check of whether this request's session still stands — its Redis record, its user,
    its token — that can be asked later, outside the request.

    The guard decides once, when a request starts; a stream that stays open for hours
    (``/wall/events``) asks again between messages, so a revoked session or token ends it.
    """
    who = flask_login.current_user._get_current_object() if flask.has_request_context() else None
    checks = flask.current_app.extensions.get(CHECKS_KEY) if flask.has_request_context() else None
    if not isinstance(who, Identity) or not isinstance(checks, UserChecks):
        return lambda: False
    session_id = who.get_id()
    return lambda: checks.load(session_id) is not None


def session_unconfirmed() -> bool:
    """Did this request carry a session that could not be confirmed because Redis is away?"""
    return bool(flask.has_request_context() and flask.g.get("session_unconfirmed"))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
