"""/explore: the shift leaders' drill-down (docs/explore.md). Only Dash components, no I/O.

The page's state is the URL's query string (``dashboard.figures.selection.Selection``): the filter
controls start from it here, and callbacks/explore.py fills everything else from it: it
queries, then calls the ``render_*`` functions and figure builders below. Every text from the
database reaches the page as a Dash prop (rendered by React as text); nothing uses markdown
or raw HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import dash_ag_grid as dag
import dash_leaflet as dl
import plotly.graph_objects as go
from dash import dcc, html

from dashboard.figures import explore, hotspots, selection
from dashboard.figures.casedetail import CaseDetail
from dashboard.figures.devicealarms import AlarmCounts, DeviceAlarms
from dashboard.figures.evaluation import ObjectKind
from dashboard.figures.explore import COLUMNS
from dashboard.figures.riskmodel import CaseRisk
from dashboard.figures.selection import DEFAULT_RANKING, FLAGS, RANKINGS, STAGE_OPTIONS, WINDOWS, Selection
from dashboard.rules.alerts import AlertLevel
from dashboard.rules.evalspec import INDICATORS, INSUFFICIENT, LABELS
from dashboard.rules.lifecycle import Stage
from dashboard.rules.limits import UNITS
from dashboard.rules.vocab import UNLOCATED, UNLOCATED_LIST, Kind, Source, Urgency
from dashboard.settings import Settings

from .kit.basemap import city_map
from .kit.clock import as_of, clock_tick
from .kit.fmt import PLACEHOLDER, fmt_int, fmt_rate
from .kit.grid import LOCALE_TEXT, NO_TYPE_INFERENCE
from .kit.header import header
from .kit.props import attrs
from .kit.tiles import NOW, Kpi, kpi_strip

TITLE = "案件钻取分析"

# (key, label, what it covers): the KPI strip.
KPIS: tuple[Kpi, ...] = (
    ("total", "案件总数", "所选范围"),
    ("reported", Stage.REPORTED.label, "时间范围内"),
    ("closed", Stage.CLOSED.label, "时间范围内"),
    ("open", "在办", NOW),
    ("overdue", "超期", NOW),
    ("due_soon", "临期", NOW),
    ("urgent", "急件", "在办"),
    ("on_time_close_rate", LABELS["region"]["on_time_close_rate"], "时间范围内"),
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
    "pageSizeSelectorLabel": "每页", "before": "早于", "after": "晚于", "columnFilter": "列筛选",
    "ariaFilterValue": "筛选值",
}

# dcc.Dropdown's own texts (its search box, clear buttons), in Chinese.
DROPDOWN_LABELS: dcc.Dropdown.Labels = {"search": "搜索", "clear_search": "清除搜索", "clear_selection": "清除选择",
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


def layout(settings: Settings, query: str = "", *, city: str = "", screens: bool = False) -> html.Div:
    """The whole /explore page; ``query`` is the URL's query string (state lives in the URL);
    ``city`` the city's name for the header; ``screens``: offer the link to /screens (the
    viewer may open it; the guard decides all the same)."""
    sel = Selection.lenient(query)
    keep = lambda v: [{"label": v, "value": v}] if v else []  # noqa: E731 - filled by the callback
    return html.Div(
        id="explore-root",
        className="gh-page explore",
        children=[
            dcc.Location(id="explore-url", refresh=False),
            header(
                city, TITLE,
                html.Nav(id="explore-crumbs", className="explore-crumbs", **attrs({"aria-label": "区域层级"}),
                         children=[html.Span(PLACEHOLDER)]),
                html.Div(className="explore-header__right", children=[
                    # The user's scope; who is signed in (name, role) and 退出 are the user bar's.
                    html.Span(id="explore-who", className="explore-who"),
                    html.Span(id="explore-clock", className="explore-clock", children=PLACEHOLDER),
                    as_of("explore-updated", "数据时间 "),
                    html.Button("刷新", id="explore-refresh", className="explore-btn", n_clicks=0),
                    *([html.A("大屏管理", href="/screens", className="explore-btn", id="explore-to-screens")]
                      if screens else []),
                ]),
                modifier="explore-header",
            ),
            # Phones only (explore.css): the filters fold away under this button.
            html.Button("筛选", id="explore-filters-toggle", className="explore-btn explore-filters-toggle",
                        n_clicks=0, type="button", **attrs({"aria-controls": "explore-filters"})),
            html.Section(id="explore-filters", className="explore-filters", **attrs({"aria-label": "筛选条件"}),
                         children=[
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
                    # 待定位: open cases with no grid, for city-scope users at the city (callbacks).
                    html.Div(id="explore-unlocated-box", className="explore-unlocated", children=[
                        html.H2(className="gh-panel__title explore-subtitle", children=[
                            UNLOCATED_LIST, html.Span(id="explore-unlocated-note", className="explore-note")]),
                        html.Div(id="explore-unlocated", className="explore-unlocated__body", children=[]),
                    ]),
                    html.H2(className="gh-panel__title explore-subtitle", children=[
                        "热点网格", html.Span("超期多者在前", className="explore-note")]),
                    html.Div(id="explore-hot", className="explore-hot", children=[]),
                    html.Div(id="explore-hot-msg", className="explore-msg", role="status", children=[]),
                    html.Div(id="explore-notes", className="explore-notes", children=[]),
                    # 设备告警统计: video/IoT alarm counters, shown when the selection has alarm cases.
                    html.Div(id="explore-devices-box", className="explore-devices", children=[
                        html.H2(className="gh-panel__title explore-subtitle", children=[
                            DEVICES_TITLE, html.Span(id="explore-devices-note", className="explore-note")]),
                        html.Div(id="explore-devices", className="explore-devices__body", children=[]),
                    ]),
                    replay_box(),
                    surges_box(),
                    handover_box(),
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
                                       "floatingFilter": False, **NO_TYPE_INFERENCE},
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
            dcc.Store(id="explore-config", data={"tz": settings.tz.key}),
            clock_tick("explore"),
        ],
    )


def _evaluation_panel(sel: Selection) -> html.Section:
    """综合考评: the month and the objects (URL ``month``, ``ranking``) and the ranking grid.

    Filled by callbacks/explore.py (``ranking``): dashboard.figures.evaluation's figures of the
    place's child regions, its units or one position, ranked; region names link down."""
    def control(key: str, label: str, options: list[dict[str, str]], value: str | None) -> html.Div:
        return html.Div(className="explore-filter explore-ev__control", children=[
            html.Label(label, htmlFor=f"explore-ev-{key}", className="explore-filter__label"),
            dcc.Dropdown(id=f"explore-ev-{key}", options=options, value=value, clearable=False,
                         searchable=False, className="explore-dropdown", labels=DROPDOWN_LABELS,
                         optionHeight=32, maxHeight=360),
        ])

    months = [{"label": sel.month, "value": sel.month}] if sel.month else []
    return html.Section(className="gh-panel explore-evalbox", **attrs({"aria-label": "综合考评"}), children=[
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
                           "suppressMovable": True, **NO_TYPE_INFERENCE},
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



# -- rendering (text only: every string is a Dash prop) ------------------------------------------
MONTHS_BACK = 24  # months offered by the month selector (an older one from a link is added)
CHART_BG = "#0a1526"
_FONT = {"family": "Noto Sans CJK SC, Source Han Sans SC, Microsoft YaHei, sans-serif", "color": "#d8e4f5"}


def render_crumbs(place: explore.Place, sel: selection.Selection) -> list[Any]:
    out: list[Any] = []
    last = len(place.crumbs) - 1
    for i, c in enumerate(place.crumbs):
        if i:
            out.append(html.Span("›", className="explore-crumb__sep", **attrs({"aria-hidden": "true"})))
        label = [html.Span(c.level_label, className="explore-crumb__level"), html.Span(c.name)]
        if i == last:
            out.append(html.Span(label, className="explore-crumb is-current", **attrs({"aria-current": "page"})))
        else:
            target = None if c.level in ("city",) or i == 0 else c.code
            out.append(region_link(label, sel, target, "explore-crumb"))
    return out


def region_link(children: Any, sel: selection.Selection, region: str | None, class_name: str) -> dcc.Link:
    """A link to ``region`` (None: the scope's root) with the selection's filters.

    The href serves a new tab and a copied link. A plain click is taken over by explore.js
    (class ``explore-go``; the region is the href's): it goes through the navigate callback,
    which takes the filters from the controls as they are at the click, so a filter changed
    just before is never dropped while this link still carries the previous filters.
    """
    return dcc.Link(children, href=sel.at(region).href(), className=f"{class_name} explore-go")


def children_title(level: str) -> str:
    return {"city": "各区", "district": "各街道", "street": "各社区", "community": "各网格", "grid": "网格"}.get(
        level, "下级区域")


def render_children(kids: list[explore.ChildRow], sel: selection.Selection) -> Any:
    if not kids:
        return html.Div("已是最小单元（网格）", className="gh-empty")
    head = html.Div(className="explore-row explore-row--head", children=[
        html.Span("名称"), html.Span("案件"), html.Span("在办"), html.Span("超期")])
    rows = [region_link([html.Span(k.name, className="explore-row__name", title=f"{k.name}（{k.code}）"),
                         html.Span(fmt_int(k.total)), html.Span(fmt_int(k.open)),
                         html.Span(fmt_int(k.overdue), className="explore-late" if k.overdue else "")],
                        sel, k.code, "explore-row explore-child")
            for k in kids]
    return [head, html.Div(className="explore-rows", children=rows)]


def render_hot(spots: list[explore.HotGrid], acks: dict[str, hotspots.NoteView], sel: selection.Selection,
               writes: bool, tz: Any) -> Any:
    if not spots:
        return html.Div("暂无", className="gh-empty")
    items = []
    for rank, s in enumerate(spots, start=1):
        ack = acks.get(s.code)
        status = (html.Span(f"已确认 · {ack.by} {ack.at.astimezone(tz):%H:%M}", className="explore-ack")
                  if ack else html.Span("未确认", className="explore-unack"))
        items.append(html.Li(className="explore-hot__item", children=[
            html.Span(str(rank), className="explore-hot__rank"),
            region_link([html.Span(s.place or "未登记社区", className="explore-hot__place"),
                         html.Span(s.code, className="explore-hot__code")], sel, s.code, "explore-hot__who"),
            html.Span(f"{s.total}件", className="explore-hot__value"),
            html.Span(f"超期{s.overdue}", className="explore-late" if s.overdue else "explore-muted"),
            status,
            *([html.Button("确认热点", id={"type": "explore-hot-ack", "grid": s.code}, n_clicks=0,
                           className="explore-btn explore-btn--small")] if writes and not ack else []),
        ]))
    return html.Ol(items, className="explore-hot__list")


def unlocated_note(u: explore.Unlocated) -> str:
    """The 待定位 title's note: how many, and how many are listed."""
    return "无网格的在办案件 · " + shown_note(len(u.rows), u.total, "件")


DEVICES_TITLE = "设备告警统计"


def devices_note(d: DeviceAlarms) -> str:
    return f"{fmt_int(d.device_total)} 台设备 · 告警 {fmt_int(d.alarms)} 次 · 案件 {fmt_int(d.cases)} 件"


def render_devices(d: DeviceAlarms) -> Any:
    """设备告警统计: the devices with the most alarms, then every alarm type (docs/sources.md)."""
    def table(caption: str, first: str, rows: tuple[AlarmCounts, ...], device: bool) -> Any:
        head = html.Tr([html.Th(first, scope="col"), html.Th("告警", scope="col"), html.Th("案件", scope="col"),
                        html.Th("核实后作废", scope="col"), html.Th("误报率", scope="col")])
        body = []
        for r in rows:
            name = r.name or r.key
            who = [html.Span(name, className="explore-devices__name", title=r.key),
                   html.Span(f"{r.kind} {r.key}" if device else r.key, className="explore-devices__code")]
            body.append(html.Tr([html.Th(who, scope="row"), html.Td(fmt_int(r.alarms)), html.Td(fmt_int(r.cases)),
                                 html.Td(fmt_int(r.false_alarms)), html.Td(fmt_rate(r.false_rate))]))
        return html.Table(className="explore-devices__table", children=[
            html.Caption(caption), html.Thead(head), html.Tbody(body)])
    if not d.devices:
        return html.Div("暂无", className="gh-empty")
    return [table("告警最多的设备", "设备", d.devices, True), table("按告警类型", "告警类型", d.types, False)]


def render_unlocated(u: explore.Unlocated, sel: selection.Selection) -> Any:
    """The 待定位 list: each case a link that opens its detail (class explore-case: explore.js
    takes a plain click through the navigate callback, like the region links)."""
    if not u.rows:
        return html.Div("暂无", className="gh-empty")
    items = []
    for c in u.rows:
        where = c.address or (f"坐标 {c.point}" if c.point else "无地址和坐标")
        items.append(html.Li(className="explore-unlocated__item", children=dcc.Link(
            href=sel.with_case(c.case_id).href(), className="explore-unlocated__link explore-case",
            title=c.description or c.case_id, children=[
                html.Span(className="explore-unlocated__head", children=[
                    html.Span(c.number or c.case_id, className="explore-unlocated__id"),
                    html.Span(c.status, className="explore-tag explore-tag--late" if c.status == "超期" else
                              "explore-tag explore-tag--soon") if c.status else None,
                    html.Span(c.stage, className="explore-muted"),
                    html.Span(c.reported_at, className="explore-unlocated__at"),
                ]),
                html.Span(where, className="explore-unlocated__where"),
                html.Span(c.description or c.klass or "—", className="explore-unlocated__desc"),
            ])))
    return html.Ul(items, className="explore-unlocated__list")


def render_notes(notes: list[hotspots.NoteView], grid_code: str | None, writes: bool, tz: Any) -> Any:
    parts: list[Any] = []
    if grid_code is not None:
        parts.append(html.H3(f"网格 {grid_code} · 热点确认与批注", className="explore-notes__title"))
        if writes:
            parts.append(html.Div(className="explore-notes__form", children=[
                html.Button("确认热点", id={"type": "explore-ack", "grid": grid_code}, n_clicks=0,
                            className="explore-btn explore-btn--primary"),
                dcc.Textarea(id={"type": "explore-note-text", "grid": grid_code}, value="",
                             maxLength=hotspots.MAX_NOTE, placeholder="批注（最多500字）",
                             className="explore-textarea"),
                html.Button("保存批注", id={"type": "explore-note-save", "grid": grid_code}, n_clicks=0,
                            className="explore-btn"),
            ]))
    else:
        parts.append(html.H3("热点网格的确认与批注", className="explore-notes__title"))
    if not notes:
        parts.append(html.Div("暂无确认或批注", className="gh-empty"))
    else:
        parts.append(html.Ul(className="explore-notes__list", children=[
            html.Li(className="explore-notes__item", children=[
                html.Span(n.kind_label, className=f"explore-tag explore-tag--{n.kind}"),
                html.Span(n.grid_code, className="explore-notes__grid") if grid_code is None else None,
                html.Span(n.by, className="explore-notes__by"),
                html.Span(n.at.astimezone(tz).strftime("%m-%d %H:%M"), className="explore-notes__at"),
                html.Div(n.note, className="explore-notes__text") if n.note else None,
            ]) for n in notes]))
    return parts


def _fmt_time(value: datetime | None, tz: Any) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if value is not None else "—"


def _minutes(value: float) -> str:
    value = abs(value)
    if value >= 60 * 24:
        return f"{value / 60 / 24:.1f}天"
    if value >= 60:
        return f"{value / 60:.1f}小时"
    return f"{value:.0f}分钟"


def risk_text(risk: CaseRisk | None) -> str:
    """超期风险 as the case detail shows it: the probability and its main reasons (docs/foresight.md)."""
    if risk is None:
        return "—"
    if risk.overdue:
        return "已超期"
    reasons = "、".join(f"{label} +{100 * drop:.0f}点" for label, drop in risk.reasons)
    why = f"（主要因素：{reasons}）" if reasons else ""
    return f"{100 * risk.probability:.0f}%{why} · 模型第{risk.version}版"


def render_detail(d: CaseDetail, sel: selection.Selection, tz: Any, risk: CaseRisk | None = None) -> list[Any]:
    if d.overdue:
        status = html.Span("超期", className="explore-tag explore-tag--late")
    elif d.due_soon:
        status = html.Span(f"临期 · 剩余{_minutes(d.remaining_minutes or 0)}",
                           className="explore-tag explore-tag--soon")
    elif d.remaining_minutes is not None:
        status = html.Span(f"剩余{_minutes(d.remaining_minutes)}", className="explore-tag")
    else:
        status = html.Span(d.stage_label or "—", className="explore-tag")
    fields = [
        ("案件编号", d.number or "—"), ("案件标识", d.case_id),
        ("类别", f"{Kind.labels().get(d.kind or '', d.kind or '—')} · {d.major_name or '—'} · {d.minor_name or '—'}"),
        ("来源", Source.labels().get(d.source or "", d.source or "—")),
        ("紧急程度", Urgency.labels().get(d.urgency, d.urgency)),
        ("当前阶段", d.stage_label or "—"), ("当前环节时限", _fmt_time(d.deadline_at, tz) if d.clock_stage else "—"),
        ("位置", " / ".join(x for x in (d.district, d.street, d.community, d.grid_code or "") if x) or (
            UNLOCATED + (f"（坐标 {d.lon:.6f}, {d.lat:.6f} 不在任何网格内）" if d.lon is not None and d.lat is not None
                         else ""))),
        ("地址", d.address or "—"), ("处置单位", d.unit_name or "—"),
        ("上报时间", _fmt_time(d.reported_at, tz)), ("结案时间", _fmt_time(d.closed_at, tz)),
        ("返工/延期", f"{d.rework_count} / {d.extension_count}"),
        ("超期风险", risk_text(risk)),
    ]
    deadlines = html.Table(className="explore-table", children=[
        html.Thead(html.Tr([html.Th(h) for h in ("环节", "开始", "时限", "截止", "依据", "结果")])),
        html.Tbody([html.Tr([
            html.Td(s.label), html.Td(_fmt_time(s.started_at, tz)),
            html.Td(f"{s.limit:g}{UNITS.get(s.limit_unit, s.limit_unit)}"), html.Td(_fmt_time(s.deadline_at, tz)),
            html.Td("来件时限" if s.deadline_source == "source" else "时限标准"),
            html.Td("进行中" if s.running else ("按时" if s.on_time else ("超时" if s.on_time is False else "—")),
                    className="explore-late" if s.on_time is False else ""),
        ]) for s in d.deadlines] or [html.Tr(html.Td("无", colSpan=6))]),
    ])
    items: list[tuple[datetime, int, Any]] = [(e.occurred_at, 0, html.Li(
        className="explore-timeline__item" + (" is-skipped" if e.problem else ""), children=[
            html.Span(_fmt_time(e.occurred_at, tz), className="explore-timeline__at"),
            html.Span(e.label, className="explore-timeline__type"),
            html.Span(f"操作人：{e.actor or '—'}", className="explore-timeline__actor"),
            html.Span(f"来源：{Source.labels().get(e.source or '', e.source or '—')}", className="explore-muted"),
            html.Div(f"未生效：{e.problem}", className="explore-late") if e.problem else None,
        ])) for e in d.events]
    # The alerts' steps (预警, 升级, 确认, 解除) among the events, each after the events of its instant.
    items += [(a.at, 1, html.Li(className=f"explore-timeline__item is-alert is-{a.step}", children=[
        html.Span(_fmt_time(a.at, tz), className="explore-timeline__at"),
        html.Span(a.label, className="explore-timeline__type"),
        html.Span(f"{a.reason_label} · {AlertLevel(a.level).label}", className="explore-timeline__actor"),
        html.Span(f"确认人：{a.actor}", className="explore-muted") if a.actor else None,
    ])) for a in d.alerts]
    timeline = html.Ol(className="explore-timeline", children=[
        li for _, _, li in sorted(items, key=lambda x: (x[0], x[1]))] or [html.Li("暂无事件", className="gh-empty")])
    grid_link = [region_link(f"进入网格 {d.grid_code}", sel, d.grid_code, "explore-link")] if d.grid_code else []
    return [
        html.Div(className="explore-detail__status", children=[status, *grid_link]),
        html.H3("问题描述", className="explore-detail__h"),
        html.P(d.description or "—", className="explore-detail__desc"),
        html.Dl(className="explore-fields", children=[x for k, v in fields for x in (html.Dt(k), html.Dd(v))]),
        html.H3("各环节时限", className="explore-detail__h"), deadlines,
        html.H3("办理过程", className="explore-detail__h"), timeline,
    ]


# -- 综合考评 table ----------------------------------------------------------------------------------
_NUMERIC = {"comparator": {"function": "exploreNumberOrder(valueA, valueB, nodeA, nodeB, isDescending)"},
            "type": "rightAligned"}
_GRADE_RULES = {f"explore-grade--{g}": f"params.value === '{g}'" for g in "ABCDE"}


def ranking_columns(kind: str | None) -> list[dict[str, Any]]:
    """The 综合考评 grid's columns: 名次, 名称 (both pinned), 综合指标值, 等级, every indicator of ``kind``."""
    region = kind in explore.CHILD_KIND.values()
    name: dict[str, Any] = {"field": "name", "headerName": "名称", "pinned": "left", "width": 140, "minWidth": 100,
                            "flex": None, "tooltipField": "id"}
    if region:
        name["cellRenderer"] = "ExploreRegionLink"  # explore.js: a region link (class explore-go)
    cols: list[dict[str, Any]] = [
        {"field": "rank", "headerName": "名次", "pinned": "left", "width": 96, "minWidth": 96, "flex": None,
         **_NUMERIC, "cellClassRules": {"explore-muted": f"params.value === '{INSUFFICIENT}'"}},
        name,
        {"field": "composite", "headerName": "综合指标值", "width": 108, "minWidth": 108, "flex": None,
         **_NUMERIC, "cellClass": "explore-composite"},
        {"field": "grade", "headerName": "等级", "width": 68, "minWidth": 68, "flex": None,
         "cellClass": "explore-grade", "cellClassRules": _GRADE_RULES},
    ]
    if kind is not None:
        for ind in INDICATORS[ObjectKind(kind).group]:
            cols.append({"field": ind.key, "headerName": ind.label, "flex": 1, **_NUMERIC,
                         "minWidth": 100 if ind.measure == "density" else 76})
    return cols


def month_options(this_month: str, wanted: str | None) -> list[dict[str, str]]:
    """The month selector: this month and the MONTHS_BACK before it, newest first (and ``wanted``)."""
    y, m = int(this_month[:4]), int(this_month[5:7])
    months = []
    for _ in range(MONTHS_BACK + 1):
        months.append(f"{y:04d}-{m:02d}")
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    if wanted and wanted not in months and wanted < this_month:
        months.append(wanted)
        months.sort(reverse=True)
    return [{"label": f"{int(v[:4])}年{int(v[5:])}月" + ("（本月）" if v == this_month else ""), "value": v}
            for v in months]


def ranking_options(level: str | None) -> list[dict[str, Any]]:
    children = {"city": "各区", "district": "各街道", "street": "各社区", "community": "各网格"}.get(level or "")
    return [{"label": (f"下级区域（{children}）" if key == selection.DEFAULT_RANKING and children else label),
             "value": key, "disabled": key == selection.DEFAULT_RANKING and level == "grid"}
            for key, label in selection.RANKINGS.items()]


def shown_note(shown: int, total: int, unit: str) -> str:
    if shown >= total:
        return f"共 {total:,} {unit}"
    return f"显示 {shown:,} / 共 {total:,} {unit}"


def map_note(mp: explore.MapData) -> str:
    if mp.mode == "cases":
        text = shown_note(mp.shown, mp.total, "件（有坐标）")
    elif mp.mode == "grid_points":
        text = (f"网格过多，显示有案件网格的中心点：{shown_note(mp.shown, mp.total, '个网格')}")
    else:
        text = f"共 {mp.total:,} 个网格"
    return text + ("，已聚合" if mp.clustered else "")


def _layout_base(height: int | None = None) -> dict[str, Any]:
    return dict(paper_bgcolor=CHART_BG, plot_bgcolor=CHART_BG, font={**_FONT, "size": 12},
                margin={"l": 44, "r": 12, "t": 24, "b": 36}, autosize=True,
                # above the plot, in the top margin: never over the bars
                legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0, "font": {"size": 12}},
                xaxis={"gridcolor": "#1d3458", "automargin": True}, yaxis={"gridcolor": "#1d3458", "automargin": True,
                                                                           "rangemode": "tozero"},
                separators=".,", **({"height": height} if height else {}))


