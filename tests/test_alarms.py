"""Video/IoT alarms (issue 16): the device registry, the alarm bridge, merging, clearances, dead
letters, idempotent re-runs, and the docs' worked example end to end (alarm → stream → ingest →
SQL → /explore's 设备告警统计 and the wall's figures). docs/sources.md, "Alarms".

Real parts: the suite's database (SQLite or PostgreSQL) and Redis; the ingest in-process.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from alarmkit import DOC_DATE, Rig, alarm, doc_example, drop, example_day, write_registry
from dashboard.figures.devicealarms import device_alarms
from dashboard.figures.selection import Selection
from dashboard.rules.lifecycle import EventType
from dashboard.settings import Settings
from dashboard.store import queries
from dashboard.store.db import transaction
from dashboard.store.devices import DevicesError, import_devices
from dashboard.store.models import AlarmType, Case, CaseEvent, Device
from dashboard.store.reference import Reference, timing_for
from dashboard.store.scope import CITY
from feedkit import CST, GRID_CODES, dead_letters
from feeds.bridges.alarms import ALARMS
from feeds.bridges.bridge import retry_bridge_letters
from feeds.contract import CaseEventMessage
from feeds.deadletters import DeadLetters
from feeds.keys import CASE_STREAM


@pytest.fixture
def rig(settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis, feed_city: Reference,
        tmp_path: Path) -> Rig:
    registry = write_registry(tmp_path / "registry")
    import_devices(sessions, feed_city, registry, registry.parent / "alarm-types.csv")
    return Rig(settings, sessions, redis_client, feed_city, tmp_path)


# -- the registry -------------------------------------------------------------------------------
def test_import_devices_locates_each_device_in_its_grid(rig: Rig) -> None:
    """The docs' registry: two devices in their grids, three alarm types with 小类 and urgency."""
    with rig.sessions() as s:
        devices = {d.device_id: d for d in s.scalars(select(Device))}
        types = {t.code: t for t in s.scalars(select(AlarmType))}
        grid_codes = {d.device_id: rig.ref.grid_code(d.grid_id) for d in devices.values()}
    assert grid_codes == {"CAM-001": GRID_CODES[0], "SEN-001": GRID_CODES[1]}
    assert devices["CAM-001"].kind == "camera" and devices["SEN-001"].kind == "sensor"
    assert (types["manhole"].kind, types["manhole"].class_code, types["manhole"].urgent) == ("component", "01002", True)
    assert types["stall"].urgent is False


def test_import_devices_geojson_and_all_or_nothing(rig: Rig, tmp_path: Path) -> None:
    """GeoJSON points import too; a file with problems lists every one and changes nothing."""
    types = tmp_path / "registry" / "alarm-types.csv"
    geo = tmp_path / "devices.geojson"
    geo.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [118.7023, 31.9985]},
         "properties": {"device_id": "CAM-100", "kind": "camera", "name": "北门"}}]}), encoding="utf-8")
    assert import_devices(rig.sessions, rig.ref, geo, types) == (1, 3)
    bad = tmp_path / "bad.csv"
    bad.write_text("device_id,kind,name,lon,lat\nX1,drone,a,118.7003,31.9997\nX2,camera,b,100,30\n"
                   "X3,camera,c,abc,31.9\nX4,sensor,d,118.7003,31.9997\n", encoding="utf-8")
    bad_types = tmp_path / "bad-types.csv"
    bad_types.write_text("alarm_type,name,kind,class_code,urgent\nfoo,x,event,99999,no\nbar,y,event,06010,maybe\n",
                         encoding="utf-8")
    with pytest.raises(DevicesError) as exc:
        import_devices(rig.sessions, rig.ref, bad, bad_types)
    text = "\n".join(exc.value.problems)
    assert len(exc.value.problems) == 5, text
    assert "drone" in text and "no unit grid" in text and "lon/lat" in text and "99999" in text and "maybe" in text
    with rig.sessions() as s:
        assert s.scalars(select(Device.device_id)).all() == ["CAM-100"]  # the earlier import stands


