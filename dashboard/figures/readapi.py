"""The JSON read API's figures (``/api/v1``), computed in SQL and filtered by a region scope.

Domain only (no Flask): every function takes ``(session, scope, timing, now)`` and returns
plain frozen dataclasses; ``api/v1.py`` turns them into JSON. The definitions are the wall's
(docs/wall.md "指标定义", ``dashboard/figures/wallfigures.py``), restricted to the cases inside the scope
(``dashboard.store.scope.case_condition``): a case without a grid belongs to no district, so only
the city scope counts it.

Unlike the wall, which keeps its figures in memory, these answer from SQL at the instant of
the request: aggregates are ``COUNT … GROUP BY`` with the scope condition (they lead with the
indexed columns — ``stage`` for the open cases (ix_cases_stage_grid, ix_cases_stage_unit),
``reported_at``/``filed_at``/``dispatched_at``/``closed_at``/``handled_at`` for today's
flow), and "overdue now" is a plain SQL condition on the stored deadline (see
:func:`overdue_condition`). Only due-soon needs working-time arithmetic: it is evaluated
with :func:`dashboard.rules.deadlines.evaluate_arrays` over the stored clocks of the open cases in
scope, like the live view does.

A case or region outside the scope is indistinguishable from one that does not exist:
:func:`case_detail` returns None, and a region filter outside the scope raises
:class:`OutOfScope` for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, and_, case, false, func, or_, select, true
from sqlalchemy.orm import Session, aliased

from dashboard.figures.overdue import class_names
from dashboard.figures.wallfigures import (
    NEW_WINDOW,
    PRIOR_CASES,
    UNIT_FEEDBACK,
    UNIT_OVERDUE_CLOCK,
    UNIT_PENDING,
    Kpis,
    QueueRow,
    UnitRow,
    unit_levels,
)
from dashboard.rules.deadlines import CLOCK_LABELS, CaseTimer, Timing, evaluate_arrays, to_utc64
from dashboard.rules.lifecycle import CaseState, EventType, LifecycleEvent, Stage, fold_into
from dashboard.rules.limits import STAGES as CLOCK_STAGES
from dashboard.rules.text import is_case_id
from dashboard.rules.vocab import Urgency
from dashboard.store.models import Case, CaseEvent, Grid, Region, Unit
from dashboard.store.queries import DISPOSING, OPEN_STAGES, StageCount, day_window
from dashboard.store.scope import Scope, ScopeError, get_scope, grid_condition

MAX_LIMIT = 1000  # rows per page of /overdue and /grids
_OPEN = [s.value for s in OPEN_STAGES]
_CALENDAR_UNIT = "calendar_hours"


class OutOfScope(LookupError):
    """A region or grid code outside the caller's scope, or unknown (the same to the caller)."""


# -- conditions ---------------------------------------------------------------------------------
def scoped(scope: Scope) -> ColumnElement[bool]:
    """The case condition of ``scope`` (re-exported for the API's tests)."""
    from dashboard.store.scope import case_condition

    return case_condition(scope)


def overdue_condition(now: datetime) -> ColumnElement[bool]:
    """当前超期 in SQL: an open case's running clock is past its stored deadline at ``now``.

    Exactly :func:`dashboard.rules.deadlines.evaluate_arrays`' ``overdue``: not 挂账 at ``now``
    (``paused_at`` unset or later) and ``now`` after the deadline — no working time needed.
    """
    return and_(Case.stage.in_(_OPEN), Case.deadline_at.is_not(None), Case.deadline_at < now,
                or_(Case.paused_at.is_(None), Case.paused_at > now))


