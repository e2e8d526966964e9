"""The leaders' read-only view (/view): KPIs, grid heatmap, areas, hot spots, unit ranking,
综合考评 (this month's evaluation of the sub-regions and units), overdue list — for a laptop and a
phone (390 px wide), in the user's own scope (属地).

Only Dash components are built here (no I/O): ``callbacks/view.py`` reads the figures with
``dashboard.figures.readapi`` (filtered by the signed-in user's scope), then calls the ``render_*``
functions. Every text reaches the page as a Dash prop, which React renders as text: a case
description cannot inject markup. The page holds **no control that changes anything**: the
only interactive elements are links (to /explore, and ``?metric=`` for the map) and the map's
pan and zoom. Grid geometry is not in the layout: it arrives once per page load through a
callback (compact, ``view-geo``) and the 30 s refresh only recolours cells
(``layouts/assets/view.js``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, quote

import dash_leaflet as dl
from dash import dcc, html

from dashboard.figures import heat
from dashboard.rules.evalspec import LABELS
from dashboard.settings import Settings

from .kit.basemap import city_map
from .kit.clock import as_of
from .kit.fmt import PLACEHOLDER
from .kit.header import header
from .kit.health import banners
from .kit.legend import legend
from .kit.props import attrs
from .kit.tiles import HALL_KPIS, NOW, Kpi, kpi_strip
from .kit.tiles import kpi_texts as tile_texts

VIEW_TITLE = "城市管理运行概况"
REFRESH_MS = 30_000  # the data refresh
WATCH_MS = 5_000  # the browser's own check that refreshes still arrive (clientside, no request)
OVERDUE_ROWS = 20  # the overdue list shows the first N (most overdue first), "显示 N / 共 M"
UNIT_ROWS = 15  # the unit ranking likewise
EVAL_ROWS = 30  # 综合考评: the first N of each ranking (ranked first, then 样本不足)
HOT_SPOTS = 10

# (key, label, scope): the wall's KPI strip, then 临期 and 在办 (readapi.summary has both).
KPIS: tuple[Kpi, ...] = (*HALL_KPIS, ("due_soon", "临期", NOW), ("open", "在办", NOW))

# Heatmap metrics of /view: {key: (label, unit)}; ``?metric=overdue`` picks the second. Two of
# the wall's (dashboard/figures/heat.py): the scoped read API has no per-grid new_hour.
METRICS: dict[str, tuple[str, str]] = heat.labels(("open", "overdue"))
DEFAULT_METRIC = "open"

# Where the drill-down goes: /explore reads these URL parameters.
EXPLORE = "/explore"
LEVEL_LABELS = {"city": "全市", "district": "区", "street": "街道", "community": "社区"}
CHILD_TITLES = {"city": "各区概况", "district": "各街道概况", "street": "各社区概况", "community": "社区概况"}
# 综合考评 ranks the level below the scope (a community user: its grids); the tab's label.
EVAL_TABS = {"district": "各区", "street": "各街道", "community": "各社区", "grid": "各网格"}
# The key indicators shown per kind (evalspec.INDICATORS keys, their labels); the rest is on /explore.
EVAL_REGION_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (key, LABELS["region"][key]) for key in ("filed", "close_rate", "on_time_close_rate"))
EVAL_UNIT_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (key, LABELS["unit"][key]) for key in ("assigned", "on_time_handle_rate", "rework_rate"))
GRADES = "ABCDE"


def metric_of(value: object) -> str:
    return value if isinstance(value, str) and value in METRICS else DEFAULT_METRIC


def metric_from_query(query: str | None) -> str:
    try:
        values = parse_qs((query or "").lstrip("?")).get("metric", [])
    except (TypeError, ValueError):
        values = []
    return metric_of(values[0] if values else None)


def explore_href(kind: str, value: str) -> str:
    """/explore?region=… (a region or grid code) or ?case=… (the value URL-encoded)."""
    return f"{EXPLORE}?{kind}={quote(str(value), safe='')}"


def layout(settings: Settings, query: str = "", *, city: str = "") -> html.Div:
    """The whole /view page; ``query`` is the URL's query string (``metric=open|overdue``);
    ``city`` the city's name for the header."""
    metric = metric_from_query(query)
    label, unit = METRICS[metric]
    return html.Div(
        id="view-root",
        className="gh-page view",
        children=[
            # view-offline is raised by view.js when refreshes stop arriving.
            *banners("view"),
            _header(city),
            kpi_strip("view-kpi", KPIS, "view"),
            html.Main(
                className="view-main",
                children=[
                    html.Section(
                        className="gh-panel view-panel view-map",
                        children=[
                            html.Div(className="view-panel__head", children=[
                                html.H2(f"单元网格热力 · {label}", className="gh-panel__title"),
                                _metric_links(metric),
                            ]),
                            html.Div(className="view-map__frame", children=[
                                _map(settings),
                                legend(unit, "view-legend", hot=False),
                                html.Span(id="view-painted", hidden=True, children="0"),
                            ]),
                            html.Div(id="view-map-note", className="view-note",
                                     children="点击网格查看该网格的案件"),
                        ],
                    ),
                    _panel("view-areas-panel", "各区概况", "view-areas", "view-areas-title"),
                    _panel("view-hot-panel", f"热点网格 · 前{HOT_SPOTS}", "view-hot", note=label),
                    _panel("view-units-panel", "处置单位排名", "view-units", count_id="view-units-count",
                           note="超期多者在前"),
                    _eval_panel(),
                    _panel("view-overdue-panel", "超期与临期案件", "view-overdue", count_id="view-overdue-count",
                           note="超期久者在前"),
                ],
            ),
            html.Footer(className="view-footer", children=[
                "只读视图：数据按您的管辖范围筛选，每 30 秒更新；点击区域、网格或案件进入案件查询。",
            ]),
            dcc.Interval(id="view-tick", interval=REFRESH_MS, n_intervals=0),
            dcc.Interval(id="view-watch-tick", interval=WATCH_MS, n_intervals=0),
            # Digests of the panels this page shows: the refresh re-sends only what differs.
            dcc.Store(id="view-state", storage_type="memory", data=None),
            # The scope's grid geometry, compact (sent once per page load; view.js decodes it).
            dcc.Store(id="view-geo", storage_type="memory", data=None),
            # {grid code: value of the map's metric} for the non-zero cells (every refresh).
            dcc.Store(id="view-values", storage_type="memory", data=None),
            dcc.Store(id="view-config", data={
                "metric": metric, "label": label, "unit": unit, "tz": settings.tz.key,
                **heat.palette(), "refreshMs": REFRESH_MS,
                "explore": EXPLORE,
            }),
        ],
    )


