"""Region walls (两级指挥): a district's wall shows that district only, as SQL counts it.

Real parts: the demo city (several districts, a few days of history) in SQLite or PostgreSQL,
the real ingest on Redis, the app on a werkzeug thread, Debian's Chromium. The figures are
checked against the read API's SQL path (``dashboard.figures.readapi``: an independent
implementation of the same definitions), and every byte the page received — callback answers,
pushed updates, geometry — and its DOM are searched for any grid code or case number of another
district. Set GRIDHALL_SHOTS_DIR to keep the screenshots.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from authkit import display_token, make_user, signin_page
from browserkit import PageWatch, shots_dir, take_updates, watch_updates
from dashboard.figures import readapi
from dashboard.rules.clock import utcnow
from dashboard.rules.lifecycle import EventType
from dashboard.store import scope as scopes
from dashboard.store.models import Case, Grid, Region
from dashboard.store.reference import Reference
from feeds.contract import CaseEventMessage
from hallkit import Hall, districts_by_load
from layouts import wall as wallpage

pytestmark = pytest.mark.usefixtures("fresh_scope_cache")

CODES = re.compile(r"\d{12,15}")  # grid codes (14/15 digits), community codes (12), case numbers (13)


def _foreign(sessions: sessionmaker[Session], mine: str) -> set[str]:
    """Grid and community codes and case numbers/ids that belong to other districts."""
    with sessions() as s:
        scope = scopes.get_scope(s, mine)
        out = {c for c in s.scalars(select(Grid.code)) if c not in scope.grid_codes}
        out |= {c for c in s.scalars(select(Region.code).where(Region.level == "community"))
                if c not in scope.region_codes}
        for cid, number, grid_id in s.execute(select(Case.case_id, Case.number, Case.grid_id)):
            if grid_id is None or grid_id not in scope.grid_ids:
                out.add(cid)
                if number:
                    out.add(number)
    return out


def _truth(sessions: sessionmaker[Session], ref: Reference, code: str) -> dict[str, Any]:
    """The district's figures from SQL now (readapi: the read API's SQL path)."""
    now = utcnow()
    timing = ref.timing
    assert timing is not None
    with sessions() as s:
        scope = scopes.get_scope(s, code)
        summary = readapi.summary(s, scope, timing, now)
        queue = readapi.overdue(s, scope, timing, now, limit=1)
        board = readapi.units(s, scope, timing, now)
        grids = readapi.grids(s, scope, timing, now)
        n_grids = s.scalar(select(func.count()).select_from(Grid).where(scopes.grid_condition(scope)))
    return {
        "kpi": wallpage.kpi_texts([getattr(summary, key) for key, _, _ in wallpage.KPIS]),
        "queue_note": f"超期 {queue.overdue_total:,} 件 · 临期 {queue.due_soon_total:,} 件",
        "units": {u.name: (u.pending, u.overdue) for u in board.units},
        "values": {g.code: g.open for g in grids.grids if g.open},
        "n_grids": n_grids,
    }


def _page_figures(page: Any) -> dict[str, Any]:
    kpi = [page.inner_text(f"#wall-kpi-{key}").strip() for key, _, _ in wallpage.KPIS]
    rows = page.eval_on_selector_all(
        "#wall-board .ag-center-cols-container .ag-row",
        """rows => rows.map(r => [r.querySelector("[col-id='unit']").innerText.trim(),
            +r.querySelector("[col-id='pending']").innerText, +r.querySelector("[col-id='overdue']").innerText])""")
    return {
        "kpi": kpi,
        "queue_note": page.inner_text("#wall-queue-count").split("（")[0].strip(),
        "units": {name: (pending, overdue) for name, pending, overdue in rows},
        "values": {k: v for k, v in page.evaluate("Object.assign({}, window.gridhall.wall.values)").items() if v},
    }


def _converges(read: Callable[[], dict[str, Any]], truth: Callable[[], dict[str, Any]], keys: tuple[str, ...],
               timeout: float = 15.0) -> None:
    """The page's figures equal SQL's (both read again until they agree: a deadline may pass between)."""
    until = time.monotonic() + timeout
    while True:
        want, have = truth(), read()
        diff = {k: (have[k], want[k]) for k in keys if k != "units" and have[k] != want[k]}
        # The board shows its first page: every row shown is SQL's row for that unit.
        shown = have["units"]
        if not shown or any(want["units"].get(n) != v for n, v in shown.items()):
            diff["units"] = (shown, {n: want["units"].get(n) for n in shown})
        if not diff:
            return
        if time.monotonic() > until:
            raise AssertionError(f"the wall differs from SQL: {diff}")
        time.sleep(0.5)


@pytest.mark.browser
def test_a_district_wall_shows_its_district_only(
    browser: Any, command_hall: Hall, sessions: sessionmaker[Session], tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    (code, name, _), (other, other_name, _) = districts_by_load(sessions)[:2]
    screen = make_user(sessions, "display", region=code, display_name=f"{name}大屏")
    page = watch_updates(browser.new_page(viewport={"width": 1920, "height": 1080}))
    watch = PageWatch(page)
    received: list[Any] = []

    def keep(response: Any) -> None:  # bodies are read later: a handler must not call back into the page
        path = response.url.split("?")[0]
        if response.status == 200 and (path.endswith("/_dash-update-component") or "/wall/geo/" in path
                                       or path.endswith("/_dash-layout")):
            received.append(response)

    page.on("response", keep)
    try:
        page.goto(f"{command_hall.url}/wall?token={display_token(sessions, screen)}")
        expect(page).to_have_url(f"{command_hall.url}/wall")
        want = _truth(sessions, command_hall.ref, code)
        # The map holds the district's grids only, fitted to them.
        expect(page.locator("html")).to_have_attribute("data-wall-grids", str(want["n_grids"]), timeout=30_000)
        expect(page.locator(".gh-header__sub")).to_have_text(f"{name}数字化城市管理指挥分中心")
        codes = set(page.evaluate("Object.keys(window.gridhall.wall.layers)"))
        with sessions() as s:
            mine = scopes.get_scope(s, code).grid_codes
        assert codes == set(mine)

        def truth() -> dict[str, Any]:
            return _truth(sessions, command_hall.ref, code)

        def read() -> dict[str, Any]:
            return _page_figures(page)

        expect(page.locator("#wall-board .ag-center-cols-container .ag-row").first).to_be_visible(timeout=15_000)
        _converges(read, truth, ("kpi", "queue_note", "units", "values"))
        hot = page.eval_on_selector_all("#wall-hot .wall-hot__item[data-grid]", "els => els.map(e => e.dataset.grid)")
        assert hot and set(hot) <= mine

        # An event in another district changes nothing here; one in this district shows at once.
        grid_here = sorted(mine)[3]
        with sessions() as s:
            there = sorted(scopes.get_scope(s, other).grid_codes)[3]
        before = page.inner_text("#wall-kpi-reported")
        command_hall.producer.publish(_report("region-other-1", there))
        command_hall.ingest.step()
        page.wait_for_timeout(1500)
        assert page.inner_text("#wall-kpi-reported") == before
        command_hall.producer.publish(_report("region-here-1", grid_here))
        while command_hall.ingest.step():
            pass
        expect(page.locator("#wall-kpi-reported")).to_have_text(
            f"{int(before.replace(',', '')) + 1:,}", timeout=5_000)
        _converges(read, truth, ("kpi", "queue_note", "units", "values"))

        shots = shots_dir(tmp_path)
        page.screenshot(path=str(shots / "wall-district-1920x1080.png"))
        page.set_viewport_size({"width": 3840, "height": 2160})
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "wall-district-3840x2160.png"))

        # Nothing of another district anywhere: the DOM, every answer, every pushed update.
        foreign = _foreign(sessions, code)
        texts = [page.content()]
        texts += [r.text() for r in received]
        texts += [json.dumps(answer, ensure_ascii=False) for _, answer in take_updates(page)]
        assert any("wall-grid" in t for t in texts[1:])  # the answers were seen
        leaked = {c for t in texts for c in CODES.findall(t) if c in foreign}
        leaked |= {c for t in texts for c in re.findall(r"[0-9a-f]{20}", t) if c in foreign}
        assert not leaked, sorted(leaked)[:10]
        assert other_name not in page.inner_text("body")

        # Another district by URL: refused (the page says so; geometry and stream are 404).
        page.goto(f"{command_hall.url}/wall?region={other}")
        expect(page.locator(".wall-refused")).to_have_text(wallpage.REFUSED_TEXT, timeout=10_000)
        for path in (f"/wall/geo/grids.json?region={other}", f"/wall/events?metric=open&region={other}",
                     "/wall/geo/grids.json?region=000000"):
            assert page.request.get(command_hall.url + path).status == 404, path
        assert watch.errors == [] and watch.dialogs == []
        watch.assert_local_only()
    finally:
        page.close()


@pytest.mark.browser
def test_the_city_hall_opens_a_districts_wall(browser: Any, command_hall: Hall,
                                              sessions: sessionmaker[Session]) -> None:
    from playwright.sync_api import expect

    (code, name, _), *_ = districts_by_load(sessions)
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    try:
        signin_page(page, command_hall.url, make_user(sessions, "shift_lead"), next_path=quote(f"/wall?region={code}"))
        if not page.url.endswith(f"/wall?region={code}"):
            page.goto(f"{command_hall.url}/wall?region={code}")
        want = _truth(sessions, command_hall.ref, code)
        expect(page.locator("html")).to_have_attribute("data-wall-grids", str(want["n_grids"]), timeout=30_000)
        expect(page.locator(".gh-header__sub")).to_contain_text(name)
        _converges(lambda: _page_figures(page), lambda: _truth(sessions, command_hall.ref, code),
                   ("kpi", "queue_note", "units", "values"))
    finally:
        page.close()


def _report(case_id: str, grid: str) -> CaseEventMessage:
    return CaseEventMessage(event_id=f"{case_id}-r", case_id=case_id, type=EventType.REPORTED,
                            occurred_at=utcnow(), source="supervisor", kind="event", class_code="01001",
                            grid_code=grid, description="道路积水", number=case_id)


def _district_truth(sessions: sessionmaker[Session], ref: Reference) -> dict[str, tuple[Any, ...]]:
    """各区对比 from SQL: per district (name → its KPI strip figures), readapi's summary of its scope."""
    now = utcnow()
    timing = ref.timing
    assert timing is not None
    out = {}
    with sessions() as s:
        for code, name in s.execute(select(Region.code, Region.name).where(Region.level == "district")):
            k = readapi.summary(s, scopes.get_scope(s, code), timing, now)
            rate = "—" if k.on_time_close_rate is None else f"{100 * k.on_time_close_rate:.1f}%"
            out[name] = (k.open, k.overdue, k.due_soon, k.urgent, k.reported, k.closed, rate)
    return out


