"""Broadcast banners (横幅通知) on hall screens: post, list, clear (docs/halls.md).

A banner is **active** from its posting until ``expires_at`` or until it is cleared by hand,
whichever comes first; expiry is a comparison with the clock at read time, so nothing has to
run when a banner expires. It goes either to every screen within a region scope (``target``
``scope``; the whole city when no region) or to a chosen list of screens (``screens``).
Who may post and clear is :mod:`dashboard.store.hallcontrol`'s rule: admins everywhere, a shift
lead within their scope only. Every post and clear is logged in ``hall_changes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from dashboard.rules.clock import utcnow
from dashboard.rules.screenspec import BANNER_TTL_DEFAULT, BannerLevel, check_banner_text, check_ttl, parse_region
from dashboard.store.hallcontrol import (
    Actor,
    HallDenied,
    HallError,
    log_change,
    may_control_region,
    region_by_code,
    region_scope,
    require_control,
)
from dashboard.store.models import Banner, Screen

TARGET_SCOPE = "scope"
TARGET_SCREENS = "screens"


def is_active(banner: Banner, now: datetime) -> bool:
    return banner.cleared_at is None and now < banner.expires_at


def _targets(banner: Banner) -> set[int | None]:
    """The regions a banner reaches, for the permission rule."""
    if banner.target == TARGET_SCREENS:
        return {s.region_id for s in banner.screens}
    return {banner.region_id}


def describe(banner: Banner) -> dict[str, Any]:
    """A banner as logged and listed."""
    return {"text": banner.text, "level": banner.level, "target": banner.target,
            "region": banner.region.code if banner.region else None,
            "screens": sorted(s.name for s in banner.screens) if banner.target == TARGET_SCREENS else None,
            "expires_at": banner.expires_at.isoformat()}


def post_banner(session: Session, actor: Actor, text: str, *, level: BannerLevel = BannerLevel.NOTICE,
                ttl: timedelta = BANNER_TTL_DEFAULT, region: str | None = None, screens: Sequence[str] = (),
                now: datetime | None = None) -> Banner:
    """Post a banner to ``screens`` (names) or, when none are named, to every screen within
    ``region`` (a district or street code, or ``city``; None: the actor's own scope — the whole
    city for an admin). The actor must control every screen or region it reaches."""
    now = now or utcnow()
    text = check_banner_text(text)
    ttl = check_ttl(ttl)
    level = BannerLevel(level)
    banner = Banner(text=text, level=level.value, posted_by=actor.name, posted_at=now, expires_at=now + ttl)
    if screens:
        if region is not None:
            raise HallError("横幅通知的对象是区域或屏幕列表，不能两者都指定 / "
                            "a banner goes to a region or to a list of screens, not both")
        names = list(dict.fromkeys(screens))
        found = {s.name: s for s in session.scalars(select(Screen).where(Screen.name.in_(names)))}
        missing = [n for n in names if n not in found]
        if missing:
            raise HallError(f"没有名为 {', '.join(missing)} 的屏幕 / no screen named {', '.join(missing)}")
        require_control(actor, {s.region_id for s in found.values()}, "post to these screens")
        banner.target = TARGET_SCREENS
        banner.screens = [found[n] for n in names]
    else:
        # No region given: every screen the actor may reach (a shift lead's own scope); "city"
        # given: the whole city, which only a city-wide actor may post to.
        code = parse_region(region) if region is not None else actor.scope.code
        target = region_by_code(session, code)
        require_control(actor, {target.id if target else None}, "post to this region")
        banner.target = TARGET_SCOPE
        banner.region = target
    session.add(banner)
    session.flush()
    log_change(session, actor, "banner", str(banner.id), "post", None, describe(banner), now)
    return banner


def may_clear(actor: Actor, banner: Banner) -> bool:
    """Whether ``actor`` may clear ``banner``: it reaches only regions they control."""
    return all(may_control_region(actor, r) for r in _targets(banner))


def clear_banner(session: Session, actor: Actor, banner_id: int, *, now: datetime | None = None) -> Banner:
    """End a banner now. The actor must control everything it reaches."""
    now = now or utcnow()
    banner = session.get(Banner, banner_id)
    if banner is None:
        raise HallError(f"没有编号为 {banner_id} 的横幅通知 / no banner {banner_id}")
    if not may_clear(actor, banner):
        raise HallDenied(f"无权撤销此横幅通知 / {actor.name} may not clear banner {banner_id}")
    if not is_active(banner, now):
        raise HallError(f"横幅通知 {banner_id} 已结束 / banner {banner_id} has ended already")
    banner.cleared_at = now
    banner.cleared_by = actor.name
    session.flush()
    log_change(session, actor, "banner", str(banner.id), "clear", describe(banner), None, now)
    return banner


def list_banners(session: Session, *, now: datetime | None = None, active_only: bool = True,
                 limit: int = 200) -> list[Banner]:
    """Banners, newest first: the active ones, or (``active_only`` False) the latest ``limit``."""
    now = now or utcnow()
    query = (select(Banner).options(selectinload(Banner.screens), selectinload(Banner.region))
             .order_by(Banner.posted_at.desc(), Banner.id.desc()))
    if active_only:
        query = query.where(Banner.cleared_at.is_(None), Banner.expires_at > now)
    else:
        query = query.limit(limit)
    return list(session.scalars(query))


def banners_for(session: Session, screen: Screen, *, now: datetime | None = None) -> list[Banner]:
    """The banners active on ``screen`` now, oldest first (the order the screen shows them in)."""
    active = list_banners(session, now=now)
    out = []
    for banner in reversed(active):
        if banner.target == TARGET_SCREENS:
            if any(s.id == screen.id for s in banner.screens):
                out.append(banner)
        elif region_scope(session, banner.region_id).allows_region_id(screen.region_id):
            out.append(banner)
    return out