_TICK_SIZE = 12


def _label_width(labels: list[str], size: int) -> int:
    """Pixels a label of ``labels`` takes at most: a CJK character is a square of the font size."""
    def width(text: str) -> float:
        return sum(1.0 if ord(ch) > 0x2E80 else 0.6 for ch in text) * size
    return int(max((width(t) for t in labels), default=0) + 0.5)


def class_figure(classes: list[explore.ClassCount]) -> go.Figure:
    top = classes[:10][::-1]
    names = [c.name or c.code for c in top]
    fig = go.Figure(go.Bar(
        x=[c.count for c in top], y=names, orientation="h",
        marker={"color": "#3fb8ff"}, text=[f"{c.count:,}" for c in top], textposition="outside",
        textfont={"size": _TICK_SIZE, "color": _FONT["color"]}, cliponaxis=False,
        hovertemplate="%{y}：%{x} 件<extra></extra>"))
    fig.update_layout(**_layout_base())
    # Whole class names (up to 14 characters in the standard schemes): the left margin is
    # made wide enough for the longest one before plotly measures (automargin then only
    # grows it), so a label is never cut while the fonts are still loading.
    # the counts stand right of the bars: room for them in the right margin
    fig.update_layout(margin={"l": 10 + _label_width(names, _TICK_SIZE), "r": 44, "t": 4, "b": 24},
                      yaxis={"automargin": True, "gridcolor": CHART_BG, "ticklabelstandoff": 4,
                             "tickfont": {"size": _TICK_SIZE},
                             # every bar its label (plotly would skip every other one)
                             "tickmode": "array", "tickvals": names, "ticktext": names})
    if not classes:
        fig.add_annotation(text="暂无案件", showarrow=False, font={**_FONT, "size": 16}, xref="paper", yref="paper")
    return fig


