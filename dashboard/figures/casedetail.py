"""One case in full for the screens and the API: its timeline, each stage's deadline and where
its clock stands now — or nothing, when the case is outside the caller's scope or unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.figures.overdue import class_names
from dashboard.figures.scoped import CALENDAR_UNIT, OPEN_VALUES, scoped
from dashboard.rules.deadlines import CLOCK_LABELS, CaseTimer, Timing, evaluate_arrays, to_utc64
from dashboard.rules.lifecycle import CaseState, EventType, LifecycleEvent, Stage, fold_into
from dashboard.rules.limits import STAGES as CLOCK_STAGES
from dashboard.rules.text import is_case_id
from dashboard.store.alerts import AlertEntry, case_alert_entries
from dashboard.store.models import Case, CaseEvent
from dashboard.store.scope import Scope


@dataclass(frozen=True)
class TimelineEvent:
    event_id: str
    type: str
    label: str
    occurred_at: datetime
    received_at: datetime
    actor: str | None
    source: str | None
    problem: str | None  # why the lifecycle skipped it (None: applied)


@dataclass(frozen=True)
class StageDeadline:
    """One clock the case ran (核实 … 结案): its start, limit and deadline, and how it ended."""

    stage: str
    label: str
    started_at: datetime
    deadline_at: datetime
    deadline_source: str
    limit: float
    limit_unit: str
    running: bool
    on_time: bool | None  # None while it runs, or when no finishing event judged it


@dataclass(frozen=True)
class CaseDetail:
    case_id: str
    number: str | None
    source: str | None
    kind: str | None
    major_name: str
    minor_name: str
    class_code: str | None
    description: str | None
    address: str | None
    lon: float | None
    lat: float | None
    urgency: str
    grid_code: str | None
    community: str
    street: str
    district: str
    unit_code: str | None
    unit_name: str | None
    stage: str | None
    stage_label: str | None
    reported_at: datetime | None
    filed_at: datetime | None
    dispatched_at: datetime | None
    handled_at: datetime | None
    closed_at: datetime | None
    rework_count: int
    extension_count: int
    clock_stage: str | None
    clock_label: str | None
    deadline_at: datetime | None
    overdue: bool
    due_soon: bool
    remaining_minutes: float | None
    on_time: Mapping[str, bool | None]  # on_time_verify … on_time_close as stored
    deadlines: tuple[StageDeadline, ...]
    events: tuple[TimelineEvent, ...]
    # The steps of the case's alerts (预警, 升级, 确认, 解除) in time order: the timeline shows them
    # among the events; a shift handover report lists them (dashboard/store/alerts.py).
    alerts: tuple[AlertEntry, ...] = ()


def _stage_deadlines(case_id: str, events: list[CaseEvent], timing: Timing) -> tuple[StageDeadline, ...]:
    """Replay the history to list each clock's deadline (best effort: () when it cannot)."""
    try:
        history = [LifecycleEvent(e.event_id, e.case_id, EventType(e.type), e.occurred_at, e.payload or {})
                   for e in events]
    except ValueError:
        return ()
    timer = CaseTimer(CaseState(case_id=case_id), timing)
    seen: list[Any] = []  # clocks in order; a moved deadline replaces the same clock's entry

    def apply(event: LifecycleEvent) -> None:
        timer.apply(event)
        clock = timer.clock()
        if clock is None:
            return
        if seen and seen[-1].stage == clock.stage and seen[-1].started_at == clock.started_at:
            seen[-1] = clock
        else:
            seen.append(clock)

    try:
        fold_into(apply, history)
    except Exception:  # a deadline outside the working calendar's table, a missing limit …
        return ()
    running = timer.clock()
    out = []
    for i, clock in enumerate(seen):
        is_running = (running is not None and i == len(seen) - 1 and clock.stage == running.stage
                      and clock.started_at == running.started_at)
        later_same = any(c.stage == clock.stage for c in seen[i + 1:])
        on_time = None if is_running or later_same else timer.on_time.get(clock.stage)
        out.append(StageDeadline(clock.stage, clock.label, clock.started_at, clock.deadline_at, clock.source,
                                 clock.limit, clock.unit, is_running, on_time))
    return tuple(out)


def case_detail(session: Session, scope: Scope, timing: Timing, now: datetime, case_id: str) -> CaseDetail | None:
    """The case with its whole timeline; None when unknown **or outside the scope** (the same)."""
    if not is_case_id(case_id):  # a NUL byte must not reach the database (PostgreSQL refuses it)
        return None
    row = session.scalars(select(Case).where(Case.case_id == case_id, scoped(scope))).first()
    if row is None:
        return None
    events = list(session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.occurred_at, CaseEvent.id)))
    names = EventType.labels()
    timeline = tuple(TimelineEvent(e.event_id, e.type, names.get(e.type, "未知类型"), e.occurred_at,
                                   e.received_at, e.actor, e.source, e.problem) for e in events)
    community = street = district = ""
    if row.grid is not None:
        c = row.grid.community
        community = c.name
        if c.parent is not None:
            street = c.parent.name
            if c.parent.parent is not None:
                district = c.parent.parent.name
    major, minor = class_names(timing, row.kind, row.class_code)
    overdue = due_soon = False
    remaining = None
    if row.deadline_at is not None and row.stage in OPEN_VALUES:
        s = evaluate_arrays(timing.calendar, now, to_utc64([row.deadline_at]),
                            np.array([row.limit_minutes or 0.0]), np.array([row.limit_unit != CALENDAR_UNIT]),
                            to_utc64([row.paused_at]), timing.due_soon_ratio)
        overdue, due_soon, remaining = bool(s.overdue[0]), bool(s.due_soon[0]), float(s.remaining_minutes[0])
    stage = Stage(row.stage) if row.stage else None
    return CaseDetail(
        case_id=row.case_id, number=row.number, source=row.source, kind=row.kind, major_name=major,
        minor_name=minor, class_code=row.class_code, description=row.description, address=row.address,
        lon=row.lon, lat=row.lat, urgency=row.urgency,
        grid_code=row.grid.code if row.grid is not None else None,
        community=community, street=street, district=district,
        unit_code=row.unit.code if row.unit is not None else None,
        unit_name=row.unit.name if row.unit is not None else None,
        stage=stage.value if stage else None, stage_label=stage.label if stage else None,
        reported_at=row.reported_at, filed_at=row.filed_at, dispatched_at=row.dispatched_at,
        handled_at=row.handled_at, closed_at=row.closed_at,
        rework_count=row.rework_count or 0, extension_count=row.extension_count or 0,
        clock_stage=row.clock_stage, clock_label=CLOCK_LABELS.get(row.clock_stage or "") if row.clock_stage else None,
        deadline_at=row.deadline_at, overdue=overdue, due_soon=due_soon, remaining_minutes=remaining,
        on_time={s_: getattr(row, f"on_time_{s_}") for s_ in CLOCK_STAGES},
        deadlines=_stage_deadlines(row.case_id, events, timing),
        events=timeline,
        alerts=case_alert_entries(session, row.case_id),
    )


__all__ = ["AlertEntry", "CaseDetail", "StageDeadline", "TimelineEvent", "case_detail"]
