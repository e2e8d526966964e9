"""各区对比: the city wall's districts side by side, and the rule of their trend arrow.

One :class:`DistrictRow` per region of level ``district``, in code order, computed in memory
by :meth:`dashboard.figures.liveview.LiveView.district_rows` (docs/wall.md "各区对比"). Every
count is the district's share of the KPI strip's figure of the same name (the definitions of
:class:`dashboard.figures.wallfigures.Kpis`, restricted to the cases located on the district's
grids, as ``readapi.summary`` of the district's scope counts them). A case without a grid
(未定位) belongs to no district: the rows add up to the city's figures minus those cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

# -- definitions (documented in docs/wall.md) -----------------------------------------------------
HOUR = timedelta(hours=1)  # the trend's bucket: a local clock hour of today
TREND_BAND = 0.2  # 近1小时上报 within ±20 % of today's hourly mean is "→"
UP, DOWN, FLAT = "↑", "↓", "→"


@dataclass(frozen=True)
class DistrictRow:
    """One district of 各区对比 at the view's instant.

    - ``open`` 在办, ``overdue`` 当前超期, ``due_soon`` 临期, ``urgent`` 急要件: the district's
      open cases counted as in the KPI strip;
    - ``reported`` 今日上报, ``closed`` 今日结案, ``closed_on_time`` / ``closed_flagged`` and
      ``on_time_close_rate`` 按期结案率 (None without a flagged 结案): today's flow, as in the KPI
      strip;
    - trend: ``new_hour`` 近1小时上报 (cases reported in ``(now − 1 h, now]``, the map's
      ``new_hour`` summed over the district's grids), ``hourly_mean`` = today's 上报 up to now
      ÷ the hours since local midnight (at least 1), and ``trend`` = :func:`trend_of` of the
      two; ``hourly`` is today's 上报 per local clock hour, 0 时 up to the current hour, for a
      sparkline (a report stamped after the view's instant is in ``reported`` only).
    """

    code: str
    name: str
    open: int
    overdue: int
    due_soon: int
    urgent: int
    reported: int
    closed: int
    closed_on_time: int
    closed_flagged: int
    on_time_close_rate: float | None
    new_hour: int
    hourly_mean: float
    trend: str
    hourly: tuple[int, ...]


def trend_of(new_hour: int, hourly_mean: float) -> str:
    """↑ when the last hour's 上报 is more than TREND_BAND above today's hourly mean, ↓ when
    more than TREND_BAND below it, → otherwise (also when both are 0)."""
    if new_hour > hourly_mean * (1 + TREND_BAND):
        return UP
    if new_hour < hourly_mean * (1 - TREND_BAND):
        return DOWN
    return FLAT


def hourly_mean(reported_so_far: int, elapsed: timedelta) -> float:
    """Today's 上报 up to now per hour since local midnight (the first hour counts as a whole one)."""
    return reported_so_far / max(elapsed / HOUR, 1.0)


__all__ = ["DOWN", "FLAT", "HOUR", "TREND_BAND", "UP", "DistrictRow", "hourly_mean", "trend_of"]
