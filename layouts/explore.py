"""/explore: the shift leaders' drill-down (docs/explore.md). Only Dash components, no I/O.

The page's state is the URL's query string (``dashboard.explore.Selection``): the filter
controls start from it here, and callbacks/explore.py fills everything else from it. Every
text from the database reaches the page as a Dash prop (rendered by React as text); nothing
uses markdown or raw HTML.
"""

from __future__ import annotations

from typing import Any, Sequence

import dash_ag_grid as dag
import dash_leaflet as dl
from dash import dcc, html

from dashboard.explore import (
    COLUMNS,
    DEFAULT_RANKING,
    FLAGS,
    RANKINGS,
    STAGE_OPTIONS,
    WINDOWS,
    Selection,
)
from dashboard.settings import Settings
from dashboard.vocab import Kind, Source

from .live import PLACEHOLDER, kpi_strip
from .userbar import user_bar
from .wall import LOCALE_TEXT, city_map

TITLE = "案件钻取分析"

# (key, label, what it covers): the KPI strip.
KPIS: tuple[tuple[str, str, str], ...] = (
    ("total", "案件总数", "所选范围"),
    ("reported", "上报", "时间范围内"),
    ("closed", "结案", "时间范围内"),
    ("open", "在办", "当前"),
    ("overdue", "超期", "当前"),
    ("due_soon", "临期", "当前"),
    ("urgent", "急件", "在办"),
    ("on_time_close_rate", "按期结案率", "时间范围内"),
)

# AG Grid built-in texts for filters and menus, in Chinese.
GRID_LOCALE = {
    **LOCALE_TEXT,
    "noRowsToShow": "没有符合条件的案件",
    "filterOoo": "筛选…", "equals": "等于", "notEqual": "不等于", "contains": "包含",
    "notContains": "不包含", "startsWith": "开头是", "endsWith": "结尾是", "blank": "为空",
    "notBlank": "不为空", "andCondition": "并且", "orCondition": "或者", "applyFilter": "应用",
    "resetFilter": "重置", "clearFilter": "清除", "cancelFilter": "取消", "searchOoo": "搜索…",
    "selectAll": "全选", "sortAscending": "升序", "sortDescending": "降序",
    "lessThan": "小于", "greaterThan": "大于", "inRange": "介于",
    "lessThanOrEqual": "小于等于", "greaterThanOrEqual": "大于等于",
    "pageSizeSelectorLabel": "每页", "before": "早于", "after": "晚于", "columnFilter": "列筛选", "ariaFilterValue": "筛选值",
}

# dcc.Dropdown's own texts (its search box, clear buttons), in Chinese.
DROPDOWN_LABELS = {"search": "搜索", "clear_search": "清除搜索", "clear_selection": "清除选择",
                   "no_options_found": "没有匹配的选项", "select_all": "全选", "deselect_all": "全不选"}

# Column widths (flex) of the case table; long texts get an ellipsis and a tooltip.
_FLEX = {"case_id": 1.3, "number": 1.2, "status": 0.6, "stage": 0.8, "kind": 0.55, "major": 1.0,
         "minor": 1.1, "source": 0.9, "urgency": 0.6, "district": 0.8, "street": 0.9, "community": 0.9,
         "grid": 1.3, "unit": 1.2, "reported_at": 1.1, "deadline_at": 1.1, "closed_at": 1.1,
         "address": 1.3, "description": 2.2}
_HIDDEN = {"case_id", "kind", "urgency", "district", "closed_at", "address"}

TABLE_COLUMNS: list[dict[str, Any]] = [
    {
        "field": key, "headerName": label, "flex": _FLEX.get(key, 1), "minWidth": 70,
        "hide": key in _HIDDEN, "tooltipField": key if key in ("description", "address", "unit", "minor") else None,
        **({"cellClassRules": {"explore-late": "params.value === '超期'",
                               "explore-soon": "params.value === '临期'"}} if key == "status" else {}),
    }
    for key, label in COLUMNS
]


