"""Users, roles, passwords, API tokens and login throttling (the domain of sign-in; no web code).

Every function takes a SQLAlchemy ``Session`` and leaves the transaction to the caller
(``dashboard.store.db.transaction``). Times are aware UTC datetimes; functions that depend on the
clock take ``now`` so that tests (and the web layer) can inject it.

- **Passwords** are hashed with Argon2id (argon2-cffi, its RFC 9106 low-memory defaults:
  t=3, m=64 MiB, p=4). A successful verification re-hashes a hash made with older
  parameters. An unknown user, a user without a password and a locked user cost the same
  argon2 verification against a dummy hash, so timing does not tell which usernames exist.
- **Tokens** are ``gh_`` + 32 random bytes (URL-safe base64); only their SHA-256 is stored
  (a high-entropy secret needs no slow hash). The plaintext is returned once, by
  :func:`issue_token`.
- **Throttling**: after :data:`MAX_FAILURES` consecutive failed sign-ins from one client
  address an account is locked for that address for :data:`LOCK_FIRST`, doubling with every
  further failure up to :data:`LOCK_MAX` (:func:`lock_duration`); the counts live in Redis
  (``feeds.signinlocks``), so a stranger elsewhere cannot lock a real user out. A
  successful sign-in resets that address's count; an admin's unlock or a new password every one.

docs/security.md states the policy; the web sign-in (sessions, CSRF, headers) comes later.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from dashboard.rules.clock import utcnow
from dashboard.rules.vocab import LabelledEnum, RegionLevel
from dashboard.store.models import ApiToken, Region, User


class SigninLocks(Protocol):
    """What sign-in needs of the per-(account, client) locks; ``feeds.signinlocks`` keeps them
    in Redis (the domain core imports no Redis)."""

    def locked_until(self, user_id: int, client: str, now: datetime) -> datetime | None: ...
    def failed(self, user_id: int, client: str, now: datetime) -> datetime | None: ...
    def succeeded(self, user_id: int, client: str) -> None: ...


class UserRole(LabelledEnum):
    """What a signed-in user may do (docs/security.md has the whole matrix)."""

    DISPLAY = "display", "大屏"  # a wall screen: /wall only, by a long-lived token
    LEADER = "leader", "领导"  # read-only: /view and /explore
    SHIFT_LEAD = "shift_lead", "值班长"  # /explore, acknowledges and annotates hot spots
    ADMIN = "admin", "管理员"  # manages users


# -- policy constants (docs/security.md) ------------------------------------------------
MAX_FAILURES = 5  # consecutive failed sign-ins (from one client address) before the first lock
LOCK_FIRST = timedelta(minutes=5)  # the first lock; doubles with every further failure …
LOCK_MAX = timedelta(hours=1)  # … up to this
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # hashing is costly; refuse megabyte "passwords"

TOKEN_PREFIX = "gh_"
TOKEN_BYTES = 32
DEFAULT_TOKEN_DAYS = 90  # tokens of people (leader, shift_lead, admin) expire …
MAX_TOKEN_DAYS = 365  # … after at most a year
TOKEN_IDLE_LIFETIME = timedelta(days=30)  # a token without expiry lapses when unused this long
TOKEN_TOUCH_INTERVAL = timedelta(minutes=10)  # last_used_at is written at most this often

# For the web sign-in (not implemented yet): a browser session lasts at most SESSION_MAX_AGE
# (one 12-hour shift with its handover) and ends after SESSION_IDLE without a request.
SESSION_MAX_AGE = timedelta(hours=12)
SESSION_IDLE = timedelta(hours=2)

USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9._@-]{1,63}")

HASHER = PasswordHasher()  # argon2id with argon2-cffi's RFC 9106 low-memory parameters


class UserError(ValueError):
    """A request about users that cannot be done; the message is one line for people."""


class LoginOutcome(StrEnum):
    OK = "ok"
    BAD_CREDENTIALS = "bad_credentials"  # unknown user, wrong password or no password
    LOCKED = "locked"  # throttled: too many failures, try again after locked_until
    DISABLED = "disabled"  # right password, but the account is disabled


@dataclass(frozen=True)
class LoginResult:
    """What a sign-in attempt came to. Show people one message for every failure."""

    outcome: LoginOutcome
    user: User | None = None  # only when outcome is OK
    locked_until: datetime | None = None  # when outcome is LOCKED (or this attempt locked it)

    @property
    def ok(self) -> bool:
        return self.outcome is LoginOutcome.OK


def _now(now: datetime | None) -> datetime:
    if now is None:
        return utcnow()
    if now.tzinfo is None:
        raise ValueError("naive datetime given; pass an aware datetime")
    return now


def _hasher(hasher: PasswordHasher | None) -> PasswordHasher:
    return hasher or HASHER


# -- users ------------------------------------------------------------------------------
def normalise_username(username: str) -> str:
    return username.strip().lower()


def get_user(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == normalise_username(username))).first()


def active_user(session: Session, user_id: int) -> User | None:
    """The user with this id; None when there is none or it is disabled."""
    user = session.get(User, user_id)
    return user if user is not None and not user.disabled else None


def require_user(session: Session, username: str) -> User:
    user = get_user(session, username)
    if user is None:
        raise UserError(f"no user {username!r}")
    return user


def parse_role(role: str | UserRole) -> UserRole:
    try:
        return UserRole(role)
    except ValueError:
        names = ", ".join(f"{r.value} ({r.label})" for r in UserRole)
        raise UserError(f"unknown role {role!r}; one of {names}") from None


def scope_region(session: Session, code: str | None) -> Region | None:
    """The region a scope code names (a district or a street); None is the whole city."""
    if code is None:
        return None
    code = code.strip()
    region = session.scalars(select(Region).where(Region.code == code)).first()
    if region is None:
        raise UserError(f"no region with code {code!r} (a district has 6 digits, a street 9)")
    if region.level not in (RegionLevel.DISTRICT, RegionLevel.STREET):
        raise UserError(f"region {code} ({region.name}) is a {region.level}; "
                        "a scope is the whole city, a district or a street")
    return region


def check_new_user(
    session: Session,
    username: str,
    role: str | UserRole,
    *,
    scope: str | None = None,
    with_password: bool = False,
) -> tuple[str, UserRole, Region | None]:
    """Check a new user's name, role and scope before anything is asked or written.

    Returns the normalised username, the role and the scope region (None: the whole city).
    """
    role = parse_role(role)
    name = normalise_username(username)
    if not USERNAME_RE.fullmatch(name):
        raise UserError(f"username {username!r}: 2–64 characters of a–z, 0–9, '.', '_', '@', '-', "
                        "starting with a letter or digit")
    if get_user(session, name) is not None:
        raise UserError(f"user {name!r} exists already")
    if role is UserRole.DISPLAY and with_password:
        raise UserError("display users sign in by token only; they get no password")
    return name, role, scope_region(session, scope)


def create_user(
    session: Session,
    username: str,
    role: str | UserRole,
    *,
    display_name: str | None = None,
    scope: str | None = None,
    password: str | None = None,
    now: datetime | None = None,
    hasher: PasswordHasher | None = None,
) -> User:
    """Add a user; ``scope`` is a district or street code (None: the whole city).

    Display users get no password (they sign in by token). Other users may be created without
    one and get it later with :func:`set_password`; until then they cannot sign in.
    """
    name, role, region = check_new_user(session, username, role, scope=scope,
                                        with_password=password is not None)
    shown = (display_name or name).strip()
    if not shown or len(shown) > 100:
        raise UserError("display name: 1–100 characters")
    user = User(username=name, display_name=shown, role=role.value, scope_region=region,
                disabled=False, created_at=_now(now), failed_logins=0)
    if password is not None:
        user.password_hash = hash_password(password, hasher)
    session.add(user)
    session.flush()
    return user


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"password too long: at most {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str, hasher: PasswordHasher | None = None) -> str:
    check_password_policy(password)
    return _hasher(hasher).hash(password)


def set_password(session: Session, user: User, password: str, *,
                 hasher: PasswordHasher | None = None) -> None:
    """Set a new password. The sessions bound to the old one end (``auth.sessions``); the
    caller clears the sign-in locks (``SigninLocks.unlock``) and revokes the session records
    (``SessionStore.revoke_user``) — both in Redis, so not in this transaction."""
    if user.role == UserRole.DISPLAY:
        raise UserError("display users sign in by token only; they get no password")
    user.password_hash = hash_password(password, hasher)
    session.flush()


def disable_user(session: Session, user: User) -> int:
    """Disable the account and revoke all its tokens; returns how many tokens were revoked."""
    user.disabled = True
    session.flush()
    return revoke_tokens(session, user)


# -- sign-in ----------------------------------------------------------------------------
def lock_duration(failures: int) -> timedelta | None:
    """How long the account is locked after ``failures`` consecutive failures (None: not).

    5 → 5 min, 6 → 10 min, 7 → 20 min, 8 → 40 min, 9 and more → 1 h.
    """
    if failures < MAX_FAILURES:
        return None
    doublings = min(failures - MAX_FAILURES, 16)  # 2**16 × 5 min is far beyond LOCK_MAX
    return min(LOCK_FIRST * (1 << doublings), LOCK_MAX)


_dummy_hashes: dict[tuple[object, ...], str] = {}


def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash with the hasher's parameters to verify against when there is no real one."""
    key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism, hasher.hash_len,
           hasher.salt_len, hasher.type)
    if key not in _dummy_hashes:
        _dummy_hashes[key] = hasher.hash(secrets.token_urlsafe(24))
    return _dummy_hashes[key]


