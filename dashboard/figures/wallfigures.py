"""The wall's figures: what each counts, as the result types the live view returns (and the
scoped read API reuses), and the unit board's colour levels.

The definitions are in the docstrings of the dataclasses below and in docs/wall.md "指标定义 /
Definitions"; :mod:`dashboard.figures.liveview` computes them in memory, :mod:`dashboard.figures.readapi`
from SQL within a scope. The heatmap's per-grid metrics are in :mod:`dashboard.figures.heat`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dashboard.rules.lifecycle import Stage

# -- definitions (documented in docs/wall.md) -----------------------------------------------------
NEW_WINDOW = timedelta(hours=1)  # new_hour 近一小时新增: reported in (now − 1 h, now]
# Unit board: which of a unit's open cases are "待处置" and which "已反馈".
UNIT_PENDING: tuple[Stage, ...] = (Stage.DISPATCHED, Stage.SUSPENDED)
UNIT_FEEDBACK: tuple[Stage, ...] = (Stage.HANDLED, Stage.CHECKED)
UNIT_OVERDUE_CLOCK = "handle"  # a unit is late only on its own step, 处置
# Ranking: the month's on-time rate pulled toward the city's rate with this many cases' weight.
PRIOR_CASES = 10.0
# Colour levels of the unit board's cells.
RATE_OK, RATE_WARN = 0.90, 0.80  # smoothed 按期处置率 ≥ 90 % ok, ≥ 80 % warn, else bad
OVERDUE_BAD_SHARE, OVERDUE_BAD_COUNT = 0.10, 10  # 超期 bad at ≥ 10 % of 待处置 or ≥ 10 cases
REWORK_BAD_SHARE = 0.10  # 返工 bad at ≥ 10 % of the unit's open cases (≥ 1: warn)


# -- what the wall reads --------------------------------------------------------------------------
@dataclass(frozen=True)
class Kpis:
    """The KPI strip. "Today" is the local calendar day of the view's instant (city time zone).

    - ``reported`` 上报, ``filed`` 立案, ``dispatched`` 派遣: cases whose ``reported_at``,
      ``filed_at`` (the first 立案) or ``dispatched_at`` (the latest 派遣; a re-dispatch or 返工
      moves it) lies in today;
    - ``disposing`` 处置中: open cases now in 派遣, 回退 or 挂账 (``queries.DISPOSING``);
    - ``closed`` 结案: cases in stage 结案 whose ``closed_at`` lies in today (不予立案 and 作废
      also stamp ``closed_at`` and are not counted);
    - ``on_time_close_rate`` 按期结案率: among today's 结案 with an on-time flag
      (``on_time_close`` not NULL), the share closed on time; None when there are none;
    - ``overdue`` 当前超期: open cases whose running clock is past its deadline now (any clock,
      核实 … 结案; a 挂账 case never is); ``due_soon`` 临期: not overdue, not 挂账, remaining <
      ``due_soon_ratio`` × limit;
    - ``urgent`` 急要件: open cases with urgency ``urgent`` (紧急);
    - ``open``: all open cases (stage not 结案/不予立案/作废).
    """

    day: date
    reported: int
    filed: int
    dispatched: int
    disposing: int
    closed: int
    closed_on_time: int
    closed_flagged: int
    on_time_close_rate: float | None
    overdue: int
    due_soon: int
    urgent: int
    open: int


@dataclass(frozen=True)
class HotSpot:
    """A grid and its value of a grid metric, with the names of the regions above it."""

    code: str
    community: str
    street: str
    district: str
    value: int


@dataclass(frozen=True)
class QueueRow:
    """One case of the overdue queue (超期) or of its due-soon section (临期).

    Minutes are as of the view's instant (:attr:`OverdueQueue.at`): ``overdue_work_minutes``
    are the working minutes past the deadline (0 through a night right after it),
    ``overdue_calendar_minutes`` the real minutes; ``remaining_minutes`` the working minutes
    to the deadline (real minutes for a 自然时 clock), ≤ 0 once overdue.
    """

    case_id: str
    number: str | None
    description: str | None  # the first DESCRIPTION_CHARS characters
    major_name: str
    minor_name: str
    grid_code: str
    community: str
    street: str
    district: str
    unit_code: str
    unit_name: str
    stage: Stage
    stage_label: str  # the case's current stage (派遣, 处置反馈 …)
    clock_stage: str  # the running clock (verify … close)
    clock_label: str  # 核实 … 结案
    deadline_at: datetime  # city time zone
    deadline_source: str  # table / source
    working: bool  # False: a 自然时 clock
    overdue: bool
    overdue_work_minutes: float
    overdue_calendar_minutes: float
    remaining_minutes: float
    urgent: bool
    rework_count: int
    extension_count: int


@dataclass(frozen=True)
class OverdueQueue:
    """Overdue cases, earliest deadline (= most overdue) first, then the due-soon ones,
    earliest deadline first; ties by case_id (``dashboard.figures.overdue.sort_rows``). The totals
    count all of them; the tuples hold at most the limits asked for."""

    at: datetime
    overdue_total: int
    due_soon_total: int
    overdue: tuple[QueueRow, ...]
    due_soon: tuple[QueueRow, ...]


@dataclass(frozen=True)
class ScopedQueue:
    """One page of a scope's overdue-then-due-soon list (the read API's /overdue, in the order
    of :class:`OverdueQueue`), with the scope's totals."""

    at: datetime
    overdue_total: int
    due_soon_total: int
    rows: tuple[QueueRow, ...]