# -- the worked example -------------------------------------------------------------------------
def test_worked_example(rig: Rig) -> None:
    """docs/sources.md's example end to end: alarm → stream → ingest → SQL → /explore and the wall."""
    day = example_day()
    drop(rig.folder / "inbox", "alarms.jsonl", doc_example("alarms.jsonl").replace(DOC_DATE, day))
    assert rig.run() == 9
    assert (rig.bridge.stats.events, rig.bridge.stats.dead) == (5, 4)
    rig.apply()

    first = rig.case("iot:A-1001")
    assert first is not None
    assert (first.source, first.kind, first.class_code, rig.ref.grid_code(first.grid_id or 0)) == (
        "video_iot", "event", "09006", GRID_CODES[0])
    assert (first.device_id, first.device_kind, first.alarm_type, first.alarm_count) == (
        "CAM-001", "camera", "stall", 2)
    assert first.urgency == "normal" and first.stage == "reported"  # the clearance does not close it
    assert first.alarm_cleared_at == datetime.fromisoformat(f"{day}T09:20:00+08:00")
    described = first.description or ""
    assert "https://vms.example/snap/A-1001.jpg" in described and "严重程度 2" in described
    sensor = rig.case("iot:A-1003")
    assert sensor is not None
    assert (sensor.kind, sensor.class_code, sensor.urgency, sensor.device_kind) == (
        "component", "01002", "urgent", "sensor")
    assert rig.ref.grid_code(sensor.grid_id or 0) == GRID_CODES[1]
    later = rig.case("iot:A-1005")
    assert later is not None and later.alarm_count == 1
    with rig.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 3
        assert s.scalar(select(func.count()).select_from(CaseEvent)) == 5
        types = dict(s.execute(select(CaseEvent.event_id, CaseEvent.type)).all())
    assert types == {"iot:A-1001": "reported", "iot:A-1002": "updated", "iot:A-1003": "reported",
                     "iot:A-1004": "updated", "iot:A-1005": "reported"}

    letters = dead_letters(rig.client, rig.settings)
    assert sorted(d["reason_code"] for d in letters) == [
        "bad_time", "outside_city", "unknown_alarm_type", "unknown_device"]
    assert all(d.get("bridge") == ALARMS for d in letters)

    # /explore's 设备告警统计 (the whole city, all time) and the wall's figures.
    with rig.sessions() as s:
        timing = timing_for(rig.settings, s)
        stats = device_alarms(s, CITY, timing, datetime.now(CST), Selection(window="all"))
        urgent_open = s.scalar(select(func.count()).select_from(Case).where(Case.urgency == "urgent",
                                                                              Case.closed_at.is_(None)))
        by_stage = {c.stage.value: c.count for c in queries.open_by_stage(s)}
        grids = {g.code: g.open_cases for g in queries.top_grids(s)}
    assert [(d.key, d.name, d.kind, d.alarms, d.cases) for d in stats.devices] == [
        ("CAM-001", "中山路与解放路口球机", "摄像头", 3, 2), ("SEN-001", "解放路污水井盖传感器", "传感器", 1, 1)]
    assert [(t.key, t.name, t.alarms, t.cases) for t in stats.types] == [("stall", "占道经营", 3, 2),
                                                                         ("manhole", "井盖位移", 1, 1)]
    assert (stats.alarms, stats.cases, stats.device_total) == (4, 3, 2)
    assert urgent_open == 1 and by_stage.get("reported") == 3
    assert grids == {GRID_CODES[0]: 2, GRID_CODES[1]: 1}


