"""What every scoped figure builds on: the scope's case condition, 当前超期 in SQL, a region filter
inside the scope, and the stored clocks of the open cases evaluated at one instant.

The read API (``readapi``), the drill-down (``explore``), hot spots and evaluation all filter by
the caller's region scope on the server and judge "overdue now" and "due soon" the same way;
this module is that one way. A region outside the scope is :class:`OutOfScope`, exactly like an
unknown one, so a refusal tells nothing about what exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, and_, case, func, or_, select, true
from sqlalchemy.orm import Session

from dashboard.rules.deadlines import Timing, evaluate_arrays, to_utc64
from dashboard.store.models import Case, Grid
from dashboard.store.queries import OPEN_STAGES
from dashboard.store.scope import Scope, ScopeError, get_scope, grid_condition

# The open stages' values, for ``Case.stage.in_``; a clock counted in calendar hours (not working time).
OPEN_VALUES = [s.value for s in OPEN_STAGES]
CALENDAR_UNIT = "calendar_hours"


class OutOfScope(LookupError):
    """A region or grid code outside the caller's scope, or unknown (the same to the caller)."""


# -- conditions ---------------------------------------------------------------------------------
def scoped(scope: Scope) -> ColumnElement[bool]:
    """The case condition of ``scope``: a case without a grid belongs to the city scope only."""
    from dashboard.store.scope import case_condition

    return case_condition(scope)


def overdue_condition(now: datetime) -> ColumnElement[bool]:
    """当前超期 in SQL: an open case's running clock is past its stored deadline at ``now``.

    Exactly :func:`dashboard.rules.deadlines.evaluate_arrays`' ``overdue``: not 挂账 at ``now``
    (``paused_at`` unset or later) and ``now`` after the deadline — no working time needed.
    """
    return and_(Case.stage.in_(OPEN_VALUES), Case.deadline_at.is_not(None), Case.deadline_at < now,
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


def tally(condition: ColumnElement[bool]) -> Any:
    # COUNT of a CASE without ELSE counts only matching rows and is 0 on an empty table.
    return func.count(case((condition, 1)))


def month_window(timing: Timing, now: datetime) -> tuple[datetime, datetime]:
    tz = timing.calendar.tz
    first = now.astimezone(tz).date().replace(day=1)
    after = (first + timedelta(days=32)).replace(day=1)
    return (datetime.combine(first, time.min, tzinfo=tz).astimezone(UTC),
            datetime.combine(after, time.min, tzinfo=tz).astimezone(UTC))


# -- stored clocks of the open cases in scope ---------------------------------------------------
@dataclass(frozen=True)
class StoredClocks:
    """The stored clocks of open cases evaluated at one instant: one numpy entry per case."""

    ids: list[int]
    case_ids: list[str]
    deadline: np.ndarray
    overdue: np.ndarray
    due_soon: np.ndarray
    remaining: np.ndarray
    over_work: np.ndarray
    over_cal: np.ndarray
    working: np.ndarray


def stored_clocks(session: Session, scope: Scope, timing: Timing, now: datetime,
            where: ColumnElement[bool] | None = None) -> StoredClocks:
    """Evaluate the stored clocks of the open cases in scope at ``now`` (numpy, no loop)."""
    rows = session.execute(
        select(Case.id, Case.case_id, Case.deadline_at, Case.limit_minutes, Case.limit_unit, Case.paused_at)
        .where(Case.stage.in_(OPEN_VALUES), Case.deadline_at.is_not(None), scoped(scope),
               where if where is not None else true())
    ).all()
    deadline = to_utc64([r[2] for r in rows])
    working = np.array([r[4] != CALENDAR_UNIT for r in rows], dtype=bool)
    if rows:
        s = evaluate_arrays(timing.calendar, now, deadline,
                            np.array([r[3] or 0.0 for r in rows], dtype=np.float64), working,
                            to_utc64([r[5] for r in rows]), timing.due_soon_ratio)
        overdue, soon, rem, ow, oc = (s.overdue, s.due_soon, s.remaining_minutes, s.overdue_work_minutes,
                                      s.overdue_calendar_minutes)
    else:
        overdue = soon = np.zeros(0, dtype=bool)
        rem = ow = oc = np.zeros(0)
    return StoredClocks([r[0] for r in rows], [r[1] for r in rows], deadline, overdue, soon, rem, ow, oc, working)
