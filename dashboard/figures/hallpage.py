"""What the screens page (/screens, 大屏管理) shows an actor: the screens they may control, the
regions they may choose, the active banners that concern them and the change record.

Reads only; the changes go through ``dashboard/store/hallscreens.py`` and ``banners.py`` (the
rules of ``hallcontrol.py``). Everything here is filtered by the actor's rules so that a
district's shift lead learns nothing of other districts' screens: the screens listed are those
:func:`~dashboard.store.hallscreens.may_control_screen` allows, the change record holds only
those screens' and the listed banners' changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.rules.clock import utcnow
from dashboard.rules.screenspec import CHANGES_SHOWN, CITY, PlaylistEntry, ScreenLayout, playlist_from_json
from dashboard.rules.vocab import GridMetric, RegionLevel
from dashboard.store import banners as banner_store
from dashboard.store import hallcontrol, hallscreens
from dashboard.store.hallcontrol import Actor
from dashboard.store.models import Banner, Region, Screen
from dashboard.store.scope import CITY_NAME, Scope

# The change record is filtered after reading: read this many of the newest to find 50 of one scope.
CHANGES_READ = 2000


@dataclass(frozen=True)
class RegionChoice:
    """A region a screen (or a playlist entry) may show: ``code`` ``city`` is the whole city."""

    code: str
    name: str
    level: str  # city, district, street


@dataclass(frozen=True)
class ScreenRow:
    """One screen as the page's table lists it."""

    name: str
    title: str
    region: str  # the region's code, or ``city``
    region_name: str
    layout: ScreenLayout
    metric: GridMetric
    tile: str | None
    playlist: tuple[PlaylistEntry, ...]
    sound: bool
    display_user: str | None
    display_user_id: int | None
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True)
class BannerRow:
    """An active banner: whether the actor may clear it (else it is shown for information)."""

    id: int
    text: str
    level: str
    target: str  # 全市, a region's name, or the screens' names
    posted_by: str
    posted_at: datetime
    expires_at: datetime
    may_clear: bool


@dataclass(frozen=True)
class ChangeRow:
    """One row of ``hall_changes``: who changed which screen or banner, from what to what."""

    at: datetime
    actor: str
    kind: str
    object: str
    action: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None


def region_choices(session: Session, scope: Scope) -> list[RegionChoice]:
    """The regions a screen may show for someone of ``scope``: the whole city (city scope only),
    then the districts and streets within it, by code."""
    query = select(Region.code, Region.name, Region.level).where(
        Region.level.in_((RegionLevel.DISTRICT, RegionLevel.STREET))).order_by(Region.code)
    if not scope.is_city:
        query = query.where(Region.id.in_(sorted(scope.region_ids)))
    out = [RegionChoice(CITY, CITY_NAME, "city")] if scope.is_city else []
    out += [RegionChoice(code, name, str(level)) for code, name, level in session.execute(query)]
    return out


def _row(screen: Screen) -> ScreenRow:
    return ScreenRow(name=screen.name, title=screen.title,
                     region=screen.region.code if screen.region else CITY,
                     region_name=screen.region.name if screen.region else CITY_NAME,
                     layout=ScreenLayout(screen.layout), metric=GridMetric(screen.metric), tile=screen.tile,
                     playlist=playlist_from_json(screen.playlist) if screen.playlist else (),
                     sound=bool(screen.sound),
                     display_user=screen.display_user.username if screen.display_user else None,
                     display_user_id=screen.display_user_id,
                     updated_at=screen.updated_at, updated_by=screen.updated_by)


def screen_rows(session: Session, actor: Actor) -> list[ScreenRow]:
    """The screens ``actor`` may control, by name (a shift lead's: every region of the screen,
    its playlist's included, within their scope)."""
    return [_row(s) for s in hallscreens.list_screens(session, actor)
            if hallscreens.may_control_screen(session, actor, s)]


def screen_row(session: Session, actor: Actor, name: Any) -> ScreenRow | None:
    """The screen ``name`` if ``actor`` may control it; None when it does not exist or they may
    not (one answer for both: a refusal tells nothing of other districts' screens)."""
    if not isinstance(name, str) or not name:
        return None
    screen = hallscreens.get_screen(session, name)
    if screen is None or not hallscreens.may_control_screen(session, actor, screen):
        return None
    return _row(screen)


def _target(banner: Banner) -> str:
    if banner.target == banner_store.TARGET_SCREENS:
        return "、".join(s.title for s in banner.screens) or "—"
    return banner.region.name if banner.region else CITY_NAME


def _concerns(session: Session, actor: Actor, banner: Banner) -> bool:
    """Whether ``banner`` reaches the actor's scope: one they may clear, one sent to a region that
    holds their scope, or one sent to a screen within it."""
    if actor.is_admin or banner_store.may_clear(actor, banner):
        return True
    if banner.target == banner_store.TARGET_SCREENS:
        return any(actor.scope.allows_region_id(s.region_id) for s in banner.screens)
    return hallcontrol.region_scope(session, banner.region_id).allows_region_id(actor.scope.region_id)


def banner_rows(session: Session, actor: Actor, *, now: datetime | None = None) -> list[BannerRow]:
    """The active banners that concern ``actor``, newest first."""
    now = now or utcnow()
    return [BannerRow(id=b.id, text=b.text, level=b.level, target=_target(b), posted_by=b.posted_by,
                      posted_at=b.posted_at, expires_at=b.expires_at,
                      may_clear=banner_store.may_clear(actor, b))
            for b in banner_store.list_banners(session, now=now) if _concerns(session, actor, b)]


def change_rows(session: Session, actor: Actor, *, limit: int = CHANGES_SHOWN) -> list[ChangeRow]:
    """The newest ``limit`` changes of the screens ``actor`` may control and of the banners
    that concern them (an admin: every change), newest first."""
    rows = hallcontrol.changes(session, limit=limit if actor.is_admin else CHANGES_READ)
    if not actor.is_admin:
        screens = {s.name for s in screen_rows(session, actor)}
        ids = [int(c.object) for c in rows if c.kind == "banner" and c.object.isdigit()]
        found = session.scalars(select(Banner).where(Banner.id.in_(ids))).all() if ids else []
        mine = {str(b.id) for b in found if _concerns(session, actor, b)}
        rows = [c for c in rows if (c.object in screens if c.kind == "screen" else c.object in mine)][:limit]
    return [ChangeRow(at=c.at, actor=c.actor, kind=c.kind, object=c.object, action=c.action, old=c.old, new=c.new)
            for c in rows]


__all__ = ["BannerRow", "ChangeRow", "RegionChoice", "ScreenRow", "banner_rows", "change_rows", "region_choices",
           "screen_row", "screen_rows"]