def trend_figure(points: Any, axis: str) -> go.Figure:
    labels = [p.label for p in points]
    reported, closed = Stage.REPORTED.label, Stage.CLOSED.label
    fig = go.Figure([
        go.Bar(x=labels, y=[p.reported for p in points], name=reported, marker={"color": "#3fb8ff"},
               hovertemplate=f"%{{x}} {reported} %{{y}} 件<extra></extra>"),
        go.Scatter(x=labels, y=[p.closed for p in points], name=closed, mode="lines+markers",
                   line={"color": "#36e2a4", "width": 2}, hovertemplate=f"%{{x}} {closed} %{{y}} 件<extra></extra>"),
    ])
    fig.update_layout(**_layout_base())
    # upright labels ("06时"), every other one when there are many (24 hours)
    # category axis: plotly would read a day label such as "12-01" as a date (Jan 2012)
    fig.update_layout(bargap=0.25, xaxis={"type": "category", "tickangle": 0, "nticks": 12})
    return fig


__all__ = ["layout", "KPIS", "TABLE_COLUMNS", "TITLE", "render_crumbs", "region_link", "children_title",
           "render_children", "render_hot", "render_notes", "render_detail", "ranking_columns", "month_options",
           "ranking_options", "shown_note", "map_note", "class_figure", "trend_figure", "render_unlocated",
           "unlocated_note", "replay_box", "replay_controls", "replay_day_bounds",
           "replay_marks", "replay_minute_text", "REPLAY_SPEEDS",
           "REPLAY_OPEN_TEXT"]


