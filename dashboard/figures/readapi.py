"""The JSON read API's figures (``/api/v1``), computed in SQL and filtered by a region scope.

Domain only (no Flask): every function takes ``(session, scope, timing, now)`` and returns
plain frozen dataclasses; ``api/v1.py`` turns them into JSON. The definitions are the wall's
(docs/wall.md "指标定义", ``dashboard/figures/wallfigures.py``), restricted to the cases inside the scope
(``dashboard.store.scope.case_condition``): a case without a grid belongs to no district, so only
the city scope counts it.

Unlike the wall, which keeps its figures in memory, these answer from SQL at the instant of
the request (the summary and the overdue page come from the worker's live view instead once it
has one: ``dashboard.figures.livereads``, which must equal these): aggregates are
``COUNT … GROUP BY`` with the scope condition (they lead with the
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

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, false, func, select, true
from sqlalchemy.orm import Session, aliased

from dashboard.figures.overdue import class_names
from dashboard.figures.scoped import (
    OPEN_VALUES,
    month_window,
    overdue_condition,
    region_filter,
    scoped,
    stored_clocks,
    tally,
)
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
from dashboard.rules.deadlines import Timing
from dashboard.rules.lifecycle import Stage
from dashboard.rules.limits import STAGES as CLOCK_STAGES
from dashboard.rules.vocab import Urgency
from dashboard.store.models import Case, Grid, Region, Unit
from dashboard.store.queries import DISPOSING, OPEN_STAGES, StageCount, day_window
from dashboard.store.scope import Scope, grid_condition

MAX_LIMIT = 1000  # rows per page of /overdue and /grids
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
        select(func.count(), tally(Case.on_time_close.is_not(None)), tally(Case.on_time_close.is_(True)))
        .where(Case.closed_at >= w.start, Case.closed_at < w.end, Case.stage == Stage.CLOSED.value, cond)
    ).one()
    per_stage: dict[str, int] = {}
    urgent = 0
    for stage, n, u in session.execute(
            select(Case.stage, func.count(), tally(Case.urgency == Urgency.URGENT.value))
            .where(Case.stage.in_(OPEN_VALUES), cond).group_by(Case.stage)):
        per_stage[stage] = int(n)
        urgent += int(u or 0)
    clocks = stored_clocks(session, scope, timing, now)
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
    add(0, select(Case.grid_id, func.count()).where(Case.stage.in_(OPEN_VALUES), base).group_by(Case.grid_id))
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
    c = stored_clocks(session, scope, timing, now)
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
    m_lo, m_hi = month_window(timing, now)
    cond = scoped(scope)
    stage_in = lambda stages: Case.stage.in_([s.value for s in stages])  # noqa: E731
    figures: dict[int, dict[str, int]] = {}

    def put(uid: int, **values: int) -> None:
        f = figures.setdefault(uid, dict.fromkeys(
            ("open", "pending", "feedback", "overdue", "rework", "extension", "closed_today",
             "month_ok", "month_flag"), 0))
        f.update({k: int(v or 0) for k, v in values.items()})

    for r in session.execute(
            select(Case.unit_id, func.count().label("open"), tally(stage_in(UNIT_PENDING)).label("pending"),
                   tally(stage_in(UNIT_FEEDBACK)).label("feedback"),
                   tally(and_(overdue_condition(now), Case.clock_stage == UNIT_OVERDUE_CLOCK)).label("overdue"),
                   tally(Case.rework_count > 0).label("rework"),
                   tally(Case.extension_count > 0).label("extension"))
            .where(Case.stage.in_(OPEN_VALUES), Case.unit_id.is_not(None), cond).group_by(Case.unit_id)):
        put(r.unit_id, open=r.open, pending=r.pending, feedback=r.feedback, overdue=r.overdue,
            rework=r.rework, extension=r.extension)
    for uid, n in session.execute(
            select(Case.unit_id, func.count())
            .where(Case.closed_at >= w.start, Case.closed_at < w.end, Case.stage == Stage.CLOSED.value,
                   Case.unit_id.is_not(None), cond).group_by(Case.unit_id)):
        if uid is not None:  # excluded by the query; narrows the column's type
            put(uid, closed_today=n)
    for uid, flag, ok in session.execute(
            select(Case.unit_id, func.count(), tally(Case.on_time_handle.is_(True)))
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


__all__ = ["MAX_LIMIT", "summary", "grids", "overdue", "units"]
