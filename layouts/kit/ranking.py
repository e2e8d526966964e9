"""综合考评 rankings as the screens show them: the period as a heading, and the rows of a ranking grid.

Counts stay numbers, rates become percentages, and an object with too small a sample is shown as
样本不足 instead of a rank (``evalspec.INSUFFICIENT``). The wall, /view and /explore use them.
"""

from __future__ import annotations

from datetime import timedelta, tzinfo
from typing import Any

from dashboard.figures.evaluation import Evaluation
from dashboard.rules.evalspec import INSUFFICIENT

from .fmt import PLACEHOLDER


def period_text(ev: Evaluation, tz: tzinfo) -> str:
    """The ranking's period as a heading: 2026年11月 · 截至 11-26 06:20 · 按综合指标值排名."""
    first, last = ev.period.first, ev.period.end_day - timedelta(days=1)
    label = f"{first.year}年{first.month}月" if ev.period.label == f"{first:%Y-%m}" else f"{first} 至 {last}"
    if ev.as_of < ev.period.end:  # a running month: judged as of now
        return f"{label} · 截至 {ev.as_of.astimezone(tz):%m-%d %H:%M} · 按综合指标值排名"
    return f"{label} · 按综合指标值排名"


def ranking_rows(ev: Evaluation) -> list[dict[str, Any]]:
    """Rows of the wall's ranking grids: counts as they are, rates in %, 样本不足 unranked."""
    rows = []
    for r in ev.rows:
        rank: Any = r.rank if r.rank is not None else (INSUFFICIENT if not r.sample_ok else PLACEHOLDER)
        row: dict[str, Any] = {"id": r.code, "name": r.name, "rank": rank,
                               "composite": PLACEHOLDER if r.composite is None else f"{r.composite:.2f}",
                               "grade": r.grade or PLACEHOLDER}
        for key, value in r.indicators.items():
            if value is None:
                row[key] = PLACEHOLDER
            elif key.endswith("_rate"):
                row[key] = f"{100 * value:.1f}%"
            else:
                row[key] = value
        rows.append(row)
    return rows