@dataclass(frozen=True)
class UnitRow:
    """One 处置单位 on the unit board (units with no case in any figure are left out).

    - ``pending`` 待处置: the unit's open cases in 派遣 or 挂账 (dispatched to it, no 处置反馈
      yet; a 回退 case is back with the dispatcher and is not counted);
    - ``feedback`` 已反馈: the unit's open cases in 处置反馈 or 核查 (it has reported the work
      done; they wait for 核查/结案 by the centre);
    - ``overdue`` 超期: the unit's open cases whose **处置** clock is past its deadline now (a late
      核查 or 结案 is the centre's, not the unit's);
    - ``closed_today`` 今日结案: the unit's cases in 结案 whose ``closed_at`` is today;
    - ``handled_month`` / ``on_time_month``: cases of the unit whose ``handled_at`` is in this
      local month and that have an on-time flag (``on_time_handle`` not NULL) / of them, on
      time; ``on_time_rate`` 按期处置率 = on_time / handled (None without any);
    - ``smoothed_rate``: (on_time + k·p) / (handled + k) with k = PRIOR_CASES (10) and p the
      city's rate this month (1.0 when the city has none): a unit with 1 late case out of 1 is
      not ranked as if it were the worst of the city;
    - ``rework`` 返工 / ``extension`` 延期: the unit's open cases with ``rework_count`` > 0 /
      ``extension_count`` > 0;
    - ``levels``: colour of the cells ``overdue``, ``on_time_rate``, ``rework``, ``extension``:
      "ok", "warn" or "bad" (thresholds in docs/wall.md; ``on_time_rate`` is "none" without data).
    """

    code: str
    name: str
    pending: int
    feedback: int
    overdue: int
    closed_today: int
    handled_month: int
    on_time_month: int
    on_time_rate: float | None
    smoothed_rate: float
    rework: int
    extension: int
    levels: Mapping[str, str]


@dataclass(frozen=True)
class Changes:
    """What one :meth:`LiveView.apply` or :meth:`LiveView.tick` changed."""

    version: int  # the view's version afterwards
    changed: bool  # anything visible (version was bumped)
    grids: frozenset[str]  # grid codes whose open/new_hour/overdue value changed
    units: frozenset[str]  # unit codes whose board figures changed


def unit_levels(pending: int, overdue: int, rate: float | None, smoothed: float, rework: int,
            extension: int, open_: int) -> Mapping[str, str]:
    """Colour levels of a unit row's cells: "ok", "warn", "bad" ("none": no rate; docs/wall.md)."""
    if overdue == 0:
        over = "ok"
    elif overdue >= OVERDUE_BAD_COUNT or overdue >= OVERDUE_BAD_SHARE * max(pending, 1):
        over = "bad"
    else:
        over = "warn"
    if rate is None:
        rate_level = "none"
    else:
        rate_level = "ok" if smoothed >= RATE_OK else ("warn" if smoothed >= RATE_WARN else "bad")
    if rework == 0:
        rw = "ok"
    else:
        rw = "bad" if rework >= REWORK_BAD_SHARE * max(open_, 1) else "warn"
    return {"overdue": over, "on_time_rate": rate_level, "rework": rw,
            "extension": "ok" if extension == 0 else "warn"}


def rate_text(rate: float | None) -> str:
    """A rate as the wall shows it: "96.3%", or "—" without data."""
    if rate is None or (isinstance(rate, float) and math.isnan(rate)):
        return "—"
    return f"{rate * 100:.1f}%"
