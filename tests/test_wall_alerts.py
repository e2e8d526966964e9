"""Alerts of 突发事件 on the walls (两级指挥): an urgent case raises an alert on its district's wall
and not on another district's, reaches the city wall when the district leaves it unacknowledged
(escalation), and the shift lead's acknowledgement clears it everywhere.

Real parts (tests/hallkit.py): the demo city, the real ingest (which raises and escalates the
alerts), the control notices on the test's Redis, the app on a werkzeug thread, Debian's
Chromium. Set GRIDHALL_SHOTS_DIR to keep the screenshots.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from authkit import display_token, make_user, signin_page
from browserkit import PageWatch, shots_dir
from dashboard.rules.clock import utcnow
from dashboard.rules.lifecycle import EventType
from dashboard.settings import Settings
from dashboard.store import scope as scopes
from dashboard.store.models import Alert
from feeds.contract import CaseEventMessage
from hallkit import Hall, districts_by_load

pytestmark = pytest.mark.usefixtures("fresh_scope_cache")


def _count(page: Any) -> str:
    return str(page.get_attribute("html", "data-wall-alerts") or "0")


def _until(command_hall: Hall, pages: list[Any], script: str, timeout_s: float) -> None:
    """Drive the ingest (it escalates once a second) until ``script`` is true on every page."""
    until = time.monotonic() + timeout_s
    while True:
        command_hall.ingest.step()
        if all(p.evaluate(script) for p in pages):
            return
        assert time.monotonic() < until, [p.evaluate("document.documentElement.dataset.wallAlerts") for p in pages]
        time.sleep(0.2)


@pytest.mark.browser
def test_an_urgent_case_alerts_its_district_then_the_city(
    browser: Any, command_hall: Hall, sessions: sessionmaker[Session], settings: Settings, redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    (code, name, _), (other, _, _), *_ = districts_by_load(sessions)
    with sessions() as s:
        grid = sorted(scopes.get_scope(s, code).grid_codes)[5]
    pages: dict[str, Any] = {}
    for key, region in (("here", code), ("there", other), ("city", None)):
        user = make_user(sessions, "display", region=region)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.goto(f"{command_hall.url}/wall?token={display_token(sessions, user)}")
        pages[key] = page
    watch = PageWatch(pages["here"])
    try:
        for page in pages.values():
            page.wait_for_function("() => document.documentElement.dataset.wallPush === 'open'", timeout=30_000)
        assert {_count(p) for p in pages.values()} <= {"0"}

        # An urgent case in the district: its wall shows it at once, as text, its grid flashing.
        command_hall.producer.publish(CaseEventMessage(
            event_id="alert-1-r", case_id="alert-1", type=EventType.REPORTED, occurred_at=utcnow(),
            source="supervisor", kind="event", class_code="06010", grid_code=grid, urgency="urgent",
            description="暴露垃圾堆积<b>", number="ALERT-0001"))  # 暴露垃圾: urgent, not a safety class
        started = time.monotonic()
        command_hall.ingest.step()
        pages["here"].wait_for_function("() => document.documentElement.dataset.wallAlerts === '1'", timeout=3_000)
        took = time.monotonic() - started
        strip = pages["here"].locator("#wall-alert")
        assert "ALERT-0001" in strip.inner_text() and "紧急案件" in strip.inner_text()
        assert grid in strip.inner_text()
        assert pages["here"].evaluate("window.gridhall.alerts.flashing") == grid
        for size in ((1920, 1080), (3840, 2160)):
            pages["here"].set_viewport_size({"width": size[0], "height": size[1]})
            pages["here"].wait_for_timeout(900)
            pages["here"].screenshot(path=str(shots_dir(tmp_path) / f"wall-alert-{size[0]}x{size[1]}.png"))
        pages["here"].set_viewport_size({"width": 1920, "height": 1080})
        # ... never on another district's wall, nor yet on the city's.
        pages["there"].wait_for_timeout(1000)
        assert _count(pages["there"]) == "0" and _count(pages["city"]) == "0"
        assert "ALERT-0001" not in pages["there"].content()

        # Nobody acknowledges it: after the escalation time it reaches the city command_hall.
        command_hall.ingest.alert_rules = dataclasses.replace(command_hall.ingest.alert_rules, escalate_s=1.0)
        _until(command_hall, [pages["city"]], "() => document.documentElement.dataset.wallAlerts === '1'", 10)
        assert "已升级" in pages["city"].locator("#wall-alert").inner_text()
        assert _count(pages["there"]) == "0"

        # The district's shift lead acknowledges it on /screens (确认): gone from both walls, who
        # and when stored.
        lead = make_user(sessions, "shift_lead", region=code)
        with sessions() as s:
            alert_id = s.scalar(select(Alert.id).where(Alert.case_id == "alert-1"))
        assert alert_id is not None
        desk = browser.new_page(viewport={"width": 1920, "height": 1080})
        pages["desk"] = desk
        signin_page(desk, command_hall.url, lead, next_path="/screens")
        if not desk.url.endswith("/screens"):
            desk.goto(f"{command_hall.url}/screens")
        button = desk.locator(f"[data-alert='{alert_id}'] button")
        button.wait_for(timeout=15_000)
        button.click()
        desk.locator("#screens-a-msg").get_by_text("已确认预警").wait_for(timeout=5_000)
        gone = "() => document.documentElement.dataset.wallAlerts === '0'"
        _until(command_hall, [pages["here"], pages["city"]], gone, 6)
        with sessions() as s:
            row = s.get(Alert, alert_id)
            assert row is not None and row.acknowledged_by == lead.user_id and row.acknowledged_at is not None
        assert pages["here"].locator("#wall-alert").is_hidden()
        assert desk.locator(f"[data-alert='{alert_id}']").count() == 0  # and off the desk's list
        assert watch.errors == []
        print(f"alert on the district's wall {took:.2f} s after the report was published")
    finally:
        for page in pages.values():
            page.close()
