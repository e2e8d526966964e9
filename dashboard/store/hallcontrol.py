"""Who may control hall screens and post banners, and the record of every change (docs/halls.md).

The web layer and the command line act as an :class:`Actor`: a signed-in user
(:func:`actor_for_user`) or the command line's operator (:data:`CLI_ACTOR`, an administrator
recorded as ``cli``). The rules, one function each, are the ones the pages and the CLI call:

- **admins** manage every screen (add, bind a display user, remove) and every banner;
- a **shift lead** (值班长) controls the screens — layout, region, metric, playlist, sound,
  title — whose region, before and after the change, lies within their own scope (a screen of
  the whole city is within a city-wide scope only), and posts and clears banners on screens
  within their scope;
- **leaders** and **displays** control nothing.

"Within" is :meth:`dashboard.store.scope.Scope.allows_region_id`. Every change is written to
``hall_changes`` in the same transaction (:func:`log_change`) and noted on the session, so that
whoever commits it sends one change notice per changed object *after* the commit
(:func:`take_notices`; ``feeds/control.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.rules.clock import utcnow
from dashboard.rules.screenspec import CHANGES_SHOWN
from dashboard.rules.vocab import RegionLevel
from dashboard.store.models import HallChange, Region, User
from dashboard.store.scope import CITY, Scope, get_scope, user_scope
from dashboard.store.users import UserRole

CLI_NAME = "cli"  # hall_changes.actor of a change made by the command line's operator
NOTICES_KEY = "gridhall.hall_notices"  # Session.info: (kind, object) of the changes to announce

ChangeKind = Literal["screen", "banner"]


class HallError(ValueError):
    """A screen or banner request that cannot be done; one line for people."""


class HallDenied(HallError):
    """The actor may not do this (the web layer answers 403)."""


@dataclass(frozen=True)
class Actor:
    """Who makes a change: their name as recorded, role and scope (属地)."""

    name: str
    role: UserRole
    scope: Scope
    user_id: int | None = None  # None: the command line's operator

    @property
    def is_admin(self) -> bool:
        return self.role is UserRole.ADMIN


CLI_ACTOR = Actor(name=CLI_NAME, role=UserRole.ADMIN, scope=CITY)
"""The command line's operator: whoever runs ``gridhall`` holds the database's credentials."""


def actor_for_user(session: Session, user: User) -> Actor:
    """The actor of a signed-in user; a disabled user is refused."""
    if user.disabled:
        raise HallDenied(f"user {user.username!r} is disabled")
    return Actor(name=user.username, role=UserRole(user.role), scope=user_scope(session, user), user_id=user.id)


# -- the rules -----------------------------------------------------------------------------
def may_manage_screens(actor: Actor) -> bool:
    """Add, bind and remove screens: admins only."""
    return actor.is_admin


def may_control_region(actor: Actor, region_id: int | None) -> bool:
    """May ``actor`` control a screen of ``region_id`` (None: the whole city), or post to it?"""
    if actor.is_admin:
        return True
    return actor.role is UserRole.SHIFT_LEAD and actor.scope.allows_region_id(region_id)


def may_control_regions(actor: Actor, region_ids: set[int | None]) -> bool:
    return all(may_control_region(actor, r) for r in region_ids)


def require_manager(actor: Actor, zh: str, en: str) -> None:
    """Refuse anyone but an admin; ``zh`` and ``en`` say what was asked (添加屏幕 / add screens)."""
    if not may_manage_screens(actor):
        raise HallDenied(f"只有管理员可以{zh} / only admins may {en}")


def require_control(actor: Actor, region_ids: set[int | None], what: str) -> None:
    if not may_control_regions(actor, region_ids):
        who = "值班长只能操作其辖区内的屏幕" if actor.role is UserRole.SHIFT_LEAD else "此角色不能操作屏幕"
        raise HallDenied(f"{who} / {actor.name} ({actor.role.value}, scope {actor.scope.name}) may not {what}")


# -- regions -------------------------------------------------------------------------------
def region_by_code(session: Session, code: str | None) -> Region | None:
    """The district or street a code names (None: the whole city)."""
    if code is None:
        return None
    region = session.scalars(select(Region).where(Region.code == code)).first()
    if region is None:
        raise HallError(f"没有代码为 {code} 的区域 / no region with code {code!r}")
    if region.level not in (RegionLevel.DISTRICT, RegionLevel.STREET):
        raise HallError(f"{region.name}（{code}）是社区；屏幕的区域须为全市、区或街道 / "
                        f"region {code} is a {region.level}: a screen shows the city, a district or a street")
    return region


def region_scope(session: Session, region_id: int | None) -> Scope:
    return get_scope(session, region_id)


# -- the record ----------------------------------------------------------------------------
def log_change(session: Session, actor: Actor, kind: ChangeKind, obj: str, action: str,
               old: dict[str, Any] | None, new: dict[str, Any] | None, now: datetime | None = None) -> HallChange:
    """Record a change in this transaction and note it for the change notice after the commit."""
    row = HallChange(at=now or utcnow(), actor=actor.name, kind=kind, object=obj, action=action, old=old, new=new)
    session.add(row)
    notices: list[tuple[str, str]] = session.info.setdefault(NOTICES_KEY, [])
    if (kind, obj) not in notices:
        notices.append((kind, obj))
    return row


def take_notices(session: Session) -> list[tuple[str, str]]:
    """The (kind, object) of every change logged on this session since the last call; forgets them."""
    notices: list[tuple[str, str]] = session.info.pop(NOTICES_KEY, [])
    return notices


def changes(session: Session, *, kind: ChangeKind | None = None, obj: str | None = None,
            limit: int = CHANGES_SHOWN) -> list[HallChange]:
    """The newest changes first (of one kind, of one object)."""
    query = select(HallChange).order_by(HallChange.at.desc(), HallChange.id.desc()).limit(limit)
    if kind is not None:
        query = query.where(HallChange.kind == kind)
    if obj is not None:
        query = query.where(HallChange.object == obj)
    return list(session.scalars(query))
