"""The signed-in user as the web layer sees it, and helpers for callbacks and routes.

Callbacks and routes never trust anything the browser sends about who it is or what it may
see: they ask this module. ``scope(session)`` is the signed-in user's region scope
(``dashboard.store.scope.Scope``); filter every query with it.

    from auth import identity
    with sessions() as session:
        scope = identity.scope(session)          # raises NotSignedIn without a user
        rows = session.execute(select(Case).where(case_condition(scope)))
"""

from __future__ import annotations

from dataclasses import dataclass

import flask
import flask_login
from sqlalchemy.orm import Session

from dashboard.store.models import User
from dashboard.store.scope import CITY, Scope, get_scope
from dashboard.store.users import UserRole


class NotSignedIn(PermissionError):
    """No signed-in user in this request (the guard normally answers 401 before this)."""


@dataclass(frozen=True, eq=False)
class Identity(flask_login.UserMixin):
    """A signed-in user or wall screen: a snapshot taken when the session was checked."""

    user_id: int
    username: str
    display_name: str
    role: str
    scope_region_id: int | None
    # What the session is bound to: "p:<hash prefix>" for a password sign-in (a new password
    # ends the session), "t:<token id>" for a wall screen signed in by its display token.
    binding: str
    # The session's record in Redis (feeds.sessionstore): revoked by sign-out, a new
    # password and disabling. "" only for a wall cookie made before records existed.
    sid: str = ""

    def get_id(self) -> str:  # flask_login stores this in the session cookie
        return f"{self.user_id}|{self.binding}|{self.sid}"

    @property
    def role_label(self) -> str:
        return UserRole(self.role).label

    @property
    def city_scope(self) -> bool:
        return self.scope_region_id is None

    @property
    def via_token(self) -> bool:
        return self.binding.startswith("t:")


def current() -> Identity | None:
    """The signed-in identity of this request, or None (anonymous, or outside a request)."""
    if not flask.has_request_context() or not hasattr(flask.current_app, "login_manager"):
        return None  # outside a request, or an app without sessions (the API mounted alone)
    user = flask_login.current_user
    return user if isinstance(user, Identity) else None


def bearer_token() -> str | None:
    """The request's ``Authorization: Bearer <token>`` (the API's and the scrape's credential), or None."""
    header = flask.request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require() -> Identity:
    who = current()
    if who is None:
        raise NotSignedIn("未登录")
    return who


def scope(session: Session) -> Scope:
    """The signed-in user's region scope; every query of a page or export is filtered by it."""
    who = require()
    if who.scope_region_id is None:
        return CITY
    return get_scope(session, who.scope_region_id)


def user(session: Session) -> User:
    """The signed-in user's row (for writes that record who did them)."""
    who = require()
    row = session.get(User, who.user_id)
    if row is None or row.disabled:
        raise NotSignedIn("账户不存在或已停用")
    return row