# 回放 (docs/explore.md): open the wall as it stood at a chosen past minute, played at a chosen speed.
REPLAY_SPEEDS = (1, 10, 60)
REPLAY_OPEN_TEXT = "在大屏回放"
DAY_MINUTES = 24 * 60


def replay_box() -> html.Div:
    """回放: its controls are filled by callbacks/explore.py for the roles that may replay the wall
    (``auth.policy.REPLAY``); for any other role the box stays empty and hidden."""
    return html.Div(id="explore-replay-box", className="explore-handover-box explore-replay-box", children=[
        html.Div(id="explore-replay", children=[]),
    ])


def replay_minute_text(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def replay_marks(lo: int, hi: int) -> dict[int, str]:
    """The slider's marks over [lo, hi] (minutes of the day): every six hours, and both ends."""
    marks = {m: replay_minute_text(m) for m in range(0, DAY_MINUTES, 360) if lo + 150 <= m <= hi - 150}
    return {lo: replay_minute_text(lo), **marks, hi: replay_minute_text(hi)}


def replay_day_bounds(first: datetime, last: datetime, day: str) -> tuple[int, int]:
    """The minutes of ``day`` (ISO date, city time) a replay may choose: from ``first`` on, up to ``last``."""
    lo = first.hour * 60 + first.minute if first.date().isoformat() == day else 0
    hi = last.hour * 60 + last.minute if last.date().isoformat() == day else DAY_MINUTES - 1
    return lo, max(lo, hi)


def replay_controls(first: datetime, last: datetime, note: str) -> list[Any]:
    """The 回放 controls between ``first`` and ``last`` (city-time minutes): a day, a minute of it on
    a slider, a speed, and the link that opens the replayed wall (its href set by the callback)."""
    lo, hi = replay_day_bounds(first, last, last.date().isoformat())
    start = max(lo, hi - 60)  # an hour ago, by default
    return [
        html.H2(className="gh-panel__title explore-subtitle", children=[
            "回放", html.Span("历史时刻的大屏 · 只读", className="explore-note")]),
        html.Div(className="explore-replay__row", children=[
            dcc.DatePickerSingle(id="explore-replay-date", date=last.date().isoformat(),
                                 min_date_allowed=first.date().isoformat(), max_date_allowed=last.date().isoformat(),
                                 display_format="YYYY-MM-DD", first_day_of_week=1, clearable=False,
                                 className="explore-replay__date"),
            html.Span(id="explore-replay-minute-text", className="explore-replay__minute",
                      children=replay_minute_text(start)),
        ]),
        html.Div(className="explore-replay__slider", children=dcc.Slider(
            id="explore-replay-minute", min=lo, max=hi, step=1, value=start, marks=replay_marks(lo, hi),
            updatemode="drag", allow_direct_input=False)),
        html.Div(className="explore-replay__row", children=[
            dcc.RadioItems(id="explore-replay-speed", className="explore-replay__speed",
                           options=[{"label": f"{s}×", "value": s} for s in REPLAY_SPEEDS], value=REPLAY_SPEEDS[0],
                           inline=True),
            html.A(REPLAY_OPEN_TEXT, id="explore-replay-open", className="explore-btn explore-replay__open",
                   target="_blank", rel="noopener", href=""),
        ]),
        html.Div(id="explore-replay-note", className="explore-note explore-replay__note", children=note),
        dcc.Store(id="explore-replay-bounds", data={"first": first.isoformat(), "last": last.isoformat()}),
    ]


def surges_box() -> html.Div:
    """突增预警 (docs/foresight.md): the surges of the last day in the viewer's scope (callbacks/surges.py)."""
    return html.Div(className="explore-handover-box is-on", children=[
        html.H2(className="gh-panel__title explore-subtitle", children=[
            "突增预警", html.Span("近 24 小时 · x 件 / 通常 y 件", className="explore-note")]),
        html.Div(id="explore-surges", className="explore-handover__list", children=[]),
    ])


def handover_box() -> html.Div:
    """交接班报告 (docs/handover.md): past shifts' reports and the current shift's notes; shown to
    city-scope viewers (callbacks/handover.py), the notes' editor to shift leads and admins only."""
    return html.Div(id="explore-handover-box", className="explore-handover-box", children=[
        html.H2(className="gh-panel__title explore-subtitle", children=[
            "交接班报告", html.Span("每班结束时生成", className="explore-note")]),
        html.Div(id="explore-handover", className="explore-handover__list", children=[]),
        # The notes editor: filled by callbacks/handover.py for shift leads and admins only.
        html.Div(id="explore-handover-editor", className="explore-handover__notes", children=[]),
        html.Span(id="explore-handover-msg", className="explore-msg", role="status", children=[]),
        dcc.Store(id="explore-handover-version", data=0),
    ])
