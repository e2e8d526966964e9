"""The wall (/wall): delta updates across workers, and the real page in Chromium on the demo city.

The browser test builds the demo city (dashboard.demo.democity) with a few days of history, runs
the app on a werkzeug thread and the real ingest in the test, and checks the page against
SQL. Set GRIDHALL_SHOTS_DIR to keep the screenshots (docs/screenshots/ holds the committed ones).
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from authkit import display_url, make_user, signin_page
from browserkit import PageWatch, shots_dir, take_updates, watch_updates
from callbacks.wall import WallService
from callbacks.wall_push import Sight
from dashboard.figures import heat
from dashboard.figures.overdue import overdue_stored
from dashboard.rules.clock import utcnow
from dashboard.rules.lifecycle import OPEN, EventType, Stage
from dashboard.rules.vocab import Source
from dashboard.settings import Settings
from dashboard.store import db
from dashboard.store.models import Case, Grid, Unit
from democitykit import build_demo
from feedkit import set_health
from feeds.contract import CaseEventMessage
from feeds.ingest import Ingest
from feeds.producer import Producer

OPEN_STAGES = [s.value for s in OPEN]


XSS_NUMBER = "<img src=x onerror=__xss=1>"  # 27 of the 32 characters a number may have
XSS_TEXT = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1"> 井盖缺失'



def report(case_id: str, grid: str, at: datetime | None = None, **fields: Any) -> CaseEventMessage:
    return CaseEventMessage(event_id=f"{case_id}-r", case_id=case_id, type=EventType.REPORTED,
                            occurred_at=at or utcnow(), source="supervisor", kind="event", class_code="01001",
                            grid_code=grid, description="道路积水", number=case_id, **fields)


def ingest_all(ingest: Ingest) -> None:
    while ingest.step():
        pass


def open_per_grid(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions() as s:
        rows = s.execute(select(Grid.code, func.count(Case.id)).join(Case, Case.grid_id == Grid.id)
                         .where(Case.stage.in_(OPEN_STAGES)).group_by(Grid.code)).all()
    return {code: int(n) for code, n in rows}


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


# -- deltas across workers ------------------------------------------------------------------------
def test_a_screen_polling_two_workers_converges_on_sql_with_small_deltas(
    settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis, demo_city_dir: Path,
) -> None:
    ref = build_demo(settings, sessions, demo_city_dir, days=2)
    ingest = Ingest(settings, sessions, redis_client, ref, consumer="t", block_ms=10)
    ingest.ensure_group()
    workers = [WallService(settings, sessions, redis_client) for _ in range(2)]
    try:
        for w in workers:
            w.start()
        wait_for(lambda: all(w.live is not None for w in workers), 60)
        screen: dict[str, int] = {}
        have: dict[str, Any] | None = None
        sizes: list[int] = []

        def poll(worker: WallService) -> None:
            nonlocal have
            update = worker.grid_update(Sight("open"), have)
            if update is None:
                return
            if update["full"]:
                screen.clear()
            for code, value in update["values"].items():
                if value:
                    screen[code] = value
                else:
                    screen.pop(code, None)
            if not update["full"]:
                sizes.append(len(update["values"]))
            have = {"nid": update["nid"], "tick": update["tick"]}

        poll(workers[0])
        assert screen == open_per_grid(sessions)
        grids = sorted(ref.grid_ids)
        producer = Producer(redis_client, settings)
        for round_ in range(6):
            producer.publish_many(report(f"w{round_}-{i}", grids[(round_ * 7 + i * 13) % len(grids)])
                                  for i in range(5))
            ingest_all(ingest)
            truth = open_per_grid(sessions)
            # Both workers catch up (notices are followed in the background), then the screen
            # polls them in turn, as a browser behind a load balancer would.
            wait_for(lambda truth=truth: all(w.live.grid_values("open") == truth for w in workers))  # type: ignore[union-attr]
            poll(workers[round_ % 2])
            poll(workers[(round_ + 1) % 2])
            assert screen == truth
        assert sizes and max(sizes) <= 10, sizes  # deltas of the changed cells, not all of them
        # Nothing new: no update at all.
        again = workers[0].grid_update(Sight("open"), have)
        assert again is None or again["values"] == {}
    finally:
        for w in workers:
            w.stop()


# -- the real page ----------------------------------------------------------------------------------
def unit_truth(sessions: sessionmaker[Session], now: datetime) -> dict[str, tuple[int, int]]:
    """unit name → (待处置, 超期) from SQL, as docs/wall.md defines them."""
    out: dict[str, tuple[int, int]] = {}
    with sessions() as s:
        for name, stage, clock, deadline, paused in s.execute(
            select(Unit.name, Case.stage, Case.clock_stage, Case.deadline_at, Case.paused_at)
            .join(Case, Case.unit_id == Unit.id).where(Case.stage.in_(OPEN_STAGES))
        ):
            pending, overdue = out.get(name, (0, 0))
            pending += stage in (Stage.DISPATCHED.value, Stage.SUSPENDED.value)
            overdue += clock == "handle" and paused is None and deadline is not None and deadline < now
            out[name] = (pending, overdue)
    return out


@pytest.mark.browser
def test_wall_in_chromium_on_the_demo_city(
    browser: Any, settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis,
    demo_city_dir: Path, tmp_path: Path, engine: Any,
) -> None:
    from playwright.sync_api import expect

    import app as appmod

    settings = settings.model_copy(update={"stale_after_s": 5})
    ref = build_demo(settings, sessions, demo_city_dir)
    ingest = Ingest(settings, sessions, redis_client, ref, consumer="t", block_ms=10)
    ingest.ensure_group()
    # The feed is alive while this runs: a heartbeat every second, as a running ingest sends.
    alive = threading.Event()
    alive.set()

    def beat() -> None:
        while alive.is_set():
            ingest.heartbeat()
            time.sleep(1)

    threading.Thread(target=beat, daemon=True).start()
    # The most overdue case of all carries markup in its number and description: the wall
    # must show it as text (AG Grid cells) and never run it.
    with db.transaction(sessions) as s:
        grid_id = s.scalar(select(Grid.id).order_by(Grid.id).limit(1))
        s.add(Case(case_id="C-XSS", number=XSS_NUMBER, grid_id=grid_id, stage="dispatched", kind="event",
                   urgency="normal", reported_at=utcnow() - timedelta(days=60), description=XSS_TEXT,
                   clock_stage="handle", deadline_at=utcnow() - timedelta(days=59), deadline_source="table",
                   limit_minutes=600, limit_unit="calendar_hours", clock_started_at=utcnow() - timedelta(days=60)))
    application = appmod.create_app(settings)
    server = make_server("127.0.0.1", 0, application.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    runtime = application.server.extensions[appmod.EXTENSION_KEY]
    url = f"http://127.0.0.1:{server.server_port}/wall"
    page = watch_updates(browser.new_page(viewport={"width": 1920, "height": 1080}))
    watch = PageWatch(page)
    try:
        with sessions() as s:
            n_grids = s.scalar(select(func.count()).select_from(Grid))
        page.goto(display_url(sessions, url.rsplit("/wall", 1)[0]))  # a wall screen's token sign-in
        expect(page).to_have_url(url)  # the token is gone from the address bar
        expect(page.locator("html")).to_have_attribute("data-wall-grids", str(n_grids), timeout=30_000)
        page.evaluate("window.__sameDocument = 'yes'")

        # The most overdue case heads the queue (SQL's own evaluation of the stored clocks).
        now = utcnow()
        timing = ref.timing
        assert timing is not None
        with sessions() as s:
            expected = overdue_stored(s, timing, now)
        first = next(r for r in expected if r.overdue)
        assert first.number == XSS_NUMBER
        expect(page.locator("#wall-queue .ag-row[row-index='0'] [col-id='number']")).to_have_text(
            first.number or first.case_id, timeout=15_000)
        assert page.evaluate("window.__xss") is None  # shown as text, never run
        assert page.locator("#wall-queue img").count() == 0

        # The unit board's first page equals SQL.
        truth = unit_truth(sessions, now)
        rows = page.locator("#wall-board .ag-center-cols-container .ag-row")
        expect(rows.first).to_be_visible()
        for i in range(rows.count()):
            row = rows.nth(i)
            name = row.locator("[col-id='unit']").inner_text().strip()
            pending = int(row.locator("[col-id='pending']").inner_text())
            overdue = int(row.locator("[col-id='overdue']").inner_text())
            assert (pending, overdue) == truth.get(name, (0, 0)), name

        # 在办案件 · 按来源: a chip per source with open cases, its count as SQL counts it.
        with sessions() as s:
            by_source = dict(s.execute(select(Case.source, func.count()).where(Case.stage.in_(
                [st.value for st in OPEN])).group_by(Case.source)).all())
        want_chips = {Source(src).label: f"{n:,}" for src, n in by_source.items() if src is not None and n}
        assert len(want_chips) >= 2, by_source  # the demo city's cases come in through several channels
        chips = page.locator("#wall-sources .wall-sources__item")
        expect(chips).to_have_count(len(want_chips), timeout=10_000)
        have_chips = {chips.nth(i).locator(".wall-sources__label").inner_text():
                      chips.nth(i).locator(".wall-sources__value").inner_text() for i in range(chips.count())}
        assert have_chips == want_chips

        # A new event reaches the page without a reload: 上报 today goes up, its grid's value too.
        before = int(page.inner_text("#wall-kpi-reported").replace(",", ""))
        grid = sorted(ref.grid_ids)[42]
        old_value = page.evaluate(f"window.gridhall.wall.values['{grid}'] || 0")
        Producer(redis_client, settings).publish(report("wall-live-1", grid))
        ingest_all(ingest)
        expect(page.locator("#wall-kpi-reported")).to_have_text(f"{before + 1:,}", timeout=5_000)
        page.wait_for_function(f"(window.gridhall.wall.values['{grid}'] || 0) === {old_value + 1}", timeout=5_000)
        # ... and wears the colour of its class, from the palette the page sent (dashboard/figures/heat.py).
        want = [c for low, c in zip(heat.BREAKS, heat.COLOURS, strict=True) if old_value + 1 >= low][-1]
        page.wait_for_function(f"window.gridhall.wall.layers['{grid}'].options.fillColor === '{want}'", timeout=5_000)
        assert page.evaluate("window.__sameDocument") == "yes"
        expect(page.locator("#wall-banner")).to_be_hidden()

        # 100 grids change at once: the answers that carry them are ≤ 10 KB on the wire (gzip).
        # The handler only keeps the responses: Playwright's sync API delivers events while the
        # test waits, and a handler that calls back into the browser (body()) would stall there.
        responses: list[Any] = []

        def seen(response: Any) -> None:
            if response.url.split("?")[0].endswith("/_dash-update-component") and response.status == 200 \
                    and "wall-grid.data" in (response.request.post_data or ""):
                responses.append(response)

        page.on("response", seen)
        hundred = [g for g in sorted(ref.grid_ids) if g != grid][:100]
        assert len(hundred) == 100
        values = page.evaluate("Object.assign({}, window.gridhall.wall.values)")
        Producer(redis_client, settings).publish_many(report(f"wall-100-{i}", g) for i, g in enumerate(hundred))
        ingest_all(ingest)
        want = {g: values.get(g, 0) + 1 for g in hundred}
        page.wait_for_function(f"""() => {{ const want = {json.dumps(want)}, have = window.gridhall.wall.values;
            return Object.keys(want).every(c => have[c] === want[c]); }}""", timeout=10_000)
        page.remove_listener("response", seen)
        answers: list[tuple[int, int, str]] = []
        for response in responses:
            grid_data = (json.loads(response.body())["response"].get("wall-grid") or {}).get("data") or {}
            answers.append((response.request.sizes()["responseBodySize"], len(grid_data.get("values") or {}),
                            response.headers.get("content-encoding", "")))
        for size, answer in take_updates(page):  # pushed: the event's compressed piece
            grid_data = (answer.get("wall-grid") or {}).get("data") or {}
            answers.append((size, len(grid_data.get("values") or {}), "push"))
        carried = [a for a in answers if a[1]]
        assert sum(n for _, n, _ in carried) >= 100, answers
        assert all(size <= 10_000 and enc in ("gzip", "push") for size, _, enc in carried), carried

        shots = shots_dir(tmp_path)
        page.screenshot(path=str(shots / "wall-1920x1080.png"))
        page.set_viewport_size({"width": 3840, "height": 2160})
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "wall-3840x2160.png"))
        page.set_viewport_size({"width": 1920, "height": 1080})

        # The feed stops (no heartbeat, no batch for longer than GRIDHALL_STALE_AFTER_S): the
        # red banner says since when; it clears by itself when the feed is back.
        alive.clear()
        time.sleep(1.2)
        old = (utcnow() - timedelta(seconds=60)).isoformat()
        set_health(redis_client, settings, heartbeat_at=old, last_batch_at=old)
        expect(page.locator("#wall-banner")).to_be_visible(timeout=8_000)
        expect(page.locator("#wall-banner")).to_contain_text("数据已停止更新")
        alive.set()
        threading.Thread(target=beat, daemon=True).start()
        expect(page.locator("#wall-banner")).to_be_hidden(timeout=8_000)

        assert watch.errors == [] and watch.dialogs == []
        watch.assert_local_only()
        assert page.get_attribute("#wall-root", "data-explore") is None  # a wall screen: no drill-down

        # A shift lead at a desk opens the same wall: a click on a hot spot opens that grid in
        # /explore; a click on a map cell does the same.
        desk = browser.new_page(viewport={"width": 1920, "height": 1080})
        desk_watch = PageWatch(desk)
        signin_page(desk, url.rsplit("/wall", 1)[0], make_user(sessions, "shift_lead"), next_path="/wall")
        expect(desk.locator("html")).to_have_attribute("data-wall-grids", str(n_grids), timeout=30_000)
        hot = desk.locator("#wall-hot .wall-hot__item[data-grid]").first
        expect(hot).to_be_visible(timeout=10_000)
        code = hot.get_attribute("data-grid")
        with desk.expect_navigation():
            hot.click()
        assert desk.url.endswith(f"/explore?region={code}")
        # The drill-down shows that grid (its code in the crumbs), and once explore has drawn it,
        # Back returns to the wall: explore leaves the URL as it is (no second history entry).
        expect(desk.locator("#explore-crumbs")).to_contain_text(code, timeout=15_000)
        desk.wait_for_timeout(500)
        desk.go_back()
        expect(desk.locator("html")).to_have_attribute("data-wall-grids", str(n_grids), timeout=30_000)
        cell = desk.evaluate("Object.keys(window.gridhall.wall.layers)[0]")
        with desk.expect_navigation():
            desk.evaluate(f"() => {{ window.gridhall.wall.layers['{cell}'].fire('click'); }}")
        assert desk.url.endswith(f"/explore?region={cell}")
        expect(desk.locator("#explore-crumbs")).to_contain_text(cell, timeout=15_000)

        # The ranking panel (?board=evaluation) shows the evaluation of this month, as computed.
        desk.goto(url + "?board=evaluation")
        ranked = runtime.services.wall.rankings(None, utcnow())
        names = [r["name"] for r in ranked[1]]
        assert names, "the demo's history gives every district an evaluation"
        first = desk.locator("#wall-eval-regions .ag-row[row-index='0'] [col-id='name']")
        expect(first).to_have_text(names[0], timeout=15_000)
        expect(desk.locator("#wall-eval-period")).to_contain_text("综合指标值")
        expect(desk.locator(".wall-units")).to_be_hidden()  # the unit board makes room
        assert desk_watch.errors == []
        desk.close()
    finally:
        alive.clear()
        page.close()
        server.shutdown()
        runtime.close()
