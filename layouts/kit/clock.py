"""Time on a page: the header's clock and date, and how fresh the figures are (数据更新于).

The clock ticks in the browser (a clientside callback on ``<prefix>-clock-tick``), so a
ticking second costs no request; the server fills only the as-of time after a refresh.
"""

from __future__ import annotations

from dash import dcc, html

from .fmt import PLACEHOLDER

UPDATED = "数据更新于 "


def as_of(value_id: str, label: str = UPDATED, extra_class: str = "") -> html.Span:
    """「数据更新于 hh:mm:ss」: the time of the figures shown, filled into ``value_id``."""
    return html.Span(className="gh-updated" + (f" {extra_class}" if extra_class else ""), children=[
        label, html.Span(id=value_id, children=PLACEHOLDER),
    ])


def header_time(prefix: str) -> html.Div:
    """The header's clock, date and as-of time: ids ``<prefix>-clock``, ``-date``, ``-updated``."""
    return html.Div(
        className="gh-header__time",
        children=[
            html.Div(id=f"{prefix}-clock", className="gh-clock", children=PLACEHOLDER),
            html.Div(
                className="gh-header__meta",
                children=[
                    html.Span(id=f"{prefix}-date", className="gh-date"),
                    as_of(f"{prefix}-updated"),
                ],
            ),
        ],
    )


def clock_tick(prefix: str) -> dcc.Interval:
    """The browser's once-a-second tick that drives the clock (``<prefix>-clock-tick``)."""
    return dcc.Interval(id=f"{prefix}-clock-tick", interval=1000, n_intervals=0)