def region_filter(session: Session, scope: Scope, code: str | None) -> ColumnElement[bool]:
    """Condition on ``Grid`` rows for an optional region or grid code inside ``scope``.

    Raises :class:`OutOfScope` for a code outside the scope or unknown (never which).
    """
    if code is None or code == "":
        return true()
    code = code.strip()
    if not code.isdigit() or not scope.allows(code):
        raise OutOfScope(code)
    if len(code) in (14, 15):
        if session.scalar(select(Grid.id).where(Grid.code == code)) is None:
            raise OutOfScope(code)
        return Grid.code == code
    try:
        inner = get_scope(session, code)
    except ScopeError:
        raise OutOfScope(code) from None
    return grid_condition(inner)


def _tally(condition: ColumnElement[bool]) -> Any:
    # COUNT of a CASE without ELSE counts only matching rows and is 0 on an empty table.
    return func.count(case((condition, 1)))


def _month_window(timing: Timing, now: datetime) -> tuple[datetime, datetime]:
    tz = timing.calendar.tz
    first = now.astimezone(tz).date().replace(day=1)
    after = (first + timedelta(days=32)).replace(day=1)
    return (datetime.combine(first, time.min, tzinfo=tz).astimezone(UTC),
            datetime.combine(after, time.min, tzinfo=tz).astimezone(UTC))


# -- stored clocks of the open cases in scope ---------------------------------------------------
@dataclass(frozen=True)
class _Clocks:
    ids: list[int]
    case_ids: list[str]
    deadline: np.ndarray
    overdue: np.ndarray
    due_soon: np.ndarray
    remaining: np.ndarray
    over_work: np.ndarray
    over_cal: np.ndarray
    working: np.ndarray


def _clocks(session: Session, scope: Scope, timing: Timing, now: datetime,
            where: ColumnElement[bool] | None = None) -> _Clocks:
    """Evaluate the stored clocks of the open cases in scope at ``now`` (numpy, no loop)."""
    rows = session.execute(
        select(Case.id, Case.case_id, Case.deadline_at, Case.limit_minutes, Case.limit_unit, Case.paused_at)
        .where(Case.stage.in_(_OPEN), Case.deadline_at.is_not(None), scoped(scope),
               where if where is not None else true())
    ).all()
    deadline = to_utc64([r[2] for r in rows])
    working = np.array([r[4] != _CALENDAR_UNIT for r in rows], dtype=bool)
    if rows:
        s = evaluate_arrays(timing.calendar, now, deadline,
                            np.array([r[3] or 0.0 for r in rows], dtype=np.float64), working,
                            to_utc64([r[5] for r in rows]), timing.due_soon_ratio)
        overdue, soon, rem, ow, oc = (s.overdue, s.due_soon, s.remaining_minutes, s.overdue_work_minutes,
                                      s.overdue_calendar_minutes)
    else:
        overdue = soon = np.zeros(0, dtype=bool)
        rem = ow = oc = np.zeros(0)
    return _Clocks([r[0] for r in rows], [r[1] for r in rows], deadline, overdue, soon, rem, ow, oc, working)


# -- /summary -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Summary(Kpis):
    """Today's KPI strip within a scope: the fields of :class:`wallfigures.Kpis` (same
    definitions, docs/wall.md) counted over the scope's cases, plus the scope and the stages."""

    scope_code: str | None
    scope_name: str
    scope_level: str
    at: datetime
    stages: tuple[StageCount, ...]


