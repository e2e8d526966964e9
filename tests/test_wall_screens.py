"""Named screens (大屏) on the wall: the shift lead changes what a screen shows and posts banners,
and the open wall follows within a second, without anyone touching the hall's PC.

Real parts (tests/hallkit.py): the demo city, the app on a werkzeug thread with its control
follower on the test's Redis, the store's own functions committing and announcing changes
(feeds/control.py ControlPublisher, as the CLI and the /screens page do), Debian's Chromium.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from authkit import TestUser, display_token, make_user
from browserkit import PageWatch, shots_dir
from dashboard.rules.clock import utcnow
from dashboard.rules.screenspec import BannerLevel, ScreenLayout, parse_playlist
from dashboard.settings import Settings
from dashboard.store import banners, hallscreens
from dashboard.store.hallcontrol import Actor, HallDenied, actor_for_user
from dashboard.store.models import Banner, User
from feeds.control import ControlPublisher
from hallkit import Hall, districts_by_load

pytestmark = pytest.mark.usefixtures("fresh_scope_cache")

WITHIN_S = 1.0  # the bound: a change reaches the open wall within a second


def _as(sessions: sessionmaker[Session], who: TestUser) -> Callable[[Session], Actor]:
    def actor(s: Session) -> Actor:
        user = s.get(User, who.user_id)
        assert user is not None
        return actor_for_user(s, user)
    return actor


def _until(page: Any, script: str, timeout_s: float) -> float:
    """Seconds until ``script`` (an arrow function) is true in the page."""
    started = time.monotonic()
    page.wait_for_function(script, timeout=int(timeout_s * 1000))
    return time.monotonic() - started


@pytest.mark.browser
def test_the_shift_lead_changes_an_open_screen(browser: Any, command_hall: Hall, sessions: sessionmaker[Session],
                                               settings: Settings, redis_client: redis.Redis,
                                               tmp_path: Path) -> None:
    (code, _, _), (other, _, _), *_ = districts_by_load(sessions)
    control = ControlPublisher(redis_client, settings)
    admin = _as(sessions, make_user(sessions, "admin"))
    lead = _as(sessions, make_user(sessions, "shift_lead"))  # the city's shift lead
    district_lead = _as(sessions, make_user(sessions, "shift_lead", region=other))
    screen_user = make_user(sessions, "display", username="hall-1")
    control.commit(sessions, lambda s: hallscreens.add_screen(s, admin(s), "hall-1", title="大厅1号屏",
                                                              display_user="hall-1"))
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    watch = PageWatch(page)
    try:
        page.goto(f"{command_hall.url}/wall?token={display_token(sessions, screen_user)}")
        page.wait_for_function("() => Object.keys((window.gridhall.wall || {}).layers || {}).length > 0",
                               timeout=30_000)
        page.wait_for_function("() => document.documentElement.dataset.wallPush === 'open'", timeout=15_000)
        assert page.get_attribute("html", "data-wall-layout") == "wall"
        page.evaluate("window.__sameDocument = 'yes'")

        # The shift lead puts the overdue queue full-screen: on the wall within a second.
        control.commit(sessions, lambda s: hallscreens.set_screen(s, lead(s), "hall-1", layout=ScreenLayout.QUEUE))
        took = _until(page, "() => document.documentElement.dataset.wallLayout === 'queue'", WITHIN_S)
        assert page.locator(".wall-map").is_hidden()
        # ... and a district on the map, full-screen: the map shows only that district's cells.
        control.commit(sessions, lambda s: hallscreens.set_screen(s, lead(s), "hall-1", layout=ScreenLayout.MAP,
                                                                  region=code))
        _until(page, f"""() => document.documentElement.dataset.wallLayout === 'map'
            && Object.keys(window.gridhall.wall.values).length > 0
            && Object.keys(window.gridhall.wall.values).every(c => c.startsWith('{code}'))""", 5)
        # A shift lead of another district may not touch the city's screen; nothing changes.
        with pytest.raises(HallDenied):
            control.commit(sessions, lambda s: hallscreens.set_screen(s, district_lead(s), "hall-1",
                                                                      layout=ScreenLayout.KPIS))
        page.wait_for_timeout(1200)
        assert page.get_attribute("html", "data-wall-layout") == "map"

        # A playlist: the screen starts cycling at once.
        control.commit(sessions, lambda s: hallscreens.set_screen(
            s, lead(s), "hall-1", playlist=parse_playlist("kpis:5,board:5")))
        _until(page, "() => document.documentElement.dataset.wallLayout === 'kpis'", 3)
        _until(page, "() => document.documentElement.dataset.wallLayout === 'board'", 8)

        # A broadcast banner appears within a second, as text ...
        posted = control.commit(sessions, lambda s: banners.post_banner(
            s, lead(s), "暴雨红色预警，各单位注意积水点<b>", level=BannerLevel.WARNING))
        banner_took = _until(page, "() => document.documentElement.dataset.wallBanners === '1'", WITHIN_S)
        item = page.locator("#wall-broadcast .wall-broadcast__item--warning")
        assert item.inner_text().replace("\n", " ").strip() == "预警 暴雨红色预警，各单位注意积水点<b>"
        assert page.locator("#wall-broadcast b").count() == 0
        page.screenshot(path=str(shots_dir(tmp_path) / "wall-banner-1920x1080.png"))
        # ... and goes at its expiry (moved to 2 s from now, announced as a change would be).
        banner_id = posted.result.id
        with sessions.begin() as s:
            row = s.get(Banner, banner_id)
            assert row is not None
            row.expires_at = utcnow() + timedelta(seconds=2)
        control.publish([("banner", str(banner_id))])
        _until(page, "() => document.documentElement.dataset.wallBanners === '0'", 6)
        assert page.locator("#wall-broadcast").is_hidden()

        assert page.evaluate("window.__sameDocument") == "yes"  # never reloaded
        assert watch.errors == [] and watch.dialogs == []
        print(f"screen change on the wall in {took:.2f} s, banner in {banner_took:.2f} s")
    finally:
        page.close()


def test_the_screen_and_its_banners_as_the_page_gets_them(sessions: sessionmaker[Session], settings: Settings,
                                                          redis_client: redis.Redis, command_hall: Hall) -> None:
    """The wall's payload of a screen (what the page stores) names its setting and active banners
    and changes its key with either; a display user with no screen has none."""
    control = ControlPublisher(redis_client, settings)
    admin = _as(sessions, make_user(sessions, "admin"))
    bound = make_user(sessions, "display", username="hall-2")
    unbound = make_user(sessions, "display", username="hall-3")
    control.commit(sessions, lambda s: hallscreens.add_screen(s, admin(s), "hall-2", display_user="hall-2"))
    service = command_hall.runtime.services.wall
    first = service.screen_of(bound.user_id)
    assert first is not None and first["layout"] == "wall" and first["banners"] == []
    assert service.screen_of(unbound.user_id) is None
    control.commit(sessions, lambda s: banners.post_banner(s, admin(s), "交接班提醒", screens=["hall-2"]))
    deadline = time.monotonic() + 3
    while (now := service.screen_of(bound.user_id)) is not None and not now["banners"]:
        assert time.monotonic() < deadline, "the control notice did not reach the worker"
        time.sleep(0.05)
    assert now is not None and now["banners"][0]["text"] == "交接班提醒" and now["key"] != first["key"]
