"""The interim "live counts" page: page skeleton and the fragments the refresh fills in.

Only Dash components are built here (no I/O): ``callbacks/live.py`` queries, then calls
the ``render_*`` functions. Every text goes through Dash props, which React renders as
text, so descriptions from the feed cannot inject markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from dash import dcc, html

from dashboard.settings import Settings
from dashboard.store.queries import GridLoad, RecentEvent, StageCount, TodayCounts

from .kit.clock import clock_tick, header_time
from .kit.fmt import PLACEHOLDER, fmt_int
from .kit.header import APP_TITLE, header
from .kit.health import banners
from .kit.tiles import LOOP_KPIS, kpi_strip

REFRESH_MS = 2000

# KPI tiles: (id suffix, label, what the figure covers): today's case loop.
KPIS = LOOP_KPIS

EVENT_COLUMNS = ("时间", "案件编号", "环节", "类别", "网格", "问题描述")


def layout(settings: Settings, *, city: str = "") -> html.Div:
    """The whole page; figures start as placeholders and arrive with the first refresh."""
    return html.Div(
        id="live-root",
        className="gh-page",
        children=[
            # live-offline is raised by layouts/assets/live.js.
            *banners("live"),
            header(city, APP_TITLE, header_time("live")),
            kpi_strip("kpi", KPIS),
            html.Main(
                className="gh-main",
                children=[
                    _panel("在办案件阶段分布", "live-stages", "gh-panel--stages"),
                    _panel("在办案件最多的网格 · 前十", "live-grids", "gh-panel--grids"),
                    _panel("最新案件动态", "live-events", "gh-panel--events"),
                ],
            ),
            html.Footer(
                className="gh-footer",
                children=[
                    html.Span("数据接入", className="gh-footer__title"),
                    html.Div(id="live-feed", className="gh-feed", children=PLACEHOLDER),
                ],
            ),
            # The server refresh; sends nothing back while the fingerprint is unchanged.
            dcc.Interval(id="live-tick", interval=REFRESH_MS, n_intervals=0),
            dcc.Store(id="live-fp", storage_type="memory"),
            clock_tick("live"),
            dcc.Store(id="live-config", data={"tz": settings.tz.key}),
        ],
    )


def _panel(title: str, body_id: str, modifier: str) -> html.Section:
    return html.Section(
        className=f"gh-panel {modifier}",
        children=[
            html.H2(title, className="gh-panel__title"),
            html.Div(
                id=body_id,
                className="gh-panel__body",
                children=html.Div("正在加载…", className="gh-empty"),
            ),
        ],
    )


# -- fragments filled by the refresh callback ---------------------------------------------
def kpi_values(counts: TodayCounts) -> list[str]:
    """Texts for the KPI tiles, in the order of ``KPIS``."""
    return [fmt_int(getattr(counts, key)) for key, _, _ in KPIS]


def render_stages(stages: Sequence[StageCount]) -> html.Div | list[html.Div]:
    if not any(s.count for s in stages):
        return html.Div("当前没有在办案件", className="gh-empty")
    peak = max(s.count for s in stages)
    return [
        html.Div(
            className=f"gh-bar gh-bar--{s.stage.value}" + (" is-zero" if not s.count else ""),
            children=[
                html.Span(s.label, className="gh-bar__label"),
                html.Div(
                    className="gh-bar__track",
                    children=html.Div(
                        className="gh-bar__fill",
                        style={"width": f"{(100 * s.count / peak) if peak else 0:.1f}%"},
                    ),
                ),
                html.Span(fmt_int(s.count), className="gh-bar__value"),
            ],
        )
        for s in stages
    ]


def render_grids(grids: Sequence[GridLoad]) -> html.Div | html.Ol:
    if not grids:
        # Open cases may exist without a grid (hotline reports without a location).
        return html.Div("暂无落在网格内的在办案件", className="gh-empty")
    peak = max(g.open_cases for g in grids) or 1
    items = []
    for rank, g in enumerate(grids, start=1):
        place = " · ".join(p for p in (g.street, g.community) if p) or "未登记所属社区"
        items.append(
            html.Li(
                className="gh-grid",
                children=[
                    html.Span(str(rank), className="gh-grid__rank"),
                    html.Div(
                        className="gh-grid__who",
                        children=[
                            html.Span(g.code, className="gh-grid__code"),
                            html.Span(place, className="gh-grid__place", title=place),
                        ],
                    ),
                    html.Span(fmt_int(g.open_cases), className="gh-grid__value"),
                    html.Div(
                        className="gh-grid__meter",
                        style={"width": f"{100 * g.open_cases / peak:.1f}%"},
                    ),
                ],
            )
        )
    return html.Ol(className="gh-grids", children=items)


def event_time(at: datetime, tz: tzinfo, now: datetime) -> str:
    """hh:mm:ss for today (local), MM-DD hh:mm for older events."""
    local = at.astimezone(tz)
    if local.date() == now.astimezone(tz).date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%m-%d %H:%M")


def render_events(events: Sequence[RecentEvent], tz: tzinfo, now: datetime) -> html.Div | html.Table:
    if not events:
        return html.Div("暂无案件动态", className="gh-empty")
    head = html.Thead(html.Tr([html.Th(c, className=f"gh-col-{i}") for i, c in enumerate(EVENT_COLUMNS)]))
    rows = []
    for e in events:
        cells = (
            event_time(e.occurred_at, tz, now),
            e.number or e.case_id,
            e.type_label,
            e.class_name or PLACEHOLDER,
            e.grid_code or PLACEHOLDER,
            e.description or PLACEHOLDER,
        )
        rows.append(
            html.Tr(
                className=f"gh-ev gh-ev--{e.type}",
                children=[
                    # title= shows the full text on hover when a cell is cut short.
                    html.Td(text, className=f"gh-col-{i}", title=text)
                    for i, text in enumerate(cells)
                ],
            )
        )
    return html.Table(className="gh-events", children=[head, html.Tbody(rows)])
