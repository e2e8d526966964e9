"""Hall screens (大屏): add, list, set, bind, remove, and what a screen shows now (docs/halls.md).

A screen row holds what one display of a command hall shows (the rules of a setting are
``dashboard/rules/screenspec.py``): a layout, a region (None: the whole city), a metric, a
mosaic tile, a playlist and the sound switch, and the display user whose token opens it. Every
function takes the :class:`~dashboard.store.hallcontrol.Actor` who asks, applies its rule and
records the change (``hall_changes``); the caller commits and then sends the change notice
(``feeds/control.py``). A screen's regions (its own and its playlist's) must lie within its
display user's scope.

:func:`screen_view` answers "what should this screen show now" as a small frozen
:class:`ScreenView`; :class:`ScreenViews` keeps those per process, dropped when a control notice
arrives (:meth:`ScreenViews.invalidate`), when a banner on it expires, and after ``max_age_s``
at the latest (a notice missed while Redis was away).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from dashboard.rules.clock import utcnow
from dashboard.rules.screenspec import (
    BannerLevel,
    PlaylistEntry,
    ScreenLayout,
    ScreenSetting,
    Tile,
    check_name,
    check_title,
    parse_tile,
    playlist_from_json,
    playlist_to_json,
)
from dashboard.rules.vocab import GridMetric
from dashboard.store.banners import banners_for
from dashboard.store.hallcontrol import (
    Actor,
    HallError,
    log_change,
    may_control_regions,
    region_by_code,
    require_control,
    require_manager,
)
from dashboard.store.models import Region, Screen, User
from dashboard.store.scope import user_scope
from dashboard.store.users import UserRole, get_user

_UNSET: Any = object()  # "leave as it is" for set_screen's keyword arguments
VIEW_MAX_AGE_S = 30.0  # ScreenViews keeps an answer at most this long (a notice missed while Redis was away)


# -- reading ---------------------------------------------------------------------------------
def get_screen(session: Session, name: str) -> Screen | None:
    return session.scalars(select(Screen).where(Screen.name == name.strip())).first()


def require_screen(session: Session, name: str) -> Screen:
    screen = get_screen(session, name)
    if screen is None:
        raise HallError(f"没有名为 {name} 的屏幕 / no screen named {name!r}")
    return screen


def list_screens(session: Session, actor: Actor | None = None) -> list[Screen]:
    """Every screen by name; for a non-admin ``actor`` only those within their scope."""
    screens = list(session.scalars(select(Screen).options(selectinload(Screen.region),
                                                          selectinload(Screen.display_user))
                                   .order_by(Screen.name)))
    if actor is None or actor.is_admin:
        return screens
    return [s for s in screens if actor.scope.allows_region_id(s.region_id)]


def setting_of(screen: Screen) -> ScreenSetting:
    """A stored screen's setting, checked as the rules check a new one."""
    return ScreenSetting(layout=ScreenLayout(screen.layout),
                         region=screen.region.code if screen.region else None,
                         metric=GridMetric(screen.metric),
                         tile=parse_tile(screen.tile) if screen.tile else None,
                         playlist=playlist_from_json(screen.playlist) if screen.playlist else ())


def describe(screen: Screen) -> dict[str, Any]:
    """A screen's settings as logged in ``hall_changes`` and listed by the command line."""
    return {"title": screen.title, "region": screen.region.code if screen.region else None,
            "layout": screen.layout, "tile": screen.tile, "metric": screen.metric,
            "playlist": list(screen.playlist or []), "sound": bool(screen.sound),
            "display_user": screen.display_user.username if screen.display_user else None}


# -- checks ----------------------------------------------------------------------------------
def _regions(session: Session, setting: ScreenSetting) -> tuple[Region | None, set[int | None]]:
    """The screen's own region and the ids of every region it may show (playlist included)."""
    own = region_by_code(session, setting.region)
    ids: set[int | None] = {own.id if own else None}
    for code in {e.region for e in setting.playlist}:
        region = region_by_code(session, code)
        ids.add(region.id if region else None)
    return own, ids


def _check_display_user(session: Session, user: User, region_ids: set[int | None], *,
                        screen: Screen | None) -> None:
    if user.role != UserRole.DISPLAY.value:
        raise HallError(f"{user.username} 不是大屏账号 / user {user.username!r} is not a display user")
    if user.disabled:
        raise HallError(f"大屏账号 {user.username} 已停用 / display user {user.username!r} is disabled")
    other = session.scalars(select(Screen).where(Screen.display_user_id == user.id)).first()
    if other is not None and other is not screen:
        raise HallError(f"大屏账号 {user.username} 已绑定屏幕 {other.name} / "
                        f"display user {user.username!r} is bound to screen {other.name!r}")
    scope = user_scope(session, user)
    if not all(scope.allows_region_id(r) for r in region_ids):
        raise HallError(f"屏幕的区域超出大屏账号 {user.username} 的辖区（{scope.name}） / the screen's "
                        f"regions must lie within display user {user.username!r}'s scope ({scope.name})")