def _matches(hasher: PasswordHasher, stored: str, password: str) -> bool:
    try:
        return hasher.verify(stored, password)
    except VerifyMismatchError:
        return False
    except (VerificationError, InvalidHashError):
        return False  # a damaged hash in the database never lets anyone in


def verify_password(
    session: Session,
    username: str,
    password: str,
    *,
    locks: SigninLocks,
    client: str,
    now: datetime | None = None,
    hasher: PasswordHasher | None = None,
) -> LoginResult:
    """One sign-in attempt from ``client`` (its address) with its lock applied.

    Failures lock the account for that client only (``feeds.signinlocks``). Exactly one
    argon2 verification happens on every path (a dummy hash stands in for an unknown user, a
    display user and a locked client), so the answer takes the same time whether the username
    exists or not. Raises ``redis.RedisError`` when the locks cannot be read.
    """
    now = _now(now)
    h = _hasher(hasher)
    password = password[: MAX_PASSWORD_LENGTH + 1]  # an over-long password fails, cheaply
    user = get_user(session, username)
    if user is None or user.password_hash is None:
        # The same lock look-up as for a real account (id 0 is nobody's): the same time, and
        # the same refusal while Redis is away, whether the username exists or not.
        locks.locked_until(0, client, now)
        _matches(h, _dummy_hash(h), password)
        return LoginResult(LoginOutcome.BAD_CREDENTIALS)
    until = locks.locked_until(user.id, client, now)
    if until is not None:
        _matches(h, _dummy_hash(h), password)
        return LoginResult(LoginOutcome.LOCKED, locked_until=until)
    if not _matches(h, user.password_hash, password):
        if user.disabled:
            return LoginResult(LoginOutcome.BAD_CREDENTIALS)
        until = locks.failed(user.id, client, now)
        if until is not None:
            return LoginResult(LoginOutcome.LOCKED, locked_until=until)
        return LoginResult(LoginOutcome.BAD_CREDENTIALS)
    if user.disabled:
        return LoginResult(LoginOutcome.DISABLED)
    if h.check_needs_rehash(user.password_hash):
        user.password_hash = h.hash(password)
    locks.succeeded(user.id, client)
    user.last_login_at = now
    session.flush()
    return LoginResult(LoginOutcome.OK, user=user)


