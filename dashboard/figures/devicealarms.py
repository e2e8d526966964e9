"""设备告警统计: video/IoT alarm counters per device and per alarm type (/explore; docs/sources.md).

Over the alarm cases (``cases.device_id`` set) of the page's selection — scope, place, window and
filters, as every /explore figure: 告警数 (the sum of ``alarm_count``: merged repeats included),
案件数, 核实后作废 (cases voided after a 核实: a false alarm) and 误报率 (核实后作废 ÷ cases verified).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from dashboard.figures.explore import filter_condition
from dashboard.figures.selection import Selection
from dashboard.rules.deadlines import Timing
from dashboard.rules.lifecycle import Stage
from dashboard.rules.vocab import DeviceKind
from dashboard.store.models import AlarmType, Case, Device
from dashboard.store.scope import Scope

TOP_DEVICES = 10


@dataclass(frozen=True)
class AlarmCounts:
    """One row: a device or an alarm type."""

    key: str  # device id / alarm type code
    name: str  # device name / alarm type name ("" when the registry no longer has it)
    kind: str  # 摄像头 / 传感器 for a device, "" for a type
    alarms: int
    cases: int
    verified: int
    false_alarms: int  # voided after a 核实

    @property
    def false_rate(self) -> float | None:
        return self.false_alarms / self.verified if self.verified else None


@dataclass(frozen=True)
class DeviceAlarms:
    devices: tuple[AlarmCounts, ...]  # most alarms first, at most TOP_DEVICES
    types: tuple[AlarmCounts, ...]  # most alarms first
    device_total: int  # devices with an alarm case in the selection
    alarms: int
    cases: int


def device_alarms(session: Session, scope: Scope, timing: Timing, now: datetime, selection: Selection,
                  limit: int = TOP_DEVICES) -> DeviceAlarms:
    """The counters of the selection's alarm cases (raises OutOfScope like the other figures)."""
    where = and_(filter_condition(session, scope, timing, now, selection), Case.device_id.is_not(None))
    verified = Case.verified_at.is_not(None)
    measures = (
        func.coalesce(func.sum(func.coalesce(Case.alarm_count, 1)), 0),
        func.count(),
        func.count(case((verified, 1))),
        func.count(case((and_(verified, Case.stage == Stage.VOIDED.value), 1))),
    )
    devices = session.execute(
        select(Case.device_id, func.max(Case.device_kind), *measures).where(where).group_by(Case.device_id)).all()
    types = session.execute(
        select(Case.alarm_type, *measures).where(where).group_by(Case.alarm_type)).all()
    names = dict(session.execute(select(Device.device_id, Device.name)
                                 .where(Device.device_id.in_([r[0] for r in devices]))).all()) if devices else {}
    type_names = dict(session.execute(select(AlarmType.code, AlarmType.name)).all()) if types else {}
    kinds = DeviceKind.labels()
    device_rows = sorted((AlarmCounts(r[0] or "", names.get(r[0] or "", ""), kinds.get(r[1] or "", ""), *_ints(r[2:]))
                          for r in devices), key=lambda a: (-a.alarms, -a.cases, a.key))
    type_rows = sorted((AlarmCounts(r[0] or "", type_names.get(r[0] or "", ""), "", *_ints(r[1:]))
                        for r in types), key=lambda a: (-a.alarms, -a.cases, a.key))
    return DeviceAlarms(tuple(device_rows[:max(0, limit)]), tuple(type_rows), len(device_rows),
                        sum(a.alarms for a in device_rows), sum(a.cases for a in device_rows))


def _ints(values: Any) -> tuple[int, int, int, int]:
    a, b, c, d = (int(v or 0) for v in values)
    return a, b, c, d
