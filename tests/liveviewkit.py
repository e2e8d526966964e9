"""Shared kit for the live view tests (test_liveview, test_follower): events and SQL ground truth.

On feedkit's city: :func:`msgs` writes a case's events in local time; :func:`truth` counts
every figure of the view with plain COUNT queries (no view code involved); :func:`check`
compares a view with it; :func:`same_view` compares two views.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

import feedkit
from dashboard.figures.liveview import GRID_METRICS, LiveView
from dashboard.figures.overdue import overdue_stored
from dashboard.rules.lifecycle import OPEN
from dashboard.store.models import Case, Grid, Unit
from dashboard.store.queries import day_window, today_counts
from feeds.contract import CaseEventMessage

TZ = ZoneInfo("Asia/Shanghai")
OPEN_VALUES = [s.value for s in OPEN]
G1, G2, G3 = feedkit.GRID_CODES[:3]


def L(text: str) -> datetime:
    """``"2026-11-16 06:00"`` in the city's local time."""
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def msgs(case: str, *steps: tuple[Any, ...], **first: Any) -> list[CaseEventMessage]:
    """A case's events: (type, local time[, fields]); the first carries the case's fields."""
    out = []
    for n, (type_, at, *extra) in enumerate(steps):
        fields = dict(extra[0]) if extra else {}
        if n == 0:
            fields = {"source": "supervisor", "kind": "event", "class_code": "06010", "grid_code": G1,
                      "urgency": "normal", "number": f"N-{case}", "description": f"问题 {case}",
                      **first, **fields}
        out.append(CaseEventMessage(event_id=f"{case}-{n}", case_id=case, type=type_,
                                    occurred_at=L(at) if isinstance(at, str) else at, **fields))
    return out


# -- ground truth, straight from SQL --------------------------------------------------------------------
def truth(session: Session, timing: Any, at: datetime) -> dict[str, Any]:
    """Every figure of the view at ``at``, by plain COUNT queries (no view code involved)."""
    w = day_window(TZ, at)
    on_day = lambda col: and_(col >= w.start, col < w.end)  # noqa: E731
    is_open = Case.stage.in_(OPEN_VALUES)
    running = and_(is_open, Case.deadline_at.is_not(None),
                   or_(Case.paused_at.is_(None), Case.paused_at > at))
    overdue = and_(running, Case.deadline_at < at)
    g, u = aliased(Grid), aliased(Unit)

    def per_grid(cond: Any) -> dict[str, int]:
        return {code: n for code, n in session.execute(
            select(g.code, func.count()).select_from(Case).join(g, g.id == Case.grid_id).where(cond)
            .group_by(g.code))}

    def per_unit(cond: Any) -> dict[str, int]:
        return {code: n for code, n in session.execute(
            select(u.code, func.count()).select_from(Case).join(u, u.id == Case.unit_id).where(cond)
            .group_by(u.code))}

    def count(cond: Any) -> int:
        return session.scalar(select(func.count()).select_from(Case).where(cond)) or 0

    tc = today_counts(session, TZ, at)
    closed_today = and_(on_day(Case.closed_at), Case.stage == "closed")
    flagged = count(and_(closed_today, Case.on_time_close.is_not(None)))
    on_time = count(and_(closed_today, Case.on_time_close.is_(True)))
    first = at.astimezone(TZ).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    after = (first + timedelta(days=32)).replace(day=1)
    month = and_(Case.handled_at >= first, Case.handled_at < after, Case.on_time_handle.is_not(None))
    kpis = dict(
        day=w.day, reported=tc.reported, filed=tc.filed, dispatched=tc.dispatched, disposing=tc.disposing,
        closed=tc.closed, closed_on_time=on_time, closed_flagged=flagged,
        on_time_close_rate=on_time / flagged if flagged else None,
        overdue=count(overdue),
        urgent=count(and_(is_open, Case.urgency == "urgent")), open=count(is_open),
    )
    units = {
        "pending": per_unit(and_(Case.stage.in_(["dispatched", "suspended"]))),
        "feedback": per_unit(Case.stage.in_(["handled", "checked"])),
        "overdue": per_unit(and_(overdue, Case.clock_stage == "handle")),
        "closed_today": per_unit(closed_today),
        "handled_month": per_unit(month),
        "on_time_month": per_unit(and_(month, Case.on_time_handle.is_(True))),
        "rework": per_unit(and_(is_open, Case.rework_count > 0)),
        "extension": per_unit(and_(is_open, Case.extension_count > 0)),
    }
    return {
        "kpis": kpis,
        "open": per_grid(is_open),
        "overdue": per_grid(overdue),
        "new_hour": per_grid(and_(Case.stage.is_not(None), Case.reported_at > at - timedelta(hours=1),
                                  Case.reported_at <= at)),
        "units": units,
        "queue": overdue_stored(session, timing, at),
    }


def check(view: LiveView, sessions: Any, timing: Any, at: datetime) -> dict[str, Any]:
    """The view (whose instant must be ``at``) equals the SQL truth at ``at``."""
    assert view.as_of == at
    with sessions() as s:
        t = truth(s, timing, at)
    k = view.kpis()
    got = {name: getattr(k, name) for name in t["kpis"]}
    assert got == t["kpis"]
    assert k.due_soon == sum(1 for r in t["queue"] if not r.overdue)
    for metric in GRID_METRICS:
        assert view.grid_values(metric) == t[metric], metric
    board = {r.code: r for r in view.unit_board()}
    for field, expected in t["units"].items():
        got_units = {code: getattr(r, field) for code, r in board.items() if getattr(r, field)}
        assert got_units == expected, field
    # 在办 by 来源 (the wall's source strip): COUNT … GROUP BY source of the open cases.
    with sessions() as s:
        by_source = dict(s.execute(select(Case.source, func.count()).where(Case.stage.in_([st.value for st in OPEN]))
                                   .group_by(Case.source)).all())
    assert {src.value: n for src, n in view.source_counts() if n} == \
        {src: n for src, n in by_source.items() if src is not None}
    q = view.overdue_queue(limit=10_000)
    rows = list(q.overdue) + list(q.due_soon)
    assert [(r.case_id, r.overdue) for r in rows] == [(r.case_id, r.overdue) for r in t["queue"]]
    assert (q.overdue_total, q.due_soon_total) == (k.overdue, k.due_soon)
    for mine, theirs in zip(rows, t["queue"], strict=False):
        assert mine.deadline_at == theirs.deadline_at
        assert mine.grid_code == theirs.grid_code and mine.unit_name == theirs.unit_name
        assert mine.minor_name == theirs.class_name and mine.number == theirs.number
        for name in ("overdue_work_minutes", "overdue_calendar_minutes", "remaining_minutes"):
            assert getattr(mine, name) == pytest.approx(getattr(theirs, name), abs=1e-6), name
    return t


def same_view(a: LiveView, b: LiveView) -> None:
    """Two views at the same instant show the same figures."""
    assert a.as_of == b.as_of
    assert a.kpis() == b.kpis()
    for metric in GRID_METRICS:
        assert a.grid_values(metric) == b.grid_values(metric), metric
        assert a.hot_spots(metric, 5) == b.hot_spots(metric, 5)
    assert a.unit_board() == b.unit_board()
    assert a.overdue_queue(10_000) == b.overdue_queue(10_000)
    assert a.stage_counts() == b.stage_counts()
    assert a.source_counts() == b.source_counts()
