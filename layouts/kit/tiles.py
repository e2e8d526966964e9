"""KPI tiles: a strip of labelled figures, and their texts.

A tile is ``(key, label, scope)``: the figure goes into ``<prefix>-<key>``, ``label`` names it and
``scope`` says what it covers (今日, 当前, …). Labels of the case loop are the vocabulary's
(``Stage.label``, the clock stages of ``limits.STAGES``), never typed again here.
"""

from __future__ import annotations

from collections.abc import Sequence

from dash import html

from dashboard.rules.evalspec import LABELS
from dashboard.rules.lifecycle import Stage
from dashboard.rules.limits import STAGES

from .fmt import PLACEHOLDER, fmt_int, fmt_rate
from .props import attrs

Kpi = tuple[str, str, str]

TODAY = "今日"
NOW = "当前"

# Today's case loop, the first tiles of /live and /wall: the steps done today, and the cases in
# the 处置 clock stage now (处置中: dispatched, returned or parked; ``queries.DISPOSING``).
LOOP_KPIS: tuple[Kpi, ...] = (
    ("reported", Stage.REPORTED.label, TODAY),
    ("filed", Stage.FILED.label, TODAY),
    ("dispatched", Stage.DISPATCHED.label, TODAY),
    ("disposing", f"{STAGES['handle']}中", NOW),
    ("closed", Stage.CLOSED.label, TODAY),
)

# The command hall's strip (/wall; /view adds 临期 and 在办): the loop, then 按期结案率, the cases
# overdue now and the urgent ones in progress.
HALL_KPIS: tuple[Kpi, ...] = (
    *LOOP_KPIS,
    ("on_time_close_rate", LABELS["region"]["on_time_close_rate"], TODAY),
    ("overdue", "当前超期", "当前"),
    ("urgent", "急要件", "在办"),
)


def kpi_tile(value_id: str, key: str, label: str, scope: str, extra_class: str = "") -> html.Div:
    """One KPI tile; the figure goes into ``value_id``."""
    return html.Div(
        className=f"gh-kpi gh-kpi--{key}{extra_class}",
        children=[
            html.Div(
                className="gh-kpi__head",
                children=[
                    html.Span(label, className="gh-kpi__label"),
                    html.Span(scope, className="gh-kpi__scope"),
                ],
            ),
            html.Div(id=value_id, className="gh-kpi__value", children=PLACEHOLDER),
        ],
    )


def kpi_strip(prefix: str, kpis: Sequence[Kpi], modifier: str = "", label: str = "今日关键指标") -> html.Section:
    """The KPI strip: a tile per (key, label, scope) of ``kpis``, figures in ``<prefix>-<key>``.

    ``modifier`` (e.g. ``"wall"``) adds ``<modifier>-kpis`` to the strip and ``<modifier>-kpi
    <modifier>-kpi--<key>`` to each tile.
    """
    return html.Section(
        className="gh-kpis" + (f" {modifier}-kpis" if modifier else ""),
        **attrs({"aria-label": label}),
        children=[
            kpi_tile(f"{prefix}-{key}", key, name, scope,
                     f" {modifier}-kpi {modifier}-kpi--{key}" if modifier else "")
            for key, name, scope in kpis
        ],
    )


def kpi_texts(kpis: Sequence[Kpi], values: Sequence[int | float | None]) -> list[str]:
    """Texts of the tiles of ``kpis``, in order; keys ending in ``_rate`` are shares in [0, 1]."""
    return [fmt_rate(value) if key.endswith("_rate") else fmt_int(None if value is None else int(value))
            for (key, _, _), value in zip(kpis, values, strict=False)]
