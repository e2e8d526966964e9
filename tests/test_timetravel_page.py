"""/wall?at= in Chromium: the wall at a past minute (回放) renders, says so, and shows the figures the live
wall had at that minute — not the ones it has now. Screenshots at 1920×1080 and 3840×2160
(GRIDHALL_SHOTS_DIR keeps them)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from authkit import make_user, signin_page
from browserkit import PageWatch, shots_dir
from callbacks.wall import board_rows, kpi_values, queue_rows
from dashboard.figures.liveview import LiveView
from dashboard.rules.lifecycle import EventType
from dashboard.settings import Settings
from democitykit import build_demo
from feeds.contract import CaseEventMessage
from feeds.ingest import Ingest
from feeds.producer import Producer
from layouts import wall as wall_layout


def test_wall_at_a_past_minute_in_chromium(browser: Any, settings: Settings, sessions: sessionmaker[Session],
                                           redis_client: redis.Redis, demo_city_dir: Path, tmp_path: Path,
                                           engine: Any) -> None:
    from playwright.sync_api import expect

    import app as appmod

    T = (datetime.now(UTC) - timedelta(minutes=2)).replace(second=0, microsecond=0)
    ref = build_demo(settings, sessions, demo_city_dir, days=3, now=T)
    assert ref.timing is not None
    # What the live wall showed at T (its own code, on the rows as they were then) …
    with sessions() as s:
        live = LiveView.load(s, ref.timing, T)
    kpis = wall_layout.kpi_texts(kpi_values(live))
    queue, note = queue_rows(live, T)
    board = board_rows(live)
    assert live.kpis().overdue > 0 and queue and board
    # … then the city moves on: a case reported after T, which the wall at T must not show.
    ingest = Ingest(settings, sessions, redis_client, ref, consumer="tt", block_ms=10)
    ingest.ensure_group()
    grid = sorted(ref.grid_ids)[7]
    Producer(redis_client, settings).publish(CaseEventMessage(
        event_id="after-T-r", case_id="after-T", type=EventType.REPORTED, occurred_at=datetime.now(UTC),
        source="supervisor", kind="event", class_code="01001", grid_code=grid, description="道路积水"))
    while ingest.step():
        pass

    application = appmod.create_app(settings)
    server = make_server("127.0.0.1", 0, application.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    runtime = application.server.extensions[appmod.EXTENSION_KEY]
    base = f"http://127.0.0.1:{server.server_port}"
    local = T.astimezone(settings.tz)
    at = f"{local:%Y-%m-%dT%H:%M}"
    shots = shots_dir(tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        watch = PageWatch(page)
        signin_page(page, base, make_user(sessions, "shift_lead"))
        page.goto(f"{base}/wall?at={at}")
        expect(page.locator("#wall-replay")).to_have_text(wall_layout.replay_text(local), timeout=30_000)
        expect(page.locator("#wall-replay")).to_be_visible()
        for (key, _, _), text in zip(wall_layout.KPIS, kpis, strict=True):
            expect(page.locator(f"#wall-kpi-{key}")).to_have_text(text, timeout=30_000)
        expect(page.locator("#wall-queue-count")).to_have_text(note)
        first = queue[0]
        expect(page.locator("#wall-queue .ag-row[row-index='0'] [col-id='number']")).to_have_text(
            str(first["number"]), timeout=15_000)
        expect(page.locator("#wall-board .ag-row[row-index='0'] [col-id='unit']")).to_have_text(
            str(board[0]["unit"]), timeout=15_000)
        page.wait_for_function(f"(window.gridhall.wall.values['{grid}'] || 0) === "
                               f"{live.grid_values('open').get(grid, 0)}", timeout=10_000)
        # read-only: no push stream opened
        assert not [u for u in watch.requests if "/wall/events" in u]
        page.screenshot(path=str(shots / "wall-replay-1920x1080.png"))
        big = browser.new_page(viewport={"width": 3840, "height": 2160})
        big.context.add_cookies(page.context.cookies())
        big.goto(f"{base}/wall?at={at}")
        expect(big.locator("#wall-kpi-overdue")).to_have_text(kpis[[k for k, _, _ in wall_layout.KPIS].index(
            "overdue")], timeout=30_000)
        big.wait_for_timeout(1500)
        big.screenshot(path=str(shots / "wall-replay-3840x2160.png"))
        assert not watch.errors, watch.errors
        # Played at 60×: a minute a second, the banner and the figures move on by themselves.
        start = local - timedelta(minutes=30)
        page.goto(f"{base}/wall?at={start:%Y-%m-%dT%H:%M}&speed=60")
        banner = page.locator("#wall-replay")
        expect(banner).to_contain_text("60× 播放", timeout=30_000)
        first_text = banner.inner_text()
        expect(banner).not_to_have_text(first_text, timeout=20_000)
        assert page.evaluate("document.documentElement.getAttribute('data-wall-version')").startswith("replay/")
        page.goto(f"{base}/wall?at={at}&speed=0")
        expect(page.locator("body")).to_contain_text(wall_layout.REPLAY_SPEED_TEXT, timeout=15_000)
        # An instant in the future, or no instant at all, is refused with a line in Chinese.
        page.goto(f"{base}/wall?at=2999-01-01T09:00")
        expect(page.locator("body")).to_contain_text(wall_layout.REPLAY_FUTURE_TEXT, timeout=15_000)
        page.goto(f"{base}/wall?at=yesterday")
        expect(page.locator("body")).to_contain_text(wall_layout.REPLAY_BAD_TEXT, timeout=15_000)
    finally:
        server.shutdown()
        runtime.close()