def may_control_screen(session: Session, actor: Actor, screen: Screen) -> bool:
    """Whether ``actor`` may change what ``screen`` shows (for a page: show its controls or not)."""
    return may_control_regions(actor, _regions(session, setting_of(screen))[1])


# -- changes ---------------------------------------------------------------------------------
def add_screen(session: Session, actor: Actor, name: str, *, title: str | None = None,
               setting: ScreenSetting | None = None, sound: bool = False,
               display_user: str | None = None, now: datetime | None = None) -> Screen:
    """Add a screen (admins); ``setting`` None is the full wall of the whole city.
    ``display_user``: the username of a display user to bind."""
    require_manager(actor, "添加屏幕", "add screens")
    setting = setting or ScreenSetting()
    now = now or utcnow()
    name = check_name(name)
    if get_screen(session, name) is not None:
        raise HallError(f"屏幕 {name} 已存在 / screen {name!r} exists already")
    own, ids = _regions(session, setting)
    screen = Screen(name=name, title=check_title(title or name), region=own, layout=setting.layout.value,
                    tile=setting.tile.text() if setting.tile else None, metric=setting.metric.value,
                    playlist=playlist_to_json(setting.playlist), sound=bool(sound),
                    created_at=now, created_by=actor.name, updated_at=now, updated_by=actor.name)
    if display_user is not None:
        user = _display_user(session, display_user)
        _check_display_user(session, user, ids, screen=None)
        screen.display_user = user
    session.add(screen)
    session.flush()
    log_change(session, actor, "screen", name, "add", None, describe(screen), now)
    return screen


def _display_user(session: Session, username: str) -> User:
    user = get_user(session, username)
    if user is None:
        raise HallError(f"没有用户 {username} / no user {username!r}")
    return user


def set_screen(session: Session, actor: Actor, name: str, *, title: str = _UNSET, region: str | None = _UNSET,
               layout: ScreenLayout = _UNSET, metric: GridMetric = _UNSET, tile: Tile | None = _UNSET,
               playlist: tuple[PlaylistEntry, ...] = _UNSET, sound: bool = _UNSET,
               now: datetime | None = None) -> Screen:
    """Change what a screen shows; arguments left out stay as they are.

    Admins, or a shift lead when the screen's regions before and after the change lie within
    their scope. Changing the layout away from ``mosaic`` drops the tile; a playlist of ``()``
    stops the rotation.
    """
    now = now or utcnow()
    screen = require_screen(session, name)
    old_setting = setting_of(screen)
    _, old_ids = _regions(session, old_setting)
    require_control(actor, old_ids, f"control screen {screen.name}")
    changes: dict[str, Any] = {}
    for key, value in (("region", region), ("layout", layout), ("metric", metric), ("tile", tile),
                       ("playlist", playlist)):
        if value is not _UNSET:
            changes[key] = value
    if "layout" in changes and changes["layout"] is not ScreenLayout.MOSAIC and "tile" not in changes:
        changes["tile"] = None
    new_setting = replace(old_setting, **changes)
    own, new_ids = _regions(session, new_setting)
    require_control(actor, new_ids, f"show these regions on screen {screen.name}")
    if screen.display_user is not None:
        _check_display_user(session, screen.display_user, new_ids, screen=screen)
    old = describe(screen)
    screen.region = own
    screen.layout = new_setting.layout.value
    screen.metric = new_setting.metric.value
    screen.tile = new_setting.tile.text() if new_setting.tile else None
    screen.playlist = playlist_to_json(new_setting.playlist)
    if title is not _UNSET:
        screen.title = check_title(title)
    if sound is not _UNSET:
        screen.sound = bool(sound)
    new = describe(screen)
    if new == old:
        return screen  # nothing changed: nothing to log, nothing to announce
    screen.updated_at = now
    screen.updated_by = actor.name
    session.flush()
    before, after = _diff(old, new)
    log_change(session, actor, "screen", screen.name, "set", before, after, now)
    return screen


