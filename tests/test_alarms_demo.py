"""The demo's simulated video/IoT platform (feeds/bridges/alarmdemo.py): its registry, alarms into
the inbox stream, the alarm bridge reading that stream, and the 核实 of alarm cases."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dashboard.rules.clock import utcnow
from dashboard.settings import Settings
from dashboard.store.models import AlarmType, Case, Device
from dashboard.store.reference import Reference
from feedkit import GRID_CODES
from feeds.bridges.alarmdemo import AlarmFeeder, ensure_demo_registry
from feeds.bridges.alarms import ALARMS, AlarmBridge, AlarmMapper
from feeds.bridges.inbox import StreamInbox
from feeds.ingest import Ingest
from feeds.keys import ALARM_INBOX_STREAM


def test_demo_platform_feeds_the_bridge_and_plays_the_review(
        settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis, feed_city: Reference,
        tmp_path: Path) -> None:
    assert ensure_demo_registry(sessions, feed_city, tmp_path / "city") == len(GRID_CODES)
    assert ensure_demo_registry(sessions, feed_city, tmp_path / "city") == 0  # once
    assert (tmp_path / "city" / "devices.csv").exists()
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(AlarmType)) == 5
        assert s.scalar(select(func.count()).select_from(Device)) == len(GRID_CODES)

    feeder = AlarmFeeder(redis_client, settings, sessions, speedup=1.0, per_hour=600, seed=7)
    feeder.next_at = feeder.started = feeder.next_at - timedelta(hours=1)  # an hour of alarms due at once
    sent = feeder.tick()
    assert sent > 200
    assert redis_client.xlen(settings.key(ALARM_INBOX_STREAM)) == sent

    bridge = AlarmBridge(ALARMS, AlarmMapper(redis_client, settings, sessions, feed_city), redis_client, settings)
    inbox = StreamInbox(redis_client, settings, ALARMS, settings.key(ALARM_INBOX_STREAM), block_ms=10)
    while bridge.run_once(inbox):
        pass
    assert bridge.stats.records == sent and bridge.stats.dead == 0
    ingest = Ingest(settings, sessions, redis_client, feed_city, consumer="t", block_ms=10)
    ingest.ensure_group()
    while ingest.step():
        pass
    with sessions() as s:
        cases = s.scalar(select(func.count()).select_from(Case).where(Case.source == "video_iot",
                                                                      Case.device_kind == "camera"))
        merged = s.scalar(select(func.count()).select_from(Case).where(Case.alarm_count > 1))
    assert cases and 0 < cases < sent and merged  # repeats merged into open cases

    reviewed = feeder.review(utcnow())  # the cases reported more than 6 minutes ago
    assert 0 < reviewed <= min(cases, 50)
    while ingest.step():
        pass
    with sessions() as s:
        stages = dict(s.execute(select(Case.stage, func.count()).group_by(Case.stage)).all())
    assert stages.get("filed", 0) + stages.get("voided", 0) == reviewed
    assert stages.get("voided", 0) > 0  # 误报 for 设备告警统计
