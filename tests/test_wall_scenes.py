"""Scenes of the wall: a playlist (轮播) cycles layouts and regions without a reload or a blank;
single-panel layouts and a mosaic of two screens.

Real parts (tests/hallkit.py): the demo city in the test's database, the real ingest, the app on a
werkzeug thread, Debian's Chromium. While a playlist plays, a sampler in the page looks at every
visible panel every 150 ms and records any that is empty (no grid drawn, no rows, no KPI
figure), and the page's document must stay the same one throughout. Set GRIDHALL_SHOTS_DIR to
keep the screenshots.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from authkit import display_token
from browserkit import PageWatch, shots_dir
from dashboard.store import scope as scopes
from hallkit import Hall, districts_by_load
from layouts import wall as wallpage

pytestmark = pytest.mark.usefixtures("fresh_scope_cache")

# Every 150 ms: which visible panel is empty. A panel is visible when it takes room on the screen.
SAMPLER = """(() => {
  window.__empty = []; window.__samples = 0;
  const visible = (el) => !!el && el.getClientRects().length > 0 && el.getBoundingClientRect().height > 4;
  const rows = (sel) => document.querySelectorAll(sel + ' .ag-center-cols-container .ag-row').length;
  window.__sampler = setInterval(() => {
    window.__samples += 1;
    const empty = [];
    const wall = (window.gridhall || {}).wall || {};
    if (visible(document.querySelector('.wall-map'))) {
      if (!Object.keys(wall.layers || {}).length) empty.push('map');
      if (!document.querySelector('#wall-hot .wall-hot__item')) empty.push('hot');
    }
    if (visible(document.querySelector('.wall-queue')) && !rows('#wall-queue')) empty.push('queue');
    if (visible(document.querySelector('.wall-units')) && !rows('#wall-board')) empty.push('board');
    if (visible(document.querySelector('.wall-districts')) && !rows('#wall-districts')) empty.push('districts');
    if (visible(document.querySelector('.wall-kpis'))) {
      const texts = [...document.querySelectorAll('.wall-kpis .gh-kpi__value')].map(e => e.innerText.trim());
      if (texts.some(t => !t || t === '—')) empty.push('kpis');
    }
    if (empty.length) window.__empty.push([Date.now(), document.documentElement.dataset.wallEntry, empty]);
  }, 150);
})()"""


def _visible(page: Any, selector: str) -> bool:
    return bool(page.evaluate(f"""(() => {{ const el = document.querySelector('{selector}');
        return !!el && el.getClientRects().length > 0 && el.getBoundingClientRect().height > 4; }})()"""))


def _wait_entry(page: Any, index: int, timeout_s: float = 20.0) -> None:
    """Until the playlist shows entry ``index`` and the server answered its scene."""
    from playwright.sync_api import TimeoutError as Timeout

    try:
        page.wait_for_function(
            f"""() => document.documentElement.dataset.wallEntry === '{index}'
                  && +document.documentElement.dataset.wallScene === window.gridhall.scene.n""",
            timeout=int(timeout_s * 1000))
    except Timeout:
        state = page.evaluate("""({entry: document.documentElement.dataset.wallEntry,
            scene: document.documentElement.dataset.wallScene, n: (window.gridhall.scene || {}).n,
            layout: document.documentElement.dataset.wallLayout})""")
        raise AssertionError(f"entry {index} not shown: {state}") from None


@pytest.mark.browser
def test_a_playlist_cycles_three_entries_without_a_blank(
    browser: Any, command_hall: Hall, sessions: sessionmaker[Session], tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    (code, name, _), *_ = districts_by_load(sessions)
    with sessions() as s:
        mine = scopes.get_scope(s, code).grid_codes
    dwell = 5
    playlist = f"map@{code}:{dwell},queue:{dwell},districts:{dwell}"
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    watch = PageWatch(page)
    shots = shots_dir(tmp_path)
    try:
        page.goto(f"{command_hall.url}/wall?token={display_token(sessions)}")
        page.goto(f"{command_hall.url}/wall?playlist={playlist}")
        page.wait_for_function("() => Object.keys((window.gridhall.wall || {}).layers || {}).length > 0",
                               timeout=30_000)
        page.evaluate("window.__sameDocument = 'yes'")
        _wait_entry(page, 0)
        page.wait_for_timeout(800)  # the first scene's answer painted
        page.evaluate(SAMPLER)
        started = time.monotonic()

        # 1. The district's map, full-screen: only its cells coloured, its name in the title.
        assert page.get_attribute("html", "data-wall-layout") == "map"
        assert _visible(page, ".wall-map") and not _visible(page, ".wall-queue") and not _visible(page, ".wall-kpis")
        page.wait_for_function(f"""() => {{ const v = window.gridhall.wall.values;
            return Object.keys(v).length > 0 && Object.keys(v).every(c => c.startsWith('{code}')); }}""",
                               timeout=15_000)
        coloured = set(page.evaluate("Object.keys(window.gridhall.wall.values)"))
        assert coloured <= mine
        # The title comes with the scene callback's answer, which may trail the cells on a busy machine.
        expect(page.locator("#wall-title")).to_have_text(f"{name}数字化城市管理指挥分中心", timeout=10_000)
        page.screenshot(path=str(shots / "wall-playlist-1-map-1920x1080.png"))

        # 2. The city's overdue queue, full-screen.
        _wait_entry(page, 1)
        page.wait_for_timeout(500)
        assert page.get_attribute("html", "data-wall-layout") == "queue"
        assert _visible(page, ".wall-queue") and not _visible(page, ".wall-map")
        expect(page.locator("#wall-title")).to_have_text(wallpage.WALL_TITLE, timeout=10_000)
        page.screenshot(path=str(shots / "wall-playlist-2-queue-1920x1080.png"))

        # 3. 各区对比, full-screen, one row per district.
        _wait_entry(page, 2)
        page.wait_for_timeout(500)
        assert page.get_attribute("html", "data-wall-board") == "districts"
        assert _visible(page, ".wall-districts") and not _visible(page, ".wall-units")
        n = len(districts_by_load(sessions))
        page.wait_for_function(
            f"() => document.querySelectorAll('#wall-districts .ag-center-cols-container .ag-row').length === {n}",
            timeout=5_000)
        page.screenshot(path=str(shots / "wall-playlist-3-districts-1920x1080.png"))

        # ... and round again to the first.
        _wait_entry(page, 0)
        page.wait_for_timeout(500)
        samples = page.evaluate("window.__samples")
        elapsed = time.monotonic() - started
        assert samples >= 0.8 * elapsed / 0.15, (samples, elapsed)  # the sampler kept its pace
        assert page.evaluate("window.__empty") == []
        assert page.evaluate("window.__sameDocument") == "yes"  # never reloaded
        assert watch.errors == [] and watch.dialogs == []
        watch.assert_local_only()
    finally:
        page.close()


@pytest.mark.browser
@pytest.mark.parametrize("layout,shown,hidden", [
    ("kpis", ".wall-kpis", ".wall-main"),
    ("board", ".wall-units", ".wall-map"),
])
def test_single_panel_layouts(browser: Any, command_hall: Hall, sessions: sessionmaker[Session], tmp_path: Path,
                              layout: str, shown: str, hidden: str) -> None:
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    try:
        page.goto(f"{command_hall.url}/wall?token={display_token(sessions)}")
        page.goto(f"{command_hall.url}/wall?layout={layout}")
        page.wait_for_function(f"() => document.documentElement.dataset.wallLayout === '{layout}'",
                               timeout=30_000)
        page.wait_for_function("() => /\\d/.test(document.querySelector('#wall-kpi-reported').innerText)",
                               timeout=30_000)
        assert _visible(page, shown) and not _visible(page, hidden)
        box = page.locator(shown).bounding_box()
        assert box and box["height"] > 700, box  # it has the screen to itself, below the header
        for size in ((1920, 1080), (3840, 2160)):
            page.set_viewport_size({"width": size[0], "height": size[1]})
            page.wait_for_timeout(800)
            page.screenshot(path=str(shots_dir(tmp_path) / f"wall-{layout}-{size[0]}x{size[1]}.png"))
    finally:
        page.close()


@pytest.mark.browser
def test_a_mosaic_of_two_screens_shows_the_two_halves(browser: Any, command_hall: Hall, sessions: sessionmaker[Session],
                                                      tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 1920, "height": 1080})  # one wall PC, two outputs
    token_page = context.new_page()
    token_page.goto(f"{command_hall.url}/wall?token={display_token(sessions)}")
    left, right = context.new_page(), context.new_page()
    try:
        for page, tile in ((left, "2x1:1,1"), (right, "2x1:2,1")):
            page.set_viewport_size({"width": 1920, "height": 1080})
            page.goto(f"{command_hall.url}/wall?layout=mosaic&tile={tile}")
            page.wait_for_function("() => document.documentElement.dataset.wallLayout === 'mosaic'", timeout=30_000)
            page.wait_for_function("() => Object.keys((window.gridhall.wall || {}).layers || {}).length > 0",
                                   timeout=30_000)
        shots = shots_dir(tmp_path)
        for page, side in ((left, "left"), (right, "right")):
            page.wait_for_timeout(800)
            page.screenshot(path=str(shots / f"wall-mosaic-{side}-1920x1080.png"))
        # The left screen shows the map (the wall's left part), the right one the queue and board:
        # each drawn over 3840 px and moved so that its own half is in view.
        box_map = left.locator(".wall-map").bounding_box()
        box_queue = right.locator(".wall-queue").bounding_box()
        assert box_map and 0 <= box_map["x"] < 200 and box_map["width"] > 1200, box_map
        assert box_queue and -400 < box_queue["x"] < 1000 and box_queue["x"] + box_queue["width"] > 1800, box_queue
        assert left.evaluate("document.querySelector('#wall-root').getBoundingClientRect().width") > 3800
        assert right.evaluate("document.querySelector('#wall-root').getBoundingClientRect().left") < -1800
    finally:
        context.close()


@pytest.mark.browser
def test_a_late_panel_wears_a_badge(browser: Any, command_hall: Hall, sessions: sessionmaker[Session],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """When the live view stops moving with the clock (its follower stuck), every panel it feeds
    says since when; the ranking's badge stays off while the ranking is computed."""
    import dataclasses

    from dashboard.rules.clock import utcnow

    service = command_hall.runtime.services.wall
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    try:
        page.goto(f"{command_hall.url}/wall?token={display_token(sessions)}")
        page.wait_for_function("() => Object.keys((window.gridhall.wall || {}).layers || {}).length > 0",
                               timeout=30_000)
        assert page.locator(".wall-late-badge.is-on").count() == 0
        follower = service.follower
        assert follower is not None
        real = follower.status
        stuck = utcnow() - timedelta(seconds=60)
        monkeypatch.setattr(follower, "status", lambda: dataclasses.replace(real(), last_tick_at=stuck))
        page.wait_for_function("() => document.documentElement.dataset.wallLate === 'live'", timeout=10_000)
        badges = page.locator(".wall-map .wall-late-badge.is-on, .wall-queue .wall-late-badge.is-on")
        assert badges.count() == 2
        assert badges.first.inner_text().startswith("数据滞后 · 自 ")
        monkeypatch.setattr(follower, "status", real)
        page.wait_for_function("() => document.documentElement.dataset.wallLate === ''", timeout=10_000)
        assert page.locator(".wall-late-badge.is-on").count() == 0
    finally:
        page.close()