def _header(city: str) -> html.Header:
    return header(city, VIEW_TITLE, html.Div(className="view-header__meta", children=[
        html.Span(className="view-chip", children=["辖区：", html.Span(id="view-scope", children=PLACEHOLDER)]),
        html.Span("只读", className="view-chip view-chip--ro", title="本页面只查看，不修改任何数据"),
        as_of("view-updated", extra_class="view-updated"),
    ]), modifier="view-header", title_class="view-title")


def _metric_links(metric: str) -> html.Nav:
    """Links, not inputs: switching the map's metric is a page address (``?metric=``)."""
    return html.Nav(className="view-metrics", **attrs({"aria-label": "热力指标"}), children=[
        html.A(label, href=f"/view?metric={key}",
               className="view-metric" + (" is-on" if key == metric else ""),
               **attrs({"aria-current": "page"} if key == metric else {}))
        for key, (label, _) in METRICS.items()
    ])


def _panel(panel_id: str, title: str, body_id: str, title_id: str | None = None, count_id: str | None = None,
           note: str | None = None) -> html.Section:
    head: list[Any] = [html.H2(title, id=title_id, className="gh-panel__title") if title_id
                       else html.H2(title, className="gh-panel__title")]
    if note:
        head.append(html.Span(note, className="view-note"))
    if count_id:
        head.append(html.Span(id=count_id, className="view-count", children=""))
    return html.Section(id=panel_id, className="gh-panel view-panel", children=[
        html.Div(className="view-panel__head", children=head),
        html.Div(id=body_id, className="view-panel__body", children=html.Div("正在加载…", className="gh-empty")),
    ])


def _eval_panel() -> html.Section:
    """综合考评 of this month: two tabs (sub-regions, units). The tabs are links that only
    switch what is shown (view.js, no request); on a phone both lists are shown, one above
    the other."""
    def tab(key: str, label: Any, tab_id: str | None = None) -> html.A:
        extra: dict[str, Any] = {"id": tab_id} if tab_id else {}
        return html.A(label, href=f"#view-eval-{key}", role="tab", **extra, **attrs({"data-tab": key}),
                      className="view-eval__tab" + (" is-on" if key == "regions" else ""),
                      **attrs({"aria-selected": "true" if key == "regions" else "false",
                               "aria-controls": f"view-eval-{key}"}))

    def section(key: str, title: Any, title_id: str | None = None) -> html.Div:
        extra: dict[str, Any] = {"id": title_id} if title_id else {}
        return html.Div(className=f"view-eval__part view-eval__part--{key}", role="tabpanel", children=[
            html.H3(title, **extra, className="view-eval__subtitle"),
            html.Div(id=f"view-eval-{key}", className="view-eval__list",
                     children=html.Div("正在加载…", className="gh-empty")),
        ])

    return html.Section(id="view-eval-panel", className="gh-panel view-panel view-eval", children=[
        html.Div(className="view-panel__head", children=[
            html.H2("综合考评", className="gh-panel__title"),
            html.Span(id="view-eval-note", className="view-note", children=""),
            html.Nav(className="view-eval__tabs", role="tablist", **attrs({"aria-label": "考评对象"}), children=[
                tab("regions", EVAL_TABS["district"], "view-eval-tab"), tab("units", "处置单位"),
            ]),
        ]),
        html.Div(className="view-panel__body view-eval__body", children=[
            section("regions", EVAL_TABS["district"], "view-eval-subtitle"),
            section("units", "处置单位"),
        ]),
    ])