def _options(items: dict[str, str] | Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    pairs = items.items() if isinstance(items, dict) else items
    return [{"label": label, "value": value} for value, label in pairs]


def _dropdown(key: str, label: str, options: list[dict[str, str]], value: str | None,
              placeholder: str = "全部", clearable: bool = True, wide: bool = False) -> html.Div:
    return html.Div(className="explore-filter" + (" explore-filter--wide" if wide else ""), children=[
        html.Label(label, htmlFor=f"explore-f-{key}", className="explore-filter__label"),
        dcc.Dropdown(id=f"explore-f-{key}", options=options, value=value, placeholder=placeholder,
                     clearable=clearable, searchable=True, className="explore-dropdown",
                     labels=DROPDOWN_LABELS, optionHeight=32, maxHeight=360, search_value=None),
    ])


def layout(settings: Settings, query: str = "") -> html.Div:
    """The whole /explore page; ``query`` is the URL's query string (state lives in the URL)."""
    sel = Selection.lenient(query)
    keep = lambda v: [{"label": v, "value": v}] if v else []  # noqa: E731 - filled by the callback
    return html.Div(
        id="explore-root",
        className="gh-page explore",
        children=[
            dcc.Location(id="explore-url", refresh=False),
            html.Header(className="gh-header explore-header", children=[
                html.Div(className="gh-header__titles", children=[
                    html.Div(className="gh-header__mark", **{"aria-hidden": "true"}),
                    html.H1(className="gh-header__title", children=[
                        html.Span(settings.city_name, className="gh-header__city"),
                        html.Span(TITLE, className="gh-header__sub"),
                    ]),
                ]),
                html.Nav(id="explore-crumbs", className="explore-crumbs", **{"aria-label": "区域层级"},
                         children=[html.Span(PLACEHOLDER)]),
                html.Div(className="explore-header__right", children=[
                    # The user's scope; who is signed in (name, role) and 退出 are the user bar's.
                    html.Span(id="explore-who", className="explore-who"),
                    html.Span(id="explore-clock", className="explore-clock", children=PLACEHOLDER),
                    html.Span(className="gh-updated", children=[
                        "数据时间 ", html.Span(id="explore-updated", children=PLACEHOLDER)]),
                    html.Button("刷新", id="explore-refresh", className="explore-btn", n_clicks=0),
                ]),
                user_bar(),  # the signed-in user and 退出 (a POST form with the CSRF token)
            ]),
            # Phones only (explore.css): the filters fold away under this button.
            html.Button("筛选", id="explore-filters-toggle", className="explore-btn explore-filters-toggle",
                        n_clicks=0, type="button", **{"aria-controls": "explore-filters"}),
            html.Section(id="explore-filters", className="explore-filters", **{"aria-label": "筛选条件"}, children=[
                _dropdown("window", "时间范围", _options(WINDOWS), sel.window, clearable=False),
                _dropdown("kind", "类别", _options(Kind.labels()), sel.kind),
                _dropdown("major", "大类", keep(sel.major), sel.major, wide=True),
                _dropdown("minor", "小类", keep(sel.minor), sel.minor, wide=True),
                _dropdown("source", "来源", _options(Source.labels()), sel.source),
                _dropdown("stage", "阶段", _options(STAGE_OPTIONS), sel.stage),
                _dropdown("unit", "处置单位", keep(sel.unit), sel.unit, wide=True),
                _dropdown("flag", "状态", _options(FLAGS), sel.flag),
                html.Div(className="explore-filter explore-filter--actions", children=[
                    dcc.Link("清除筛选", id="explore-reset", href="/explore", className="explore-link"),
                    html.A("导出CSV", id="explore-export-csv", href="/explore/export.csv",
                           className="explore-btn", download=""),
                    html.A("导出Excel", id="explore-export-xlsx", href="/explore/export.xlsx",
                           className="explore-btn", download=""),
                ]),
            ]),
            html.Div(id="explore-error", className="explore-error", role="alert", children=[]),
            kpi_strip("explore-kpi", KPIS, "explore", label="关键指标"),
            html.Main(className="explore-main", children=[
                html.Section(className="gh-panel explore-side", children=[
                    html.H2(id="explore-children-title", className="gh-panel__title", children="下级区域"),
                    html.Div(id="explore-children", className="explore-children", children=[]),
                    html.H2(className="gh-panel__title explore-subtitle", children=[
                        "热点网格", html.Span("超期多者在前", className="explore-note")]),
                    html.Div(id="explore-hot", className="explore-hot", children=[]),
                    html.Div(id="explore-hot-msg", className="explore-msg", role="status", children=[]),
                    html.Div(id="explore-notes", className="explore-notes", children=[]),
                ]),
                html.Section(className="gh-panel explore-mapbox", children=[
                    html.H2(className="gh-panel__title", children=[
                        html.Span(id="explore-map-title", children="网格分布"),
                        html.Span(id="explore-map-note", className="explore-note"),
                    ]),
                    html.Div(className="explore-map__frame", children=_map(settings)),
                ]),
                html.Section(className="gh-panel explore-charts", children=[
                    html.H2(id="explore-classes-title", className="gh-panel__title", children="类别构成"),
                    dcc.Graph(id="explore-classes", className="explore-graph explore-graph--classes",
                              config={"displayModeBar": False, "locale": "zh-CN"}),
                    html.H2(className="gh-panel__title", children="近7天趋势"),
                    dcc.Graph(id="explore-trend-days", className="explore-graph",
                              config={"displayModeBar": False}),
                    html.H2(className="gh-panel__title", children="近24小时趋势"),
                    dcc.Graph(id="explore-trend-hours", className="explore-graph",
                              config={"displayModeBar": False}),
                ]),
                html.Section(className="gh-panel explore-tablebox", children=[
                    html.H2(className="gh-panel__title", children=[
                        "案件列表", html.Span(id="explore-table-note", className="explore-note"),
                        html.Span("点击一行查看案件详情；表头可排序、筛选", className="explore-hint"),
                    ]),
                    dag.AgGrid(
                        id="explore-table",
                        className="explore-grid",
                        columnDefs=TABLE_COLUMNS,
                        rowData=[],
                        getRowId="params.data.case_id",
                        defaultColDef={"sortable": True, "filter": True, "resizable": True,
                                       "floatingFilter": False},
                        dashGridOptions={
                            "theme": _grid_theme(),
                            "localeText": GRID_LOCALE,
                            "animateRows": False,
                            "tooltipShowDelay": 300,
                            "rowSelection": {"mode": "singleRow", "checkboxes": False, "enableClickSelection": True},
                        },
                        style={"height": "100%", "width": "100%"},
                    ),
                ]),
                _evaluation_panel(sel),
            ]),
            html.Aside(id="explore-detail", className="explore-detail", children=[
                html.Div(className="explore-detail__head", children=[
                    html.H2("案件详情", className="gh-panel__title"),
                    html.Button("关闭", id="explore-detail-close", className="explore-btn", n_clicks=0),
                ]),
                html.Div(id="explore-detail-body", className="explore-detail__body", children=[]),
            ]),
            # Bumped after a hot-spot note is written: the notes and the hot list reload.
            dcc.Store(id="explore-notes-version", data=0),
            # The selection (all but the open case) whose figures the page shows.
            dcc.Store(id="explore-view-key", data=None),
            # The place, month and objects whose 综合考评 the ranking panel shows.
            dcc.Store(id="explore-ev-key", data=None),
            # A click on a region link ({"region": code}, set by explore.js): the navigate
            # callback merges it with the filters as the controls show them right now.
            dcc.Store(id="explore-go", data=None),
            dcc.Store(id="explore-config", data={"tz": settings.timezone}),
            dcc.Interval(id="explore-clock-tick", interval=1000, n_intervals=0),
        ],
    )


def _evaluation_panel(sel: Selection) -> html.Section:
    """综合考评: the month and the objects (URL ``month``, ``ranking``) and the ranking grid.

    Filled by callbacks/explore.py (``ranking``): dashboard.evaluation's figures of the
    place's child regions, its units or one position, ranked; region names link down."""
    def control(key: str, label: str, options: list[dict[str, str]], value: str | None) -> html.Div:
        return html.Div(className="explore-filter explore-ev__control", children=[
            html.Label(label, htmlFor=f"explore-ev-{key}", className="explore-filter__label"),
            dcc.Dropdown(id=f"explore-ev-{key}", options=options, value=value, clearable=False,
                         searchable=False, className="explore-dropdown", labels=DROPDOWN_LABELS,
                         optionHeight=32, maxHeight=360),
        ])

    months = [{"label": sel.month, "value": sel.month}] if sel.month else []
    return html.Section(className="gh-panel explore-evalbox", **{"aria-label": "综合考评"}, children=[
        html.Div(className="explore-ev__head", children=[
            html.H2(className="gh-panel__title explore-ev__title", children=[
                "综合考评", html.Span(id="explore-ev-note", className="explore-note")]),
            html.Div(className="explore-ev__controls", children=[
                control("month", "考评月份", months, sel.month),
                control("ranking", "考评对象", [{"label": v, "value": k} for k, v in RANKINGS.items()],
                        sel.ranking or DEFAULT_RANKING),
            ]),
        ]),
        html.Div(id="explore-ev-msg", className="explore-msg explore-late", role="status", children=""),
        dag.AgGrid(
            id="explore-ev-grid",
            className="explore-grid explore-ev-grid",
            columnDefs=[],
            rowData=[],
            getRowId="params.data.id",
            defaultColDef={"sortable": True, "resizable": True, "wrapHeaderText": True, "autoHeaderHeight": True,
                           "suppressMovable": True},
            dashGridOptions={
                "theme": _grid_theme(),
                "localeText": {**GRID_LOCALE, "noRowsToShow": "暂无考评结果"},
                "animateRows": False,
                "tooltipShowDelay": 300,
            },
            style={"height": "100%", "width": "100%"},
        ),
    ])


def _grid_theme() -> dict[str, str]:
    return {"function": (
        "themeQuartz.withParams({"
        "backgroundColor: '#0a1526', foregroundColor: '#f1f6ff', headerBackgroundColor: '#0e1c33',"
        "headerTextColor: '#a9bbd6', borderColor: '#1d3458', oddRowBackgroundColor: '#0c182c',"
        "rowHoverColor: '#13294a', selectedRowBackgroundColor: '#173a66', fontFamily: 'inherit',"
        "fontSize: 'var(--explore-grid-font)', headerFontSize: 'var(--explore-grid-font)',"
        "rowHeight: 'var(--explore-row)', headerHeight: 'var(--explore-row)',"
        "wrapperBorderRadius: '0px', browserColorScheme: 'dark'})"
    )}


def _map(settings: Settings) -> dl.MapContainer:
    layers: list[Any] = [
        dl.GeoJSON(id="explore-map-outline", data=None, interactive=False,
                   style={"variable": "gridhall_explore.outlineStyle"}),
        dl.GeoJSON(id="explore-map-layer", data=None, interactive=True,
                   style={"variable": "gridhall_explore.gridStyle"},
                   pointToLayer={"variable": "gridhall_explore.pointToLayer"},
                   onEachFeature={"variable": "gridhall_explore.onFeature"},
                   hideout={"max": 1, "mode": "grids"}),
        # Past MAP_CLUSTER_FROM points the same points go here instead, clustered (supercluster).
        dl.GeoJSON(id="explore-map-cluster", data=None, interactive=True, cluster=True,
                   zoomToBoundsOnClick=True, superClusterOptions={"radius": 60},
                   pointToLayer={"variable": "gridhall_explore.pointToLayer"},
                   onEachFeature={"variable": "gridhall_explore.onFeature"},
                   hideout={"max": 1, "mode": "grid_points"}),
    ]
    # fitted to the place by the main callback (viewport)
    return city_map(settings, "explore-map", "explore-map", layers, zoomSnap=0.25)


__all__ = ["layout", "KPIS", "TABLE_COLUMNS", "TITLE"]