def _diff(old: dict[str, Any], new: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = [k for k in new if old.get(k) != new[k]]
    return {k: old.get(k) for k in keys}, {k: new[k] for k in keys}


def bind_display_user(session: Session, actor: Actor, name: str, username: str | None, *,
                      now: datetime | None = None) -> Screen:
    """Bind the display user ``username`` to the screen (None: unbind it); admins only."""
    require_manager(actor, "绑定大屏账号", "bind display users")
    now = now or utcnow()
    screen = require_screen(session, name)
    old = screen.display_user.username if screen.display_user else None
    if username is None:
        screen.display_user = None
    else:
        user = _display_user(session, username)
        _check_display_user(session, user, _regions(session, setting_of(screen))[1], screen=screen)
        screen.display_user = user
    new = screen.display_user.username if screen.display_user else None
    if new == old:
        return screen
    screen.updated_at = now
    screen.updated_by = actor.name
    session.flush()
    log_change(session, actor, "screen", screen.name, "bind", {"display_user": old}, {"display_user": new}, now)
    return screen


def remove_screen(session: Session, actor: Actor, name: str, *, now: datetime | None = None) -> None:
    """Remove a screen (admins); its display user stays, unbound. The record stays in ``hall_changes``."""
    require_manager(actor, "删除屏幕", "remove screens")
    screen = require_screen(session, name)
    old = describe(screen)
    session.delete(screen)
    session.flush()
    log_change(session, actor, "screen", name, "remove", old, None, now)


# -- what a screen shows now -----------------------------------------------------------------
@dataclass(frozen=True)
class BannerView:
    """A banner as a screen shows it."""

    id: int
    text: str
    level: BannerLevel
    expires_at: datetime


@dataclass(frozen=True)
class ScreenView:
    """What screen ``name`` should show now: its setting, its active banners, and until when
    this answer holds at the latest (the next banner expiry), for the wall to render."""

    name: str
    title: str
    layout: ScreenLayout
    region: str | None  # region code; None: the whole city
    region_name: str  # 全市 or the region's name
    metric: GridMetric
    tile: Tile | None
    playlist: tuple[PlaylistEntry, ...]
    sound: bool
    banners: tuple[BannerView, ...]
    updated_at: datetime
    valid_until: datetime | None  # None: until the next change

    @property
    def is_rotating(self) -> bool:
        return bool(self.playlist)


def screen_view(session: Session, *, name: str | None = None, user_id: int | None = None,
                now: datetime | None = None) -> ScreenView | None:
    """What a screen (by name, or by its bound display user's id) shows now; None: no such screen."""
    now = now or utcnow()
    query = select(Screen).options(selectinload(Screen.region))
    if name is not None:
        query = query.where(Screen.name == name)
    elif user_id is not None:
        query = query.where(Screen.display_user_id == user_id)
    else:
        raise ValueError("screen_view needs a name or a user id")
    screen = session.scalars(query).first()
    if screen is None:
        return None
    setting = setting_of(screen)
    banners = tuple(BannerView(id=b.id, text=b.text, level=BannerLevel(b.level), expires_at=b.expires_at)
                    for b in banners_for(session, screen, now=now))
    return ScreenView(name=screen.name, title=screen.title, layout=setting.layout, region=setting.region,
                      region_name=screen.region.name if screen.region else "全市", metric=setting.metric,
                      tile=setting.tile, playlist=setting.playlist, sound=bool(screen.sound), banners=banners,
                      updated_at=screen.updated_at,
                      valid_until=min((b.expires_at for b in banners), default=None))


class ScreenViews:
    """:func:`screen_view` kept per process: one SQL read per screen per change, not per request.

    An answer is kept until :meth:`invalidate` (the control notice of any change: a banner may
    reach many screens, so every answer goes), its first banner expires, or ``max_age_s``
    passes (the safety net for a notice missed while Redis was away). Thread-safe; an answer
    computed while an invalidation arrived is not kept.
    """

    def __init__(self, sessions: sessionmaker[Session], *, max_age_s: float = VIEW_MAX_AGE_S,
                 clock: Callable[[], datetime] = utcnow, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.sessions = sessions
        self.max_age_s = max_age_s
        self.clock = clock
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str | int], tuple[float, ScreenView | None]] = {}
        self._generation = 0
        self.reads = 0  # SQL reads made (for tests and metrics)

    def by_name(self, name: str) -> ScreenView | None:
        return self._get(("name", name))

    def by_user(self, user_id: int) -> ScreenView | None:
        return self._get(("user", user_id))

    def invalidate(self, *_: object) -> None:
        """Forget every answer (the control notice's callback; its arguments are not needed)."""
        with self._lock:
            self._generation += 1
            self._items.clear()

    def _get(self, key: tuple[str, str | int]) -> ScreenView | None:
        now_m = self.monotonic()
        now = self.clock()
        with self._lock:
            hit = self._items.get(key)
            generation = self._generation
        if hit is not None and now_m < hit[0] and (hit[1] is None or hit[1].valid_until is None
                                                    or now < hit[1].valid_until):
            return hit[1]
        with self.sessions() as session:
            if key[0] == "name":
                view = screen_view(session, name=str(key[1]), now=now)
            else:
                view = screen_view(session, user_id=int(key[1]), now=now)
        with self._lock:
            self.reads += 1
            if generation == self._generation:
                self._items[key] = (now_m + self.max_age_s, view)
        return view