def test_rerun_of_the_same_file_changes_nothing(rig: Rig) -> None:
    """The same file dropped again: the same events with the same ids (the memo), absorbed by the
    ingest; no new case, no changed row, no new dead letter of a mapped alarm."""
    day = example_day()
    text = doc_example("alarms.jsonl").replace(DOC_DATE, day)
    drop(rig.folder / "inbox", "alarms.jsonl", text)
    rig.run()
    rig.apply()
    before = {c: _row(rig.case(c)) for c in ("iot:A-1001", "iot:A-1003", "iot:A-1005")}
    first_events = rig.stream_events()
    assert (rig.folder / "inbox" / "done" / "alarms.jsonl").exists()
    drop(rig.folder / "inbox", "alarms-again.jsonl", text)
    rig.run()
    rig.apply()
    again = rig.stream_events()[len(first_events):]
    assert again == first_events  # the same five events, byte for byte
    assert {c: _row(rig.case(c)) for c in before} == before
    with rig.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 3
        assert s.scalar(select(func.count()).select_from(CaseEvent)) == 5
    assert rig.ingest.stats.duplicates == 5


def _row(case: Case | None) -> tuple[Any, ...]:
    assert case is not None
    return (case.stage, case.alarm_count, case.alarm_cleared_at, case.device_id, case.last_event_at, case.max_key)


# -- merging --------------------------------------------------------------------------------------
def test_merge_by_grid_and_class_and_not_into_an_ended_case(rig: Rig, tmp_path: Path) -> None:
    """Another device's alarm of the same grid and 小类 within the window merges; once the case is
    作废 in SQL the next alarm opens a new case; a window of 0 never merges."""
    t0 = datetime.now(CST).replace(microsecond=0) - timedelta(hours=3)
    with transaction(rig.sessions) as s:  # a second camera in CAM-001's grid
        s.add(Device(device_id="CAM-002", kind="camera", name="对面", lon=118.7004, lat=31.9996,
                     grid_id=rig.ref.grid_ids[GRID_CODES[0]]))
    rig.mapper._reload()
    drop(rig.folder / "inbox", "a.jsonl", "\n".join([
        alarm("B-1", t0), alarm("B-2", t0 + timedelta(minutes=5), device="CAM-002")]))
    rig.run()
    rig.apply()
    case = rig.case("iot:B-1")
    assert case is not None and case.alarm_count == 2 and rig.case("iot:B-2") is None
    with transaction(rig.sessions) as s:  # 核实 found nothing: 作废 (as the loop would)
        s.execute(update(Case).where(Case.case_id == "iot:B-1").values(stage="voided"))
    drop(rig.folder / "inbox", "b.jsonl", alarm("B-3", t0 + timedelta(minutes=10)))
    rig.run()
    rig.apply()
    assert rig.case("iot:B-3") is not None

    never = Rig(rig.settings.model_copy(update={"alarm_merge_minutes": 0,
                                                "redis_prefix": rig.settings.redis_prefix + "zero:"}),
                rig.sessions, rig.client, rig.ref, tmp_path / "zero")
    drop(never.folder / "inbox", "c.jsonl", "\n".join([alarm("C-1", t0), alarm("C-2", t0 + timedelta(minutes=1))]))
    never.run()
    assert [e["type"] for e in never.stream_events()] == ["reported", "reported"]


def test_false_alarm_share(rig: Rig) -> None:
    """误报率: cases voided after a 核实, over the cases verified."""
    t0 = datetime.now(CST).replace(microsecond=0) - timedelta(hours=5)
    drop(rig.folder / "inbox", "a.jsonl", "\n".join([
        alarm("F-1", t0), alarm("F-2", t0 + timedelta(hours=1)), alarm("F-3", t0 + timedelta(hours=2))]))
    rig.run()
    steps = [("F-1", EventType.VERIFIED, 5), ("F-1", EventType.VOIDED, 6),
             ("F-2", EventType.VERIFIED, 65), ("F-3", EventType.VOIDED, 125)]  # F-3: voided without 核实
    for i, (aid, type_, minutes) in enumerate(steps):
        rig.client.xadd(rig.settings.key(CASE_STREAM), CaseEventMessage(
            event_id=f"loop-{i}", case_id=f"iot:{aid}", type=type_, occurred_at=t0 + timedelta(minutes=minutes),
            actor="S01").to_entry())
    rig.apply()
    with rig.sessions() as s:
        stats = device_alarms(s, CITY, timing_for(rig.settings, s), datetime.now(CST), Selection(window="all"))
    (cam,) = stats.devices
    assert (cam.alarms, cam.cases, cam.verified, cam.false_alarms) == (3, 3, 2, 1)
    assert cam.false_rate == 0.5