def _map(settings: Settings) -> dl.MapContainer:
    grids = dl.GeoJSON(
        id="view-grids",
        data=None,  # filled once from view-geo (view.js decodes the compact form)
        style={"variable": "gridhall.view.gridStyle"},
        onEachFeature={"variable": "gridhall.view.onGrid"},
        interactive=True,
    )
    # fitted to the scope's bounds once the grids arrive (view.js)
    return city_map(settings, "view-mapview", "view-map__map", [grids], zoomControl=True,
                    scrollWheelZoom=False,  # the page scrolls; zoom with the buttons or a pinch
                    trackViewport=False, zoomSnap=0.25)


# -- fragments filled by the refresh -------------------------------------------------------------
def kpi_texts(values: Sequence[int | float | None]) -> list[str]:
    """Texts of the KPI tiles in ``KPIS`` order; rates are shares in [0, 1] or None."""
    return tile_texts(KPIS, values)


def scope_text(name: str, level: str) -> str:
    """The scope as the header says it: 全市, or the district's or street's own name."""
    return name or LEVEL_LABELS.get(level, "")


def hm(minutes: float) -> str:
    """Minutes as 「d天h时mm分」 (whole minutes, never negative)."""
    total = int(max(minutes, 0.0) // 1)
    d, rem = divmod(total, 24 * 60)
    h, m = divmod(rem, 60)
    return f"{d}天{h}时{m:02d}分" if d else f"{h}时{m:02d}分"


def _empty(text: str) -> html.Div:
    return html.Div(text, className="gh-empty")


def render_hot(spots: Sequence[dict[str, Any]], unit: str) -> Any:
    """Hot spots: dicts with code, place, value (the grid links to /explore?region=)."""
    if not spots:
        return _empty("暂无")
    return html.Ol(className="view-hot", children=[
        html.Li(className="view-hot__item", children=[
            html.Span(str(rank), className="view-rank"),
            html.Div(className="view-hot__who", children=[
                html.A(s["code"], href=explore_href("region", s["code"]), className="view-link view-hot__code"),
                html.Span(s["place"] or "未登记所属社区", className="view-hot__place"),
            ]),
            html.Span(f"{s['value']:,}", className="view-hot__value", title=f"{s['value']:,} {unit}"),
        ])
        for rank, s in enumerate(spots, start=1)
    ])


def render_areas(rows: Sequence[dict[str, Any]]) -> Any:
    """One row per sub-region (district / street / community): 在办, 超期, 近1小时新增."""
    if not rows:
        return _empty("暂无下级区域")
    top = max((r["open"] for r in rows), default=0) or 1
    head = html.Div(className="view-areas__row view-areas__row--head", children=[
        html.Span("区域"), html.Span("在办"), html.Span("超期"), html.Span("近1小时"),
    ])
    return html.Div(className="view-areas", children=[head, *[
        html.Div(className="view-areas__row", children=[
            html.Div(className="view-areas__who", children=[
                html.A(r["name"], href=explore_href("region", r["code"]), className="view-link"),
                html.Div(className="view-bar", children=html.Div(
                    className="view-bar__fill", style={"width": f"{100 * r['open'] / top:.1f}%"})),
            ]),
            html.Span(f"{r['open']:,}", className="view-num"),
            html.Span(f"{r['overdue']:,}", className="view-num" + (" is-bad" if r["overdue"] else "")),
            html.Span(f"{r['new_hour']:,}", className="view-num"),
        ])
        for r in rows
    ]])


UNIT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("overdue", "超期"), ("pending", "待处置"), ("disposing", "处置中"), ("closed_today", "今日结案"),
    ("on_time_rate", "按期处置率"), ("rework", "返工"), ("extended", "延期"),
)


