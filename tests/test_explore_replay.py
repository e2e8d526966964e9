"""回放 on /explore in Chromium: the control's day, minute slider and speed make the link to
``/wall?at=…&speed=…``, the link opens the replayed wall at that minute, and a role that may not
replay the wall gets no control. Bounds: the first event stored, the archive, now (one definition
with the wall's own check, ``timetravel.earliest_online``). Screenshots at 1920×1080 and 3840×2160
(GRIDHALL_SHOTS_DIR keeps them)."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from authkit import make_user, signin_page
from browserkit import PageWatch, shots_dir
from callbacks.explore import replay_bounds, replay_href, replay_minute
from dashboard.figures import timetravel
from dashboard.settings import Settings
from dashboard.store.models import Region
from democitykit import build_demo
from layouts import explore as explore_layout
from layouts import wall as wall_layout


def test_replay_bounds_follow_the_archive_check(settings: Settings, sessions: sessionmaker[Session],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    tz = settings.tz
    now = datetime(2026, 12, 1, 10, 30, 20, tzinfo=UTC)
    first = datetime(2026, 9, 3, 8, 0, 30, tzinfo=UTC)
    monkeypatch.setattr(timetravel, "first_event_at", lambda session: first)
    with sessions() as s:
        lo, hi, _ = replay_bounds(s, tz, now) or (None, None, None)
        assert lo == (first.astimezone(tz).replace(second=0) + timedelta(minutes=1))  # not before the first event
        assert hi == now.astimezone(tz).replace(second=0)  # not in the future
        monkeypatch.setattr(timetravel.archive, "archived_before", lambda session: "2026-11")
        online = timetravel.earliest_online(s, tz)
        assert online is not None
        lo, hi, note = replay_bounds(s, tz, now) or (None, None, "")
        assert lo == online[0].astimezone(tz) and "归档库" in note
        with pytest.raises(timetravel.ReplayArchived):  # the wall refuses just before that bound …
            timetravel.check_online(s, online[0] - timedelta(minutes=1), tz)
        timetravel.check_online(s, online[0], tz)  # … and shows it
    # a minute outside the bounds is held inside them; the link names the region and a known speed
    assert replay_minute(lo, hi, "2026-10-01", 600) == lo
    assert replay_minute(lo, hi, hi.date().isoformat(), 24 * 60 - 1) == hi
    assert replay_href(hi, 60, "420102") == f"/wall?at={hi:%Y-%m-%dT%H%%3A%M}&speed=60&region=420102"
    assert "speed=1" in replay_href(hi, 7, None) and "region" not in replay_href(hi, 7, None)


def test_replay_control_opens_the_wall_in_chromium(browser: Any, settings: Settings,
                                                   sessions: sessionmaker[Session], demo_city_dir: Path,
                                                   tmp_path: Path, engine: Any) -> None:
    from playwright.sync_api import expect

    import app as appmod

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    build_demo(settings, sessions, demo_city_dir, days=2, now=now)
    application = appmod.create_app(settings)
    server = make_server("127.0.0.1", 0, application.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    runtime = application.server.extensions[appmod.EXTENSION_KEY]
    base = f"http://127.0.0.1:{server.server_port}"
    shots = shots_dir(tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        watch = PageWatch(page)
        signin_page(page, base, make_user(sessions, "shift_lead"))
        page.goto(f"{base}/explore")
        link = page.locator("#explore-replay-open")
        expect(link).to_be_visible(timeout=30_000)
        expect(link).to_have_text(explore_layout.REPLAY_OPEN_TEXT)
        expect(link).to_have_attribute("target", "_blank")
        expect(link).to_have_attribute("href", re.compile(r"^/wall\?at="), timeout=15_000)

        def chosen() -> tuple[datetime, dict[str, list[str]]]:
            query = parse_qs(urlparse(link.get_attribute("href") or "").query)
            return datetime.fromisoformat(query["at"][0]), query

        before, query = chosen()
        assert query["speed"] == ["1"]
        # move the control: the slider five minutes back (keyboard), the speed to 10×
        page.locator("#explore-replay-box [role='slider']").focus()
        for _ in range(5):
            page.keyboard.press("ArrowLeft")
        page.locator("#explore-replay-speed label", has_text="10×").click()
        want = before - timedelta(minutes=5)
        expect(link).to_have_attribute("href", re.compile(re.escape(f"at={want:%Y-%m-%dT%H}%3A{want:%M}&speed=10")),
                                       timeout=15_000)
        expect(page.locator("#explore-replay-minute-text")).to_have_text(f"{want:%Y-%m-%d %H:%M}")
        page.wait_for_timeout(500)
        page.screenshot(path=str(shots / "explore-replay-1920x1080.png"))
        # the link opens the replayed wall (new tab) at that minute, playing at 10×
        with page.context.expect_page() as opened:
            link.click()
        wall = opened.value
        wall_watch = PageWatch(wall)
        at = want.replace(tzinfo=settings.tz)
        expect(wall.locator("#wall-replay")).to_contain_text(
            wall_layout.replay_text(at, 10).split(" · 历史")[0], timeout=30_000)
        wall.close()
        # in the scope of the page's region: the link carries it, and the wall shows that region
        with sessions() as s:
            district = s.scalars(select(Region.code).where(Region.level == "district").order_by(Region.code)).first()
        assert district is not None
        page.goto(f"{base}/explore?region={district}")
        expect(link).to_have_attribute("href", re.compile(re.escape(f"region={district}")), timeout=30_000)
        big = browser.new_page(viewport={"width": 3840, "height": 2160})
        big.context.add_cookies(page.context.cookies())
        big.goto(f"{base}/explore")
        expect(big.locator("#explore-replay-open")).to_be_visible(timeout=30_000)
        big.locator("#explore-replay-box").scroll_into_view_if_needed()
        big.wait_for_timeout(1500)
        big.screenshot(path=str(shots / "explore-replay-3840x2160.png"))
        big.close()
        assert not watch.errors, watch.errors
        assert not wall_watch.errors, wall_watch.errors
        # a leader may read /explore but not replay the wall: no control at all
        ctx = browser.new_context(viewport={"width": 1920, "height": 1080})
        lead = ctx.new_page()
        lead_watch = PageWatch(lead)
        signin_page(lead, base, make_user(sessions, "leader"))
        lead.goto(f"{base}/explore")
        expect(lead.locator("#explore-kpi-open")).not_to_have_text("—", timeout=30_000)
        lead.wait_for_timeout(1000)
        assert lead.locator("#explore-replay-open").count() == 0
        assert lead.locator("#explore-replay-minute").count() == 0
        assert not lead_watch.errors, lead_watch.errors
        ctx.close()
    finally:
        server.shutdown()
        runtime.close()
