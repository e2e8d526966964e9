"""/explore's 设备告警统计 (docs/sources.md, "Alarms"): alarm cases made by the real bridge and
ingest, shown in Chromium at 1920×1080 and 3840×2160 (screenshots explore-devices-*.png)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from alarmkit import Rig, doc_example, drop
from browserkit import PageWatch, serve, shots_dir
from dashboard.rules.lifecycle import EventType
from dashboard.settings import Settings
from dashboard.store.devices import import_devices
from dashboard.store.reference import Reference
from feedkit import CST, GRID_POINTS
from feeds.contract import CaseEventMessage
from feeds.keys import CASE_STREAM

pytestmark = pytest.mark.usefixtures("fresh_scope_cache")

MORE_DEVICES = [(f"CAM-{i:03d}", "camera" if i % 3 else "sensor", name) for i, name in enumerate(
    ("", "", "滨江路口南向", "江东菜场东门", "学府路天桥", "东湖公园北门", "解放路地铁站")) if name]


@pytest.fixture
def alarm_city(settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis,
               feed_city: Reference, tmp_path: Path) -> Rig:
    """The docs' registry plus a few devices, a day of alarms bridged and ingested, a few cases
    voided after 核实 (false alarms)."""
    registry = tmp_path / "registry"
    registry.mkdir()
    points = list(GRID_POINTS.values())
    lines = doc_example("devices.csv").rstrip("\n").split("\n")
    for n, (device, kind, name) in enumerate(MORE_DEVICES):
        lon, lat = points[(n + 2) % len(points)]
        lines.append(f"{device},{kind},{name},{lon},{lat}")
    (registry / "devices.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (registry / "alarm-types.csv").write_text(doc_example("alarm-types.csv"), encoding="utf-8")
    import_devices(sessions, feed_city, registry / "devices.csv", registry / "alarm-types.csv")
    rig = Rig(settings, sessions, redis_client, feed_city, tmp_path)
    t0 = datetime.now(CST).replace(microsecond=0) - timedelta(hours=20)
    devices = [("CAM-001", "stall")] * 6 + [("CAM-001", "garbage")] * 3 + [("SEN-001", "manhole")] * 2 + [
        (d, "manhole" if k == "sensor" else ("garbage" if i % 2 else "stall"))
        for i, (d, k, _) in enumerate(MORE_DEVICES) for _ in range(i + 1)]
    records = []
    for i, (device, type_) in enumerate(devices):
        records.append(json.dumps({"alarm_id": f"E-{i}", "device_id": device, "alarm_type": type_,
                                   "time": (t0 + timedelta(minutes=17 * i)).isoformat()}))
    drop(tmp_path / "inbox", "day.jsonl", "\n".join(records) + "\n")
    rig.run()
    rig.apply()
    with sessions() as s:
        from sqlalchemy import select

        from dashboard.store.models import Case
        cases = s.execute(select(Case.case_id, Case.reported_at).order_by(Case.case_id)).all()
    for n, (case_id, reported) in enumerate(cases[::3]):  # a third 核实, half of those 作废
        assert reported is not None
        rig.client.xadd(settings.key(CASE_STREAM), CaseEventMessage(
            event_id=f"v-{case_id}", case_id=case_id, type=EventType.VERIFIED,
            occurred_at=reported + timedelta(minutes=3), actor="S01").to_entry())
        if n % 2 == 0:
            rig.client.xadd(settings.key(CASE_STREAM), CaseEventMessage(
                event_id=f"x-{case_id}", case_id=case_id, type=EventType.VOIDED,
                occurred_at=reported + timedelta(minutes=9), actor="S01").to_entry())
    rig.apply()
    return rig


@pytest.fixture
def alarm_server(settings: Settings, engine: Any, alarm_city: Rig) -> Iterator[str]:
    import app as appmod

    application = appmod.create_app(settings)
    try:
        with serve(application.server) as url:
            yield url
    finally:
        application.server.extensions[appmod.EXTENSION_KEY].close()


def test_the_service_hides_the_box_without_alarm_cases(settings: Settings, engine: Any,
                                                       feed_city: Reference) -> None:
    """No alarm case in the selection: the box stays hidden (as 待定位 does)."""
    import app as appmod
    from callbacks.explore import Viewer
    from dashboard.store.scope import CITY

    application = appmod.create_app(settings)
    try:
        service = application.server.extensions[appmod.EXTENSION_KEY].services.explore
        with service.sessions() as session:
            lead = Viewer("shift_lead", "值班长", CITY)
            assert service.devices(session, lead, "?window=all") == ([], "", "explore-devices")
            assert service.devices(session, lead, "?window=bogus")[2] == "explore-devices"
    finally:
        application.server.extensions[appmod.EXTENSION_KEY].close()


@pytest.mark.browser
def test_device_alarm_panel_in_chromium(browser: Any, alarm_server: str, sessions: sessionmaker[Session],
                                        alarm_city: Rig, tmp_path: Any) -> None:
    """设备告警统计 lists the devices with most alarms first and every type, with 误报率; follows the
    filters (a 来源 other than 视频/物联网 hides it); the same at 4K."""
    from playwright.sync_api import expect

    from authkit import make_user, signin_page

    who = make_user(sessions, "shift_lead")
    for width, height in ((1920, 1080), (3840, 2160)):
        context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1,
                                      locale="zh-CN")
        page = context.new_page()
        watch = PageWatch(page)
        signin_page(page, alarm_server, who)
        page.goto(alarm_server + "/explore?window=all")
        box = page.locator("#explore-devices-box")
        expect(box).to_have_class(re.compile("is-on"), timeout=20_000)
        expect(box).to_contain_text("设备告警统计")
        expect(box).to_contain_text("误报率")
        first = box.locator("tbody tr").first
        expect(first).to_contain_text("CAM-001")
        expect(first).to_contain_text("中山路与解放路口球机")
        expect(first.locator("td").first).to_have_text("9")  # 6 stall + 3 garbage alarms
        expect(box.locator("table").nth(1)).to_contain_text("占道经营")
        note = page.locator("#explore-devices-note")
        expect(note).to_contain_text("台设备")
        box.scroll_into_view_if_needed()
        page.screenshot(path=str(shots_dir(tmp_path) / f"explore-devices-{width}x{height}.png"))
        if width == 1920:
            page.goto(alarm_server + "/explore?window=all&source=supervisor")
            expect(page.locator("#explore-kpi-total")).to_have_text("0", timeout=20_000)
            expect(box).not_to_have_class(re.compile("is-on"), timeout=10_000)
        assert watch.errors == [] and watch.dialogs == []
        context.close()