def summary(session: Session, scope: Scope, timing: Timing, now: datetime) -> Summary:
    """今日 KPIs of the cases in ``scope`` at ``now``."""
    tz = timing.calendar.tz
    w = day_window(tz, now)
    cond = scoped(scope)

    def today(column: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(Case).where(
            column >= w.start, column < w.end, cond)) or 0)

    reported, filed, dispatched = today(Case.reported_at), today(Case.filed_at), today(Case.dispatched_at)
    closed, flagged, on_time = session.execute(
        select(func.count(), _tally(Case.on_time_close.is_not(None)), _tally(Case.on_time_close.is_(True)))
        .where(Case.closed_at >= w.start, Case.closed_at < w.end, Case.stage == Stage.CLOSED.value, cond)
    ).one()
    per_stage: dict[str, int] = {}
    urgent = 0
    for stage, n, u in session.execute(
            select(Case.stage, func.count(), _tally(Case.urgency == Urgency.URGENT.value))
            .where(Case.stage.in_(_OPEN), cond).group_by(Case.stage)):
        per_stage[stage] = int(n)
        urgent += int(u or 0)
    clocks = _clocks(session, scope, timing, now)
    flagged, on_time = int(flagged or 0), int(on_time or 0)
    return Summary(
        scope_code=scope.code, scope_name=scope.name, scope_level=scope.level,
        at=now.astimezone(tz), day=w.day,
        reported=reported, filed=filed, dispatched=dispatched,
        disposing=sum(per_stage.get(s.value, 0) for s in DISPOSING),
        closed=int(closed or 0), closed_on_time=on_time, closed_flagged=flagged,
        on_time_close_rate=on_time / flagged if flagged else None,
        overdue=int(np.count_nonzero(clocks.overdue)), due_soon=int(np.count_nonzero(clocks.due_soon)),
        urgent=urgent, open=sum(per_stage.values()),
        stages=tuple(StageCount(s, s.label, per_stage.get(s.value, 0)) for s in OPEN_STAGES),
    )


# -- /grids -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GridRow:
    code: str
    community: str
    street: str
    district: str
    open: int
    overdue: int
    new_hour: int


@dataclass(frozen=True)
class GridPage:
    at: datetime
    region: str | None
    total: int
    limit: int
    offset: int
    grids: tuple[GridRow, ...]


def grids(session: Session, scope: Scope, timing: Timing, now: datetime, *, region: str | None = None,
          include_idle: bool = False, limit: int = MAX_LIMIT, offset: int = 0) -> GridPage:
    """Per grid in scope (and in ``region``, a region or grid code inside the scope): 在办,
    超期 and 近1小时新增 (docs/wall.md "Map and hot spots"). Busiest first (open, then
    overdue, then new, descending), ties by code; grids with all three 0 only with
    ``include_idle``. Raises :class:`OutOfScope` for a region outside the scope or unknown."""
    where = and_(grid_condition(scope), region_filter(session, scope, region))
    community, street, district = aliased(Region), aliased(Region), aliased(Region)
    places = session.execute(
        select(Grid.id, Grid.code, community.name, street.name, district.name)
        .outerjoin(community, community.id == Grid.community_id)
        .outerjoin(street, street.id == community.parent_id)
        .outerjoin(district, district.id == street.parent_id)
        .where(where)
    ).all()
    counts: dict[int, list[int]] = {}

    def add(i: int, stmt: Any) -> None:
        for gid, n in session.execute(stmt):
            counts.setdefault(gid, [0, 0, 0])[i] = int(n)

    in_grids = Case.grid_id.in_(select(Grid.id).where(where)) if region else true()
    base = and_(scoped(scope), in_grids, Case.grid_id.is_not(None))
    add(0, select(Case.grid_id, func.count()).where(Case.stage.in_(_OPEN), base).group_by(Case.grid_id))
    add(1, select(Case.grid_id, func.count()).where(overdue_condition(now), base).group_by(Case.grid_id))
    add(2, select(Case.grid_id, func.count()).where(
        Case.reported_at > now - NEW_WINDOW, Case.reported_at <= now, base).group_by(Case.grid_id))
    rows = []
    for gid, code, comm, st, dist in places:
        o, ov, nh = counts.get(gid, (0, 0, 0))
        if o or ov or nh or include_idle:
            rows.append(GridRow(code, comm or "", st or "", dist or "", o, ov, nh))
    rows.sort(key=lambda r: (-r.open, -r.overdue, -r.new_hour, r.code))
    limit = max(0, min(limit, MAX_LIMIT))
    offset = max(0, offset)
    return GridPage(now.astimezone(timing.calendar.tz), region or None, len(rows), limit, offset,
                    tuple(rows[offset:offset + limit]))