# -- tokens -----------------------------------------------------------------------------
def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(
    session: Session,
    user: User,
    *,
    name: str = "token",
    expires_days: int | None = None,
    now: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Make a token for ``user``; returns the row and the plaintext (shown once, never stored).

    Display tokens have no expiry unless ``expires_days`` is given (they lapse after
    :data:`TOKEN_IDLE_LIFETIME` unused). Tokens of people expire after ``expires_days``
    (default :data:`DEFAULT_TOKEN_DAYS`, at most :data:`MAX_TOKEN_DAYS`).
    """
    now = _now(now)
    if user.disabled:
        raise UserError(f"user {user.username!r} is disabled")
    name = name.strip()
    if not name or len(name) > 64:
        raise UserError("token name: 1–64 characters")
    if expires_days is None and user.role != UserRole.DISPLAY:
        expires_days = DEFAULT_TOKEN_DAYS
    if expires_days is not None and not 1 <= expires_days <= MAX_TOKEN_DAYS:
        raise UserError(f"expiry: 1–{MAX_TOKEN_DAYS} days")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    token = ApiToken(user=user, name=name, token_hash=token_digest(plaintext), created_at=now,
                     expires_at=now + timedelta(days=expires_days) if expires_days else None,
                     revoked=False)
    session.add(token)
    session.flush()
    return token, plaintext


def token_usable(token: ApiToken, now: datetime) -> bool:
    """Not revoked, not expired, not idle too long, and its user not disabled."""
    if token.revoked or token.user.disabled:
        return False
    if token.expires_at is not None:
        return now < token.expires_at
    return now - (token.last_used_at or token.created_at) < TOKEN_IDLE_LIFETIME


def verify_token(session: Session, plaintext: str, *, now: datetime | None = None) -> ApiToken | None:
    """The usable token for a presented bearer token, or None; its user is ``token.user``.

    Records the use (``last_used_at``) at most every :data:`TOKEN_TOUCH_INTERVAL`, so a wall
    polling twice a second does not write on every request.
    """
    now = _now(now)
    if not isinstance(plaintext, str) or not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > 200:
        return None
    token = session.scalars(select(ApiToken).where(ApiToken.token_hash == token_digest(plaintext))).first()
    if token is None or not token_usable(token, now):
        return None
    if token.last_used_at is None or now - token.last_used_at >= TOKEN_TOUCH_INTERVAL:
        token.last_used_at = now
        session.flush()
    return token


def revoke_token(session: Session, token: ApiToken) -> None:
    token.revoked = True
    session.flush()


def revoke_tokens(session: Session, user: User) -> int:
    """Revoke every token of ``user``; returns how many were still live."""
    # An UPDATE's result is a CursorResult (it has rowcount); Session.execute is typed Result.
    result = cast(CursorResult[Any], session.execute(
        update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked.is_(False))
        .values(revoked=True).execution_options(synchronize_session="fetch")))
    return result.rowcount or 0


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def screen_token(session: Session, username: str, *, display_name: str | None = None,
                 token_name: str = "wall", now: datetime | None = None) -> str:
    """A new display token for the wall screen ``username``, made with the user if missing.

    For the demo and the benchmarks, which open ``/wall?token=…`` in a browser they start.
    """
    user = get_user(session, username)
    if user is None:
        user = create_user(session, username, UserRole.DISPLAY, display_name=display_name, now=now)
    elif user.role != UserRole.DISPLAY.value:
        raise UserError(f"user {username!r} is not a display user")
    return issue_token(session, user, name=token_name, now=now)[1]
