"""The demo's simulated video/IoT platform (``gridhall demo``; docs/sources.md, "Alarms").

* :func:`ensure_demo_registry` writes a device registry for the demo city — cameras and sensors
  at the centres of a fixed choice of grids, and the alarm types below — into the demo city's
  folder and imports it (once: a registry already there is kept).
* :class:`AlarmFeeder` is the platform: ``tick()`` XADDs the alarms due since the last tick to
  the alarm bridge's inbox stream (often a repeat of the previous device's alarm, so merging is
  seen; now and then a clearance), and plays the 核实 of alarm cases waiting in 上报: most are
  filed, some voided as false alarms (误报), so 设备告警统计 has something to show.

The alarm bridge (``gridhall bridge alarms --simulate``) calls ``tick()`` between its passes.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dashboard.rules.clock import utcnow
from dashboard.rules.lifecycle import EventType, Stage
from dashboard.settings import Settings
from dashboard.store.devices import import_devices
from dashboard.store.models import Case, Device, Grid
from dashboard.store.reference import Reference

from ..contract import CaseEventMessage
from ..keys import ALARM_INBOX_STREAM, CASE_STREAM

log = logging.getLogger(__name__)

DEMO_TYPES = """alarm_type,name,kind,class_code,urgent
stall,占道经营,event,09006,no
parking,机动车乱停放,event,09009,no
garbage,暴露垃圾,event,06010,no
clutter,乱堆杂物,event,06036,no
manhole,井盖位移,component,01002,yes
"""
CAMERA_TYPES = ("stall", "parking", "garbage", "clutter")
SENSOR_TYPES = ("manhole",)
CAMERA_NAMES = ("路口球机", "沿街枪机", "广场全景", "菜场出入口", "学校门口", "地铁口")
SENSOR_NAMES = ("污水井盖传感器", "雨水井盖传感器")
N_CAMERAS, N_SENSORS = 16, 8
ALARMS_PER_HOUR = 30.0  # at speedup 1
REPEAT_SHARE = 0.4  # the previous device's alarm again (merged into its case)
CLEAR_SHARE = 0.08
FALSE_ALARM_SHARE = 0.3  # of the alarm cases verified: voided (误报)
VERIFY_AFTER = timedelta(minutes=6)  # at speedup 1


def ensure_demo_registry(sessions: sessionmaker[Session], ref: Reference, folder: Path, seed: int = 16) -> int:
    """Import the demo's devices and alarm types unless a registry exists; the devices imported."""
    with sessions() as session:
        if session.scalar(select(func.count()).select_from(Device)):
            return 0
        grids = session.execute(select(Grid.code, Grid.centroid_lon, Grid.centroid_lat).order_by(Grid.code)).all()
    if not grids:
        return 0
    rng = random.Random(seed)
    chosen = rng.sample(grids, min(len(grids), N_CAMERAS + N_SENSORS))
    lines = ["device_id,kind,name,lon,lat"]
    for i, (code, lon, lat) in enumerate(chosen):
        camera = i < N_CAMERAS
        device = f"{'CAM' if camera else 'SEN'}-{i + 1:03d}"
        name = f"{code[-6:]} {rng.choice(CAMERA_NAMES if camera else SENSOR_NAMES)}"
        lines.append(f"{device},{'camera' if camera else 'sensor'},{name},{lon:.7f},{lat:.7f}")
    folder.mkdir(parents=True, exist_ok=True)
    devices, types = folder / "devices.csv", folder / "alarm-types.csv"
    devices.write_text("\n".join(lines) + "\n", encoding="utf-8")
    types.write_text(DEMO_TYPES, encoding="utf-8")
    return import_devices(sessions, ref, devices, types)[0]


class AlarmFeeder:
    """The simulated platform: alarms into the inbox stream, 核实 of the alarm cases."""

    def __init__(self, client: redis.Redis, settings: Settings, sessions: sessionmaker[Session], *,
                 speedup: float = 1.0, per_hour: float = ALARMS_PER_HOUR, seed: int | None = None) -> None:
        self.client = client
        self.settings = settings
        self.sessions = sessions
        self.speedup = speedup
        self.per_hour = per_hour * speedup
        self.rng = random.Random(seed)
        self.inbox = settings.key(ALARM_INBOX_STREAM)
        self.stream = settings.key(CASE_STREAM)
        with sessions() as session:
            self.devices = [(d, k) for d, k in session.execute(select(Device.device_id, Device.kind)
                                                                .order_by(Device.device_id))]
        self.last: tuple[str, str] | None = None
        self.started = self.next_at = self.next_review = utcnow()
        self.serial = 0

    def tick(self) -> int:
        """Send the alarms due by now and review the waiting alarm cases; the alarms sent."""
        now = utcnow()
        sent = 0
        while self.devices and self.next_at <= now:
            self._send(self.next_at)
            sent += 1
            self.next_at += timedelta(hours=self.rng.expovariate(self.per_hour))
        if now >= self.next_review:
            self.next_review = now + timedelta(seconds=20)
            self.review(now)
        return sent

    def _send(self, at: datetime) -> None:
        self.serial += 1
        alarm_id = f"D{int(at.timestamp())}-{self.serial}"
        cleared = False
        if self.last is not None and self.rng.random() < REPEAT_SHARE:
            device, type_ = self.last
            cleared = self.rng.random() < CLEAR_SHARE / REPEAT_SHARE
        else:
            device, kind = self.rng.choice(self.devices)
            type_ = self.rng.choice(CAMERA_TYPES if kind == "camera" else SENSOR_TYPES)
            self.last = (device, type_)
        record = {"alarm_id": alarm_id, "device_id": device, "alarm_type": type_,
                  "time": at.astimezone(self.settings.tz).isoformat(timespec="seconds"),
                  "severity": self.rng.randint(1, 5), "cleared": cleared}
        if device.startswith("CAM"):
            record["image_url"] = f"https://vms.demo.invalid/snap/{alarm_id}.jpg"
        self.client.xadd(self.inbox, {"record": orjson.dumps(record).decode()})

    def review(self, now: datetime) -> int:
        """核实 the alarm cases waiting in 上报 long enough: filed, or voided as a false alarm."""
        due = now - VERIFY_AFTER / self.speedup
        with self.sessions() as session:
            waiting = session.execute(select(Case.case_id, Case.reported_at).where(
                Case.device_id.is_not(None), Case.stage == Stage.REPORTED.value, Case.reported_at <= due,
                # Alarm cases of earlier runs are the simulator's (it resumes every open case at start).
                Case.reported_at >= self.started)
                .order_by(Case.reported_at).limit(50)).all()
        pipe = self.client.pipeline(transaction=False)
        for case_id, _reported in waiting:
            false_alarm = self.rng.random() < FALSE_ALARM_SHARE
            steps = [(EventType.VERIFIED, now), (EventType.VOIDED if false_alarm else EventType.FILED,
                                                 now + timedelta(seconds=1))]
            for type_, at in steps:
                pipe.xadd(self.stream, CaseEventMessage(
                    event_id=f"iotdemo:{case_id}:{type_.value}", case_id=case_id, type=type_, occurred_at=at,
                    actor="demo-supervisor", description="核实：误报" if type_ is EventType.VOIDED else None,
                ).to_entry())
        pipe.execute()
        return len(waiting)