# -- /overdue -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class OverduePage:
    at: datetime
    overdue_total: int
    due_soon_total: int
    limit: int
    offset: int
    cases: tuple[QueueRow, ...]  # the wall's queue rows, from SQL (description not shortened)


def overdue(session: Session, scope: Scope, timing: Timing, now: datetime, *, limit: int = 50,
            offset: int = 0) -> OverduePage:
    """Overdue cases in scope, most overdue (earliest deadline) first, then the due-soon ones,
    earliest deadline first; ties by case id (``dashboard.figures.overdue.sort_rows``). ``limit`` /
    ``offset`` page through that one list; the totals count all of them."""
    tz = timing.calendar.tz
    c = _clocks(session, scope, timing, now)
    pick = np.flatnonzero(c.overdue | c.due_soon)
    order = sorted(pick.tolist(), key=lambda i: (not c.overdue[i], c.deadline[i], c.case_ids[i]))
    limit = max(0, min(limit, MAX_LIMIT))
    offset = max(0, offset)
    page = order[offset:offset + limit]
    details: dict[int, Any] = {}
    if page:
        g, u = aliased(Grid), aliased(Unit)
        community, street, district = aliased(Region), aliased(Region), aliased(Region)
        for found in session.execute(
                select(Case.id, Case.number, Case.description, Case.kind, Case.class_code, g.code,
                       community.name, street.name, district.name, u.code, u.name, Case.stage,
                       Case.clock_stage, Case.deadline_source, Case.urgency, Case.rework_count,
                       Case.extension_count)
                .outerjoin(g, g.id == Case.grid_id)
                .outerjoin(community, community.id == g.community_id)
                .outerjoin(street, street.id == community.parent_id)
                .outerjoin(district, district.id == street.parent_id)
                .outerjoin(u, u.id == Case.unit_id)
                .where(Case.id.in_([c.ids[i] for i in page]))):
            details[found[0]] = found
    out = []
    for i in page:
        r = details.get(c.ids[i])
        if r is None:  # gone between the two reads
            continue
        major, minor = class_names(timing, r.kind, r.class_code)
        stage = Stage(r.stage)
        over = bool(c.overdue[i])
        deadline = c.deadline[i].astype("datetime64[us]").item().replace(tzinfo=UTC).astimezone(tz)
        out.append(QueueRow(
            case_id=c.case_ids[i], number=r.number, description=r.description,
            major_name=major, minor_name=minor, grid_code=r[5] or "", community=r[6] or "",
            street=r[7] or "", district=r[8] or "", unit_code=r[9] or "", unit_name=r[10] or "",
            stage=stage, stage_label=stage.label, clock_stage=r.clock_stage or "",
            clock_label=CLOCK_STAGES.get(r.clock_stage or "", ""), deadline_at=deadline,
            deadline_source=r.deadline_source or "", working=bool(c.working[i]), overdue=over,
            overdue_work_minutes=float(c.over_work[i]), overdue_calendar_minutes=float(c.over_cal[i]),
            remaining_minutes=float(c.remaining[i]), urgent=r.urgency == Urgency.URGENT.value,
            rework_count=int(r.rework_count or 0), extension_count=int(r.extension_count or 0),
        ))
    return OverduePage(now.astimezone(tz), int(np.count_nonzero(c.overdue)), int(np.count_nonzero(c.due_soon)),
                       limit, offset, tuple(out))


# -- /units -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UnitBoard:
    at: datetime
    units: tuple[UnitRow, ...]