def render_units(rows: Sequence[dict[str, Any]]) -> Any:
    """The unit ranking, worst first (the wall's board in the user's scope)."""
    if not rows:
        return _empty("暂无处置单位")
    head = html.Div(className="view-units__row view-units__row--head", children=[
        html.Span("序"), html.Span("处置单位"), *[html.Span(label) for _, label in UNIT_COLUMNS],
    ])
    body = []
    for r in rows:
        cells = []
        for key, label in UNIT_COLUMNS:
            level = (r.get("levels") or {}).get(key)
            cls = "view-num" + (f" is-{level}" if level in ("warn", "bad") else "")
            cells.append(html.Span(className=cls, **attrs({"data-label": label}), children=str(r[key])))
        body.append(html.Div(className="view-units__row", children=[
            html.Span(str(r["rank"]), className="view-rank"),
            html.Span(r["unit"], className="view-units__name", title=r["unit"]),
            *cells,
        ]))
    return html.Div(className="view-units", children=[head, *body])


def render_eval(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], name_label: str,
                link: str | None = None, total: int | None = None) -> Any:
    """A 综合考评 ranking: rows of ``callbacks.wall.ranking_rows`` (the wall's formatter: rank
    or 样本不足, the indicators, 综合指标值, grade). ``link``: the /explore parameter the name
    opens (``region`` / ``grid``), None for units. ``total``: all rows, when more than shown."""
    if not rows:
        return _empty("本月暂无考评数据")
    head = html.Div(className="view-eval__row view-eval__row--head", children=[
        html.Span("名次"), html.Span(name_label),
        html.Div(className="view-eval__inds", children=[html.Span(label) for _, label in columns]),
        html.Span("综合指标值"), html.Span("等级"),
    ])
    body = []
    for r in rows:
        rank = r["rank"]
        ranked = isinstance(rank, int)
        name = (html.A(r["name"], href=explore_href(link, r["id"]), className="view-link", title=r["name"])
                if link else html.Span(r["name"], title=r["name"]))
        grade = r["grade"] if r["grade"] in GRADES else None
        state = (" is-top" if rank <= 3 else "") if ranked else " is-unranked"
        body.append(html.Div(className="view-eval__row" + state, children=[
            html.Span(str(rank), className="view-rank view-eval__rank" + ("" if ranked else " view-eval__few"),
                      title="" if ranked else "样本数少于考评下限，不排名、不定级"),
            html.Span(name, className="view-eval__name"),
            html.Div(className="view-eval__inds", children=[
                html.Span(str(r.get(key, PLACEHOLDER)), className="view-num", **attrs({"data-label": label}))
                for key, label in columns
            ]),
            html.Span(str(r["composite"]), className="view-num view-eval__score", **attrs({"data-label": "综合"})),
            html.Span(grade or PLACEHOLDER,
                      className="view-eval__grade" + (f" view-grade--{grade}" if grade else ""),
                      title=f"等级 {grade}" if grade else "未定级"),
        ]))
    more = [html.Div(count_text(len(rows), total), className="view-note view-eval__more")] \
        if total is not None and total > len(rows) else []
    return html.Div(className="view-eval__table", children=[head, *body, *more])


def render_overdue(rows: Sequence[dict[str, Any]]) -> Any:
    """Overdue then due-soon cases: number (→ /explore?case=), class, place (grid →
    /explore?region=), unit, stage, time over or left, the description (text)."""
    if not rows:
        return _empty("当前没有超期或临期案件")
    items = []
    for r in rows:
        place_bits: list[Any] = []
        if r["place"]:
            place_bits.append(html.Span(r["place"]))
        if r["grid"]:
            place_bits.append(html.A(r["grid"], href=explore_href("region", r["grid"]), className="view-link"))
        items.append(html.Li(className="view-case " + ("is-overdue" if r["overdue"] else "is-soon"), children=[
            html.Div(className="view-case__head", children=[
                html.A(r["number"], href=explore_href("case", r["id"]), className="view-link view-case__no"),
                *([html.Span("急", className="view-tag view-tag--urgent", title="紧急案件")] if r["urgent"] else []),
                html.Span(r["stage"], className="view-tag"),
                html.Span(r["late"], className="view-case__late", title=r["deadline"]),
            ]),
            html.Div(r["klass"], className="view-case__line"),
            html.Div(className="view-case__line view-case__place", children=place_bits or PLACEHOLDER),
            html.Div(className="view-case__line view-case__unit", children=["责任单位：", r["unit"]]),
            *([html.Div(r["description"], className="view-case__line view-case__desc", title=r["description"])]
              if r["description"] else []),
        ]))
    return html.Ol(className="view-cases", children=items)


def count_text(shown: int, total: int) -> str:
    return f"显示 {shown:,} / 共 {total:,}"


__all__ = ["KPIS", "METRICS", "layout", "metric_of", "render_areas", "render_hot", "render_overdue",
           "render_units", "render_eval", "kpi_texts", "count_text", "explore_href"]
