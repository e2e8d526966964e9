"""The interim "live counts" page: page skeleton and the fragments the refresh fills in.

Only Dash components are built here (no I/O): ``callbacks/live.py`` queries, then calls
the ``render_*`` functions. Every text goes through Dash props, which React renders as
text, so descriptions from the feed cannot inject markup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from dash import dcc, html

from dashboard.settings import Settings
from dashboard.store.queries import GridLoad, RecentEvent, StageCount, TodayCounts

from .userbar import user_bar

PAGE_TITLE = "数字化城市管理 · 实时态势"
REFRESH_MS = 2000
PLACEHOLDER = "—"

# KPI tiles: (id suffix, label, what the figure covers).
KPIS: tuple[tuple[str, str, str], ...] = (
    ("reported", "上报", "今日"),
    ("filed", "立案", "今日"),
    ("dispatched", "派遣", "今日"),
    ("disposing", "处置中", "当前"),
    ("closed", "结案", "今日"),
)

EVENT_COLUMNS = ("时间", "案件编号", "环节", "类别", "网格", "问题描述")


def attrs(props: Mapping[str, str]) -> dict[str, Any]:
    """Hyphenated HTML attributes (``aria-*``, ``data-*``) to spread into a Dash component.

    Dash accepts them as wildcard props, which its generated signatures cannot name; spreading
    a ``dict[str, str]`` would be checked against every typed keyword, so the spread is typed
    ``Any`` here, once.
    """
    return dict(props)


def page_title(city: str) -> str:
    """The browser tab's title of every page; ``city`` from ``dashboard.store.cityname``."""
    return f"{city}{PAGE_TITLE}"


def layout(settings: Settings, *, city: str = "") -> html.Div:
    """The whole page; figures start as placeholders and arrive with the first refresh."""
    return html.Div(
        id="live-root",
        className="gh-page",
        children=[
            html.Div(id="live-banner", className="gh-banner", role="alert", children=[]),
            # Raised in the browser when the server itself stops answering (layouts/assets/live.js):
            # the server-side banner cannot say so.
            html.Div(id="live-offline", className="gh-banner", role="alert", children=[]),
            header(settings, "live", PAGE_TITLE, city=city),
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
            # The clock ticks in the browser (clientside callback): no request per second.
            dcc.Interval(id="live-clock-tick", interval=1000, n_intervals=0),
            dcc.Store(id="live-config", data={"tz": settings.tz.key}),
        ],
    )


def header(settings: Settings, prefix: str, subtitle: str, middle: html.Div | None = None, *,
           city: str = "") -> html.Header:
    """The page header: city and title, an optional middle part, clock and 数据更新于.

    ``city`` is the city's name (``dashboard.store.cityname``; "" when it has none).

    Ids are ``<prefix>-clock``, ``<prefix>-date`` and ``<prefix>-updated`` (filled by callbacks).
    """
    return html.Header(
        className="gh-header",
        children=[
            html.Div(
                className="gh-header__titles",
                children=[
                    html.Div(className="gh-header__mark", **attrs({"aria-hidden": "true"})),
                    html.H1(
                        className="gh-header__title",
                        children=[
                            html.Span(city, className="gh-header__city"),
                            html.Span(subtitle, className="gh-header__sub"),
                        ],
                    ),
                ],
            ),
            *([middle] if middle is not None else []),
            html.Div(
                className="gh-header__time",
                children=[
                    html.Div(id=f"{prefix}-clock", className="gh-clock", children=PLACEHOLDER),
                    html.Div(
                        className="gh-header__meta",
                        children=[
                            html.Span(id=f"{prefix}-date", className="gh-date"),
                            html.Span(
                                className="gh-updated",
                                children=[
                                    "数据更新于 ",
                                    html.Span(id=f"{prefix}-updated", children=PLACEHOLDER),
                                ],
                            ),
                        ],
                    ),
                ],
            ),
            user_bar(),
        ],
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


def kpi_strip(prefix: str, kpis: Sequence[tuple[str, str, str]], modifier: str = "",
              label: str = "今日关键指标") -> html.Section:
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
def fmt_int(value: int | None) -> str:
    return PLACEHOLDER if value is None else f"{value:,}"


def fmt_rate(value: float | None) -> str:
    """A share in [0, 1] as a percentage; 100% without a decimal ("100.0%" does not fit a tile)."""
    if value is None:
        return PLACEHOLDER
    return "100%" if value >= 0.9995 else f"{100 * value:.1f}%"


def kpi_texts(kpis: Sequence[tuple[str, str, str]], values: Sequence[int | float | None]) -> list[str]:
    """Texts of the tiles of ``kpis``, in order; keys ending in ``_rate`` are shares in [0, 1]."""
    return [fmt_rate(value) if key.endswith("_rate") else fmt_int(None if value is None else int(value))
            for (key, _, _), value in zip(kpis, values, strict=False)]


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


def render_banner(message: str | None) -> tuple[list[html.Span], str]:
    """Children and className of the full-width stop banner (hidden when no message)."""
    if not message:
        return [], "gh-banner"
    return (
        [html.Span("数据已停止更新", className="gh-banner__title"), html.Span(message, className="gh-banner__detail")],
        "gh-banner is-on",
    )


def render_feed(parts: Sequence[tuple[str, str, bool]]) -> list[html.Span]:
    """The feed health line: (label, value, is_alarm) items."""
    return [
        html.Span(
            className="gh-feed__item" + (" is-alarm" if alarm else ""),
            children=[html.Span(label, className="gh-feed__label"), html.Span(value, className="gh-feed__value")],
        )
        for label, value, alarm in parts
    ]