def units(session: Session, scope: Scope, timing: Timing, now: datetime) -> UnitBoard:
    """One row per unit with any figure among the cases in scope, worst first (docs/wall.md).

    The smoothing prior ``p`` is the scope's own 按期处置率 this month (1 without data)."""
    tz = timing.calendar.tz
    w = day_window(tz, now)
    m_lo, m_hi = _month_window(timing, now)
    cond = scoped(scope)
    stage_in = lambda stages: Case.stage.in_([s.value for s in stages])  # noqa: E731
    figures: dict[int, dict[str, int]] = {}

    def put(uid: int, **values: int) -> None:
        f = figures.setdefault(uid, dict.fromkeys(
            ("open", "pending", "feedback", "overdue", "rework", "extension", "closed_today",
             "month_ok", "month_flag"), 0))
        f.update({k: int(v or 0) for k, v in values.items()})

    for r in session.execute(
            select(Case.unit_id, func.count().label("open"), _tally(stage_in(UNIT_PENDING)).label("pending"),
                   _tally(stage_in(UNIT_FEEDBACK)).label("feedback"),
                   _tally(and_(overdue_condition(now), Case.clock_stage == UNIT_OVERDUE_CLOCK)).label("overdue"),
                   _tally(Case.rework_count > 0).label("rework"),
                   _tally(Case.extension_count > 0).label("extension"))
            .where(Case.stage.in_(_OPEN), Case.unit_id.is_not(None), cond).group_by(Case.unit_id)):
        put(r.unit_id, open=r.open, pending=r.pending, feedback=r.feedback, overdue=r.overdue,
            rework=r.rework, extension=r.extension)
    for uid, n in session.execute(
            select(Case.unit_id, func.count())
            .where(Case.closed_at >= w.start, Case.closed_at < w.end, Case.stage == Stage.CLOSED.value,
                   Case.unit_id.is_not(None), cond).group_by(Case.unit_id)):
        if uid is not None:  # excluded by the query; narrows the column's type
            put(uid, closed_today=n)
    for uid, flag, ok in session.execute(
            select(Case.unit_id, func.count(), _tally(Case.on_time_handle.is_(True)))
            .where(Case.handled_at >= m_lo, Case.handled_at < m_hi, Case.on_time_handle.is_not(None),
                   Case.unit_id.is_not(None), cond).group_by(Case.unit_id)):
        put(uid, month_flag=flag, month_ok=ok)
    names = dict(((uid, (code, name)) for uid, code, name in session.execute(
        select(Unit.id, Unit.code, Unit.name).where(Unit.id.in_(list(figures)) if figures else false()))))
    total_flag = sum(f["month_flag"] for f in figures.values())
    city = sum(f["month_ok"] for f in figures.values()) / total_flag if total_flag else 1.0
    rows = []
    for uid, f in figures.items():
        if uid not in names or not (f["open"] or f["closed_today"] or f["month_flag"]):
            continue
        code, name = names[uid]
        flag, ok = f["month_flag"], f["month_ok"]
        rate = ok / flag if flag else None
        smoothed = (ok + PRIOR_CASES * city) / (flag + PRIOR_CASES)
        rows.append(UnitRow(
            code=code, name=name, pending=f["pending"], feedback=f["feedback"], overdue=f["overdue"],
            closed_today=f["closed_today"], handled_month=flag, on_time_month=ok, on_time_rate=rate,
            smoothed_rate=smoothed, rework=f["rework"], extension=f["extension"],
            levels=dict(unit_levels(f["pending"], f["overdue"], rate, smoothed, f["rework"], f["extension"],
                                f["open"])),
        ))
    rows.sort(key=lambda r: (-r.overdue, r.smoothed_rate, -(r.pending + r.feedback), r.code))
    return UnitBoard(now.astimezone(tz), tuple(rows))


# -- /cases/<id> --------------------------------------------------------------------------------
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
    if row.deadline_at is not None and row.stage in _OPEN:
        s = evaluate_arrays(timing.calendar, now, to_utc64([row.deadline_at]),
                            np.array([row.limit_minutes or 0.0]), np.array([row.limit_unit != _CALENDAR_UNIT]),
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
    )


__all__ = ["OutOfScope", "summary", "grids", "overdue", "units", "case_detail", "overdue_condition"]