# -- dead letters -------------------------------------------------------------------------------------
HOSTILE = [
    ('{"device_id": "CAM-001", "alarm_type": "stall", "time": "2026-12-01T09:00:00+08:00"}', "bad_record"),
    ('not json at all', "bad_record"),
    ('[1, 2, 3]', "bad_record"),
    ('{"alarm_id": "H-1 ; DROP TABLE cases", "device_id": "CAM-001", "alarm_type": "stall", '
     '"time": "2026-12-01T09:00:00+08:00"}', "bad_record"),
    ('{"alarm_id": "' + "x" * 200 + '", "device_id": "CAM-001", "alarm_type": "stall", '
     '"time": "2026-12-01T09:00:00+08:00"}', "bad_record"),
    ('{"alarm_id": "H-2", "device_id": "CAM-001", "alarm_type": "stall", "time": 1764550800}', "bad_time"),
    ('{"alarm_id": "H-3", "device_id": "CAM-001", "alarm_type": "stall", "time": "2026-12-01 09:00"}', "bad_time"),
    ('{"alarm_id": "H-4", "device_id": "CAM-001", "alarm_type": "stall", "time": "2026-12-01T09:00:00+08:00", '
     '"image_url": "javascript:alert(1)"}', "bad_record"),
    ('{"alarm_id": "H-5", "device_id": "CAM-001", "alarm_type": "stall", "time": "2026-12-01T09:00:00+08:00", '
     '"lon": 118.7}', "bad_record"),
    ('{"alarm_id": "H-6", "device_id": "CAM-001", "alarm_type": "stall", "time": "2026-12-01T09:00:00+08:00", '
     '"lon": "NaN", "lat": 31.9}', "bad_record"),
    ('{"alarm_id": "H-7", "device_id": "CAM-001", "alarm_type": "stall", "time": "2026-12-01T09:00:00+08:00", '
     '"lon": 118.7003, "lat": 95}', "outside_city"),
    ('{"alarm_id": "H-8", "device_id": "CAM-001", "alarm_type": "stall", "time": "2026-12-01T09:00:00+08:00", '
     '"cleared": "perhaps"}', "bad_record"),
    ('{"alarm_id": "H-9", "device_id": "CAM-001", "alarm_type": "stall", "time": "2026-12-01T09:00:00+08:00", '
     '"severity": 9}', "bad_record"),
    ('{"alarm_id": "H-10", "device_id": "SEN-001", "alarm_type": "manhole", "time": "2026-12-01T09:00:00+08:00", '
     '"cleared": true}', "nothing_to_clear"),
    ('{"alarm_id": "H-11", "device_id": {"$ne": null}, "alarm_type": "stall", "time": "2026-12-01T09:00:00+08:00"}',
     "bad_record"),
    ('{"alarm_id": "H-12", "device_id": "CAM-\\u0000", "alarm_type": "stall", "time": "2026-12-01T09:00:00+08:00"}',
     "bad_record"),
    ('{"alarm_id": "H-13", "device_id": "CAM-001", "alarm_type": "stall", "time": "0001-01-01T00:00:00+00:00"}',
     "bad_time"),
]