@pytest.mark.browser
def test_the_city_wall_compares_its_districts(browser: Any, command_hall: Hall, sessions: sessionmaker[Session],
                                              tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    watch = PageWatch(page)
    try:
        page.goto(f"{command_hall.url}/wall?token={display_token(sessions)}")
        page.goto(f"{command_hall.url}/wall?board=districts")
        board = page.locator("#wall-districts")
        expect(board).to_be_visible(timeout=30_000)
        expect(page.locator(".wall-units")).to_be_hidden()  # it takes the unit board's place
        n = len(_district_truth(sessions, command_hall.ref))
        rows = page.locator("#wall-districts .ag-center-cols-container .ag-row")
        expect(rows).to_have_count(n, timeout=15_000)  # every district fits on the panel

        def read() -> dict[str, tuple[Any, ...]]:
            cells = page.eval_on_selector_all(
                "#wall-districts .ag-center-cols-container .ag-row",
                """rows => rows.map(r => ['name', 'open', 'overdue', 'due_soon', 'urgent', 'reported', 'closed', 'rate']
                    .map(c => r.querySelector(`[col-id='${c}']`).innerText.trim()))""")
            return {c[0]: (*(int(x.replace(",", "")) for x in c[1:7]), c[7]) for c in cells}

        until = time.monotonic() + 15
        while (have := read()) != (want := _district_truth(sessions, command_hall.ref)):
            assert time.monotonic() < until, (have, want)
            time.sleep(0.5)
        # The trend column says 近1时 / 时均 with an arrow, and each row draws today's hours.
        trend = page.locator("#wall-districts .ag-row [col-id='trend']").first.inner_text()
        assert re.fullmatch(r"[↑↓→] \d+ / \d+\.\d", trend.strip()), trend
        assert page.locator("#wall-districts svg.wall-spark polyline").count() == n
        shots = shots_dir(tmp_path)
        page.screenshot(path=str(shots / "wall-districts-1920x1080.png"))
        page.set_viewport_size({"width": 3840, "height": 2160})
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "wall-districts-3840x2160.png"))
        assert watch.errors == []
        # A district's wall has no 各区对比: ?board=districts shows its unit board.
        district = make_user(sessions, "display", region=districts_by_load(sessions)[0][0])
        other = browser.new_page(viewport={"width": 1920, "height": 1080})
        other.goto(f"{command_hall.url}/wall?token={display_token(sessions, district)}")
        other.goto(f"{command_hall.url}/wall?board=districts")
        expect(other.locator(".wall-board:not(.wall-districts):not(.wall-eval)")).to_be_visible(timeout=30_000)
        expect(other.locator("#wall-districts")).to_be_hidden()
        other.close()
    finally:
        page.close()