def test_hostile_and_unmappable_input_is_dead_lettered_with_its_reason(rig: Rig) -> None:
    """Each hostile or unmappable record is one dead letter with its reason code and the record;
    nothing reaches the case stream, and the good record after them is published."""
    good = alarm("OK-1", datetime.now(CST).replace(microsecond=0) - timedelta(hours=1))
    drop(rig.folder / "inbox", "hostile.jsonl", "\n".join([line for line, _ in HOSTILE] + [good]) + "\n")
    rig.run()
    letters = dead_letters(rig.client, rig.settings)
    by_line = {int(d["entry_id"].rsplit(":", 1)[1]): d for d in letters}
    assert {n: d["reason_code"] for n, d in by_line.items()} == {i + 1: code for i, (_, code) in enumerate(HOSTILE)}
    assert all(d["reason"] for d in letters)
    assert [e["event_id"] for e in rig.stream_events()] == ["iot:OK-1"]
    rig.apply()
    with rig.sessions() as s:
        assert s.scalars(select(Case.case_id)).all() == ["iot:OK-1"]


def test_retry_maps_an_unknown_device_again_after_import(rig: Rig, tmp_path: Path) -> None:
    """``gridhall deadletters retry``'s path: the record of an unknown device maps once it is imported."""
    at = datetime.now(CST).replace(microsecond=0) - timedelta(hours=1)
    drop(rig.folder / "inbox", "a.jsonl", alarm("R-1", at, device="CAM-777"))
    rig.run()
    letters = DeadLetters(rig.client, rig.settings).newest()
    assert [(letter.code, letter.bridge) for letter in letters] == [("unknown_device", ALARMS)]
    registry = tmp_path / "registry"
    (registry / "devices.csv").write_text(doc_example("devices.csv") + "CAM-777,camera,新球机,118.7023,31.9985\n",
                                          encoding="utf-8")
    import_devices(rig.sessions, rig.ref, registry / "devices.csv", registry / "alarm-types.csv")
    result = retry_bridge_letters(rig.client, rig.settings, letters)
    assert [n for _, n in result.published] == [1]
    rig.apply()
    case = rig.case("iot:R-1")
    assert case is not None and case.device_id == "CAM-777" and rig.ref.grid_code(case.grid_id or 0) == GRID_CODES[5]


def test_csv_inbox(rig: Rig) -> None:
    """The same alarms as CSV rows (strings: numbers and true/false read as such)."""
    at = (datetime.now(CST).replace(microsecond=0) - timedelta(hours=2)).isoformat()
    drop(rig.folder / "inbox", "a.csv", "alarm_id,device_id,alarm_type,time,lon,lat,severity,cleared,image_url\n"
         f"S-1,CAM-001,garbage,{at},118.7023,31.9985,3,false,\n"
         f"S-2,CAM-001,garbage,{at},,,,true,\n")
    rig.run()
    rig.apply()
    case = rig.case("iot:S-1")
    assert case is not None and rig.ref.grid_code(case.grid_id or 0) == GRID_CODES[5]
    assert case.alarm_cleared_at is not None and case.class_code == "06010"


def test_the_bridge_command_once(rig: Rig, tmp_path: Path) -> None:
    """``gridhall bridge alarms --dir … --once`` in-process (the CLI wiring), and ``import devices``."""
    from typer.testing import CliRunner

    import cli
    from feedkit import ingest_env

    env = ingest_env(rig.settings)
    runner = CliRunner()
    result = runner.invoke(cli.app, ["import", "devices", str(tmp_path / "registry" / "devices.csv")], env=env)
    assert result.exit_code == 0, result.output
    assert "2 devices, 3 alarm types" in result.output
    drop(tmp_path / "cli-inbox", "a.jsonl", alarm("K-1", datetime.now(CST).replace(microsecond=0) - timedelta(hours=1)))
    result = runner.invoke(cli.app, ["bridge", "alarms", "--dir", str(tmp_path / "cli-inbox"), "--once",
                                     "--settle", "0"], env=env)
    assert result.exit_code == 0, result.output
    assert "events published 1" in result.output
    assert [e["event_id"] for e in rig.stream_events()] == ["iot:K-1"]
