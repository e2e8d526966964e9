"""The command-hall wall (/wall): header, KPI strip, grid heatmap, overdue queue, unit board.

Only Dash components (no I/O). Figures start as placeholders and arrive with the first
refresh (callbacks/wall.py). Grid geometry is not in the layout: the map fetches it once by
URL and live updates only recolour cells (layouts/assets/wall.js). Every text reaches the
page as a Dash prop, rendered by React as text: descriptions from the feed cannot inject
markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import dash_ag_grid as dag
import dash_leaflet as dl
from dash import dcc, html

from dashboard.figures import districts, heat
from dashboard.rules.evalspec import LABELS
from dashboard.rules.screenspec import ScreenLayout, SpecError, parse_tile
from dashboard.settings import Settings
from dashboard.store.scope import CITY, Scope

from .kit.basemap import city_map
from .kit.clock import clock_tick, header_time
from .kit.fmt import PLACEHOLDER
from .kit.grid import LOCALE_TEXT, NO_TYPE_INFERENCE
from .kit.header import header
from .kit.health import banners
from .kit.legend import legend
from .kit.props import attrs
from .kit.tiles import HALL_KPIS, kpi_strip
from .kit.tiles import kpi_texts as tile_texts

WALL_TITLE = "数字化城市管理指挥大厅"
# A region's wall (两级指挥: the district halls; a street's workstation) is titled by the region.
# Region names end in 区/街道/社区 already.
REGION_TITLES = {"district": "数字化城市管理指挥分中心", "street": "城市管理工作站", "community": "城市管理工作站"}
REFUSED_TEXT = "无权查看该区域，或该区域不存在"
REPLAY_BAD_TEXT = "回放时刻无效：请写成 ?at=2026-11-20T09:00（城市时间）"
REPLAY_FUTURE_TEXT = "回放时刻不能晚于现在：实时大屏请去掉 ?at="
REPLAY_SPEED_TEXT = "回放倍速无效：?speed= 取 1–3600 的整数（60 即每秒播放一分钟）"
REPLAY_MAX_SPEED = 3600
REFRESH_MS = 500  # the data poll: answers 204 (nothing sent) while the live view is unchanged
# While the push stream (/wall/events) is connected the page asks on each pushed change and
# polls only this often, as a safety net; without the stream it polls every REFRESH_MS.
PUSHED_REFRESH_MS = 5000
EVENTS_URL = "/wall/events"
# A push stream the server refused (503: no thread to spare) or a proxy failed (a 502 while the
# server restarts behind it) is given up by the browser; layouts/assets/wall.js opens it again
# after PUSH_REFUSED_FIRST_MS, twice as long after each further refusal, at most every
# PUSH_REFUSED_MAX_MS (the 503's Retry-After), and polls every REFRESH_MS meanwhile.
PUSH_HEARTBEAT_MS = 10_000  # the stream sends a "ping" event this often while it has nothing else
# A stream that said nothing for this long is stalled (e.g. held by a proxy that stopped passing
# it): wall.js closes it and opens a new one; it polls at its normal pace meanwhile.
PUSH_SILENT_MS = 3 * PUSH_HEARTBEAT_MS
PUSH_REFUSED_FIRST_MS = 3000
PUSH_REFUSED_MAX_MS = 60_000
HEALTH_MS = 2000  # the feed-health poll (header and stale banner)
# While the push stream is connected the health comes by push too ("health" events,
# callbacks/wall_push.py) and the page polls it only this often, as a safety net; without the
# stream it polls every HEALTH_MS.
PUSHED_HEALTH_MS = 30_000
PAGE_TURN_MS = 10_000  # the queue and the board turn their pages by themselves

# What goes where the unit board is (URL ?board=): the unit board itself, the 综合考评 ranking,
# or 各区对比 (the city wall's districts side by side; a region's wall shows its unit board).
BOARDS = ("units", "evaluation", "districts")

GRID_URL = "/wall/geo/grids.json"
BOUNDARY_URL = "/wall/geo/boundaries.json"

# (key, label, scope): the KPI strip, in the order of the standard loop.
KPIS = HALL_KPIS  # the command hall's strip, defined in the kit (/view shows it too)

# Heatmap metrics: {key: (label of the map panel, unit)}; the metrics and the colours are
# defined in dashboard/figures/heat.py.
METRICS: dict[str, tuple[str, str]] = heat.labels()
DEFAULT_METRIC = "open"


def metric_of(value: str | None) -> str:
    return value if value in METRICS else DEFAULT_METRIC


def board_of(value: str | None, scope: Scope = CITY) -> str:
    """The board a wall shows for ``?board=`` (``units`` for anything else; 各区对比 is the city's)."""
    if value == "districts" and not scope.is_city:
        return "units"
    return value if value in BOARDS else "units"


# -- scenes: what one screen shows (docs/halls.md "On the wall") ----------------------------------
# A screen shows a *scene*: a layout (the whole wall, one panel full-screen, or its tile of a
# mosaic: dashboard/rules/screenspec.py ScreenLayout), a region inside the viewer's scope, the
# map's metric and the board. The page holds every panel; a layout only shows some (CSS on the
# html element's data-wall-layout / data-wall-board, set by layouts/assets/wallscene.js), so a
# playlist or the shift lead changes a screen without a reload and without a blank.
def layout_of(value: str | None) -> str:
    """A ScreenLayout value for ``?layout=`` (``wall`` for anything else)."""
    return value if value in {m.value for m in ScreenLayout} else ScreenLayout.WALL.value


def scene_board(layout: str, board: str | None, scope: Scope = CITY) -> str:
    """The board of a scene: a single-panel layout of a board names it, else ``?board=``."""
    panel = {ScreenLayout.EVALUATION.value: "evaluation", ScreenLayout.DISTRICTS.value: "districts",
             ScreenLayout.BOARD.value: "units"}.get(layout)
    return board_of(panel or board, scope)


def tile_of(value: str | None) -> list[int] | None:
    """A mosaic tile ``COLSxROWS:COL,ROW`` as [cols, rows, col, row] (None when not one)."""
    if not value:
        return None
    try:
        tile = parse_tile(value)
    except SpecError:
        return None
    return [tile.cols, tile.rows, tile.col, tile.row]


def sight_key(metric: str, region: str) -> str:
    """Which map a grid answer colours (its metric and region): the page paints only answers for
    its current scene, so a late answer for the scene before cannot recolour the map."""
    return f"{metric}/{region}"


def map_title(metric: str) -> str:
    return f"单元网格热力 · {METRICS[metric_of(metric)][0]}"


def wall_config(settings: Settings, metric: str, scope: Scope, board: str, layout: str = "wall",
                tile: list[int] | None = None, bounds: list[float] | None = None,
                base: str | None = None) -> dict[str, Any]:
    """The page's wall-config: what its scripts and its refresh need to know of its scene.

    One definition for the page's first scene (:func:`layout`) and every later one (the scene
    callback, callbacks/wall.py). ``bounds`` (min lon, min lat, max lon, max lat) fits the map to
    a region smaller than the geometry the page loaded; None fits it to all of it. ``base``: the
    region whose geometry the page loaded ("" the city; by default the scene's own).
    """
    metric = metric_of(metric)
    where = region_query(scope)
    return {
        "tz": settings.tz.key, "metric": metric, "unit": METRICS[metric][1], "region": scope.code or "",
        "board": board, "layout": layout, "tile": tile if layout == ScreenLayout.MOSAIC.value else None,
        "bounds": bounds, "title": wall_title(scope), "mapTitle": map_title(metric),
        "sight": sight_key(metric, scope.code or ""),
        "base": scope.code or "" if base is None else base,
        **heat.palette(), "pageMs": PAGE_TURN_MS,
        "events": _with(f"{EVENTS_URL}?metric={metric}&board={board}", where),
        "pollMs": REFRESH_MS, "pushedPollMs": PUSHED_REFRESH_MS,
        "healthMs": HEALTH_MS, "pushedHealthMs": PUSHED_HEALTH_MS,
        "refusedMs": [PUSH_REFUSED_FIRST_MS, PUSH_REFUSED_MAX_MS], "silentMs": PUSH_SILENT_MS,
    }


REPLAY_REFRESH_MS = 60_000  # 回放: the page asks once, then only in case an answer was lost
PLAY_REFRESH_MS = 1000  # 回放 at N× (?speed=N): the page asks every second for the minute it has reached


def parse_at(text: str | None, tz: Any) -> datetime | None:
    """``?at=2026-11-20T09:00`` (city time, or with an offset) → an aware instant to the minute; None if unusable."""
    if not text:
        return None
    try:
        at = datetime.fromisoformat(str(text).strip())
    except ValueError:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=tz)
    return at.replace(second=0, microsecond=0)


def replay_text(at: datetime, speed: int | None = None) -> str:
    """The replay banner (回放): which minute the wall shows (and at what speed it plays), and that it is not live."""
    playing = f" · {speed}× 播放" if speed else ""
    return f"回放 · {at:%Y-%m-%d %H:%M}{playing} · 历史时刻的大屏，只读，非实时"


def parse_speed(text: str | None) -> int | None:
    """``?speed=60`` → 60 (1 … REPLAY_MAX_SPEED); None if unusable."""
    try:
        speed = int(str(text).strip())
    except ValueError:
        return None
    return speed if 1 <= speed <= REPLAY_MAX_SPEED else None


def played_at(start: datetime, speed: int, started: str | None, now: datetime) -> datetime:
    """The minute a replay playing at ``speed``× from ``start`` (begun at ``started``, ISO) has reached
    at ``now``; it stops at the present minute."""
    try:
        begun = datetime.fromisoformat(str(started))
    except ValueError:
        return start
    at = start + (now - begun) * speed
    return min(at, now).replace(second=0, microsecond=0)


def _grid_theme() -> dict[str, str]:
    # AG Grid's Theming API, dark; sizes in rem so a 4K wall scales like the rest of the page.
    return {"function": (
        "themeQuartz.withParams({"
        "backgroundColor: '#0a1526', foregroundColor: '#f1f6ff', headerBackgroundColor: '#0e1c33',"
        "headerTextColor: '#a9bbd6', borderColor: '#1d3458', oddRowBackgroundColor: '#0c182c',"
        "rowHoverColor: 'transparent', fontFamily: 'inherit', fontSize: 'var(--wall-grid-font)',"
        "headerFontSize: 'var(--wall-grid-head)', headerFontWeight: 600, rowHeight: 'var(--wall-row)',"
        "headerHeight: 'var(--wall-head)', cellHorizontalPadding: 'var(--wall-cell-pad)',"
        "wrapperBorderRadius: '0px', wrapperBorder: false, columnBorder: false, headerColumnBorder: false,"
        "browserColorScheme: 'dark'})"
    )}


def _grid(grid_id: str, columns: list[dict[str, Any]], empty: str) -> dag.AgGrid:
    return dag.AgGrid(
        id=grid_id,
        className="wall-grid",
        columnDefs=columns,
        rowData=[],
        getRowId="params.data.id",
        defaultColDef={"sortable": False, "resizable": False, "suppressMovable": True,
                       "suppressHeaderMenuButton": True, **NO_TYPE_INFERENCE},
        dashGridOptions={
            "theme": _grid_theme(),
            "pagination": True,
            "paginationAutoPageSize": True,  # as many rows as the panel holds: no scrollbar
            "suppressPaginationPanel": True,  # the page indicator is ours (wall.js), in Chinese
            "suppressCellFocus": True,
            "suppressRowHoverHighlight": True,
            "animateRows": False,  # rows changing in place must not slide around on the wall
            "localeText": {**LOCALE_TEXT, "noRowsToShow": empty},
        },
        style={"height": "100%", "width": "100%"},
    )


QUEUE_COLUMNS: list[dict[str, Any]] = [
    {"field": "number", "headerName": "案件编号", "flex": 1.3, "minWidth": 10,
     "cellClassRules": {"wall-urgent": "params.data.urgent"}},
    {"field": "klass", "headerName": "类别（大类/小类）", "flex": 1.35, "cellClass": "wall-two"},
    {"field": "place", "headerName": "位置（街道/社区/网格）", "flex": 1.75, "cellClass": "wall-two"},
    {"field": "unit", "headerName": "责任单位", "flex": 1.3, "cellClass": "wall-two"},
    {"field": "stage", "headerName": "当前阶段", "flex": 0.8},
    {"field": "late", "headerName": "超期时长", "flex": 1.3, "tooltipField": "late_calendar",
     "cellClassRules": {"wall-two wall-late": "params.data.overdue", "wall-two wall-soon": "!params.data.overdue"}},
    # The queue's order as one key (overdue first, then by deadline): the grid keeps the rows in
    # it, so the refresh sends only the rows that changed (row transactions, wall.js).
    {"field": "k", "hide": True, "sort": "asc"},
]

RISK_TITLE = "临期高风险"
SURGES_TITLE = "突增预警"
# 临期高风险: one line per case (the queue's are two), the risk first; ordered by the hidden key
# (riskiest first, then case id) so row transactions keep the order.
RISK_COLUMNS: list[dict[str, Any]] = [
    {"field": "risk", "headerName": "超期风险", "flex": 0.7, "type": "rightAligned", "cellClass": "wall-risk__p",
     "cellClassRules": {"wall-risk--high": "params.data.p >= 0.8"}},
    {"field": "number", "headerName": "案件编号", "flex": 1.25,
     "cellClassRules": {"wall-urgent": "params.data.urgent"}},
    {"field": "klass", "headerName": "小类", "flex": 0.85, "cellClass": "wall-ellipsis", "tooltipField": "klass"},
    {"field": "place", "headerName": "位置", "flex": 1.4, "cellClass": "wall-ellipsis", "tooltipField": "place"},
    {"field": "unit", "headerName": "责任单位", "flex": 1.25, "cellClass": "wall-ellipsis", "tooltipField": "unit"},
    {"field": "left", "headerName": "剩余", "flex": 0.65, "cellClass": "wall-soon"},
    {"field": "reason", "headerName": "主要因素", "flex": 1.55, "cellClass": "wall-ellipsis", "tooltipField": "reason"},
    {"field": "k", "hide": True, "sort": "asc"},
]

BOARD_COLUMNS: list[dict[str, Any]] = [
    {"field": "rank", "headerName": "序", "flex": 0.42, "sort": "asc"},  # the board's order (row transactions)
    {"field": "unit", "headerName": "处置单位", "flex": 2.6, "cellClass": "wall-ellipsis", "tooltipField": "unit"},
    *[
        {"field": key, "headerName": label, "flex": 1.05 if len(label) > 3 else 0.78, "type": "rightAligned",
         "cellClassRules": {"wall-level--warn": f"params.data.levels && params.data.levels.{key} === 'warn'",
                            "wall-level--bad": f"params.data.levels && params.data.levels.{key} === 'bad'"}}
        for key, label in (("pending", "待处置"), ("disposing", "处置中"), ("overdue", "超期"),
                           ("closed_today", "今日结案"), ("on_time_rate", "按期处置率"),
                           ("rework", "返工"), ("extended", "延期"))
    ],
]


def wall_title(scope: Scope) -> str:
    """The wall's heading: the city's hall, or the region's (``鼓楼区数字化城市管理指挥分中心``)."""
    return WALL_TITLE if scope.is_city else f"{scope.name}{REGION_TITLES.get(scope.level, WALL_TITLE)}"


def region_query(scope: Scope) -> str:
    """``region=<code>`` for the URLs a region's wall asks (its geometry, its push stream); "" for the city."""
    return "" if scope.is_city else f"region={scope.code}"


def _with(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}" if query else url


def late_badge(kind: str) -> html.Span:
    """A panel's staleness badge (数据滞后 · 自 hh:mm:ss), shown by wallscene.js when the health
    answer says the figures of ``kind`` ("live": the live view's panels; "ranking") are late."""
    return html.Span(className="wall-late-badge", **attrs({"data-late": kind}))


def refused(city: str = "", text: str = REFUSED_TEXT) -> html.Div:
    """A wall that cannot be shown, saying why: a ``?region=`` the viewer may not see (or that does
    not exist: the same page for both), or a ``?playlist=`` that cannot be read."""
    return html.Div(id="wall-root", className="gh-page wall", children=[
        header(city, WALL_TITLE),
        html.Main(className="wall-main wall-main--refused",
                  children=html.Div(text, className="gh-empty wall-refused", role="alert")),
    ])


def layout(settings: Settings, metric: str = DEFAULT_METRIC, *, explore: bool = False,
           board: str = "units", period: str | None = None, city: str = "", scope: Scope = CITY,
           screen_layout: str | None = None, tile: str | None = None,
           screen: dict[str, Any] | None = None, at: datetime | None = None,
           speed: int | None = None, now: datetime | None = None) -> html.Div:
    """The whole wall; ``metric`` colours the heatmap (URL ``?metric=open|new_hour|overdue``).

    ``explore``: the viewer may open /explore (a person at a desk, not a wall screen); then a
    click on a grid cell or a hot spot opens that grid there (wall.js reads ``data-explore``).
    ``board``: ``units`` (the unit-by-unit status board) or ``evaluation`` (URL
    ``?board=evaluation``: the 综合考评 ranking of districts and units for ``period``, a
    ``YYYY-MM`` month, by default the current one). ``city``: the city's name for the header.
    ``scope``: the region the wall shows (the viewer's own scope, or ``?region=`` inside it,
    resolved and checked by the caller): its grids, outlines and figures only.
    ``screen_layout`` (URL ``?layout=``): the whole wall or one panel full-screen (a ScreenLayout
    value); ``tile`` (``?tile=3x2:2,1``) this screen's part of a mosaic. ``screen``: the named
    screen (大屏) this page is, if any: its playlist and settings for layouts/assets/wallscene.js.
    """
    metric = metric_of(metric)
    where = region_query(scope)
    unit = METRICS[metric][1]
    screen_layout = layout_of(screen_layout)
    board = scene_board(screen_layout, board, scope)
    config = wall_config(settings, metric, scope, board, screen_layout, tile_of(tile))
    if at is not None:  # 回放: no push stream, one ask
        poll = PLAY_REFRESH_MS if speed else REPLAY_REFRESH_MS
        config.update(at=at.isoformat(), speed=speed, started=now.isoformat() if now else None, events=None,
                      pollMs=poll, pushedPollMs=poll)
    return html.Div(
        id="wall-root",
        className="gh-page wall" + (" wall--replay" if at is not None else ""),
        style={"--wall-surge": heat.SURGE_COLOUR},  # the one surge colour (dashboard/figures/heat.py)
        **attrs({"data-explore": "1"} if explore else {}),
        children=[
            # wall-offline is raised by wall.js.
            *banners("wall"),
            header(city, wall_title(scope),
                   html.Div(id="wall-feed", className="gh-feed wall-feed",
                            children=PLACEHOLDER if at is None else "回放 · 只读"),
                   header_time("wall"), subtitle_id="wall-title"),
            # 回放: the minute shown, and that it is not live (filled by the refresh as well).
            html.Div(id="wall-replay", className="wall-replay", role="status",
                     children=replay_text(at, speed) if at is not None else None),
            # Broadcast banners (横幅通知) of a named screen: filled by wallscene.js as text.
            html.Div(id="wall-broadcast", className="wall-broadcast", role="status"),
            # Alerts of 突发事件 for this wall's region (callbacks/wall.py alerts): one at a time,
            # queued, filled by wallalerts.js as text; the grid of the one shown flashes on the map.
            html.Div(id="wall-alert", className="wall-alert", role="alert"),
            kpi_strip("wall-kpi", KPIS, "wall"),
            # 在办案件 by 来源 (callbacks/wall.py: the live view's source_counts), under the strip.
            html.Div(id="wall-sources", className="wall-sources", role="group",
                     **attrs({"aria-label": SOURCES_TITLE}), children=SOURCES_TITLE),
            html.Main(
                className="wall-main",
                children=[
                    html.Section(
                        className="gh-panel wall-map",
                        children=[
                            html.H2(className="gh-panel__title", children=[
                                html.Span(map_title(metric), id="wall-map-title"),
                                html.Span(id="wall-map-note", className="wall-note"),
                                late_badge("live"),
                            ]),
                            html.Div(className="wall-map__body", children=[
                                html.Div(className="wall-map__frame", children=[
                                    _map(settings, metric, where),
                                    legend(unit, surge=True),
                                    # 突增预警 under way in this wall's region: listed here and ringed
                                    # on the map by layouts/assets/wallsurges.js (from wall-surges).
                                    html.Div(id="wall-surges-box", className="wall-surges", role="status",
                                             children=[html.H3(SURGES_TITLE, className="wall-surges__title"),
                                                       html.Ol(id="wall-surge-list", className="wall-surges__list")]),
                                ]),
                                html.Div(className="wall-hot", children=[
                                    html.H3("热点网格 · 前十", className="wall-hot__title"),
                                    html.Ol(id="wall-hot", className="wall-hot__list",
                                            children=[html.Li("正在加载…", className="gh-empty")]),
                                ]),
                            ]),
                        ],
                    ),
                    html.Section(
                        className="gh-panel wall-queue",
                        children=[
                            html.H2(className="gh-panel__title", children=[
                                "超期案件队列",
                                html.Span(id="wall-queue-count", className="wall-note"),
                                late_badge("live"),
                                html.Span(id="wall-queue-page", className="wall-page"),
                            ]),
                            html.Div(className="wall-grid-box wall-queue__grid",
                                     children=_grid("wall-queue", QUEUE_COLUMNS, "当前没有超期或临期案件")),
                            # 临期高风险: open cases not overdue yet, riskiest first (the newest risk model).
                            html.H3(className="wall-risk__title", children=[
                                RISK_TITLE,
                                html.Span(id="wall-risk-note", className="wall-note", children=PLACEHOLDER),
                                html.Span(id="wall-risk-page", className="wall-page"),
                            ]),
                            html.Div(className="wall-grid-box wall-risk",
                                     children=_grid("wall-risk", RISK_COLUMNS, "暂无临期高风险案件")),
                        ],
                    ),
                    # Every board is in the page; the scene's board shows (data-wall-board, wall.css),
                    # so a playlist switches boards without a reload. The ranking asks the server
                    # only while it shows; 各区对比's rows come only to screens that show it.
                    _evaluation_panel(period),
                    _districts_panel(),
                    html.Section(
                        className="gh-panel wall-board wall-units",
                        children=[
                            html.H2(className="gh-panel__title", children=[
                                "处置单位状态",
                                html.Span("超期多者在前", className="wall-note"),
                                late_badge("live"),
                                html.Span(id="wall-board-page", className="wall-page"),
                            ]),
                            html.Div(className="wall-grid-box",
                                     children=_grid("wall-board", BOARD_COLUMNS, "暂无处置单位")),
                        ],
                    ),
                ],
            ),
            dcc.Interval(id="wall-tick", n_intervals=0, interval=REFRESH_MS if at is None else (
                PLAY_REFRESH_MS if speed else REPLAY_REFRESH_MS)),
            dcc.Interval(id="wall-health-tick", interval=HEALTH_MS, n_intervals=0),
            clock_tick("wall"),
            # What this screen shows (versions and digests): the server sends only what differs.
            dcc.Store(id="wall-state", storage_type="memory", data=None),
            # The grid coordinate whose values the page has painted, written by wall.js once it
            # applied them; the refresh asks for the cells changed since.
            dcc.Store(id="wall-applied", storage_type="memory", data=None),
            # Set by wall.js on each pushed change: an Input of the refresh, so it asks at once.
            dcc.Store(id="wall-push", storage_type="memory", data=None),
            # Rows of the queue and the board: {panel: a whole row set, or the rows added, removed
            # and changed since the set the page shows}; applied by wall.js (AG Grid transactions).
            dcc.Store(id="wall-rows", storage_type="memory", data=None),
            # The row sets the page shows ({panel: digest}), written by wall.js once applied.
            dcc.Store(id="wall-rows-applied", storage_type="memory", data=None),
            dcc.Store(id="wall-health-fp", storage_type="memory", data=None),
            # Panels whose figures are late ({"live"|"ranking": since}), from the health answer.
            dcc.Store(id="wall-stale-panels", storage_type="memory", data=None),
            dcc.Store(id="wall-late-shown", storage_type="memory", data=None),
            dcc.Store(id="wall-alerts", storage_type="memory", data=None),
            # Surges under way in the region ([{id, level, place, name, group, text, since}]): listed
            # and ringed by wallsurges.js.
            dcc.Store(id="wall-surges", storage_type="memory", data=None),
            dcc.Store(id="wall-surges-shown", storage_type="memory", data=None),
            dcc.Store(id="wall-alerts-shown", storage_type="memory", data=None),
            # Grid values to recolour: {"full": bool, "values": {code: n}}; applied by wall.js.
            dcc.Store(id="wall-grid", storage_type="memory", data=None),
            dcc.Store(id="wall-config", data=config),
            # A scene to show next ({layout, region, metric, board, tile}), set by wallscene.js (a
            # playlist's next entry, a change pushed by the shift lead); the scene callback checks it
            # and answers the new wall-config.
            dcc.Store(id="wall-scene", storage_type="memory", data=None),
            # The named screen this page is (its playlist), or None: wallscene.js plays it.
            dcc.Store(id="wall-screen", storage_type="memory", data=screen),
            # The scene the page shows (the n of the wall-scene request it answers; 0: the first),
            # written by wallscene.js once applied; and a mark that the screen is being played.
            dcc.Store(id="wall-scene-shown", storage_type="memory", data=0),
            dcc.Store(id="wall-screen-played", storage_type="memory", data=None),
        ],
    )


DISTRICT_COLUMNS: list[dict[str, Any]] = [
    {"field": "name", "headerName": "区", "flex": 1.1, "cellClass": "wall-ellipsis", "tooltipField": "name"},
    {"field": "open", "headerName": "在办", "flex": 0.8, "type": "rightAligned"},
    {"field": "overdue", "headerName": "当前超期", "flex": 0.95, "type": "rightAligned",
     "cellClassRules": {"wall-level--bad": "params.value > 0"}},
    {"field": "due_soon", "headerName": "临期", "flex": 0.7, "type": "rightAligned",
     "cellClassRules": {"wall-level--warn": "params.value > 0"}},
    {"field": "urgent", "headerName": "急要件", "flex": 0.8, "type": "rightAligned"},
    {"field": "reported", "headerName": "今日上报", "flex": 0.95, "type": "rightAligned"},
    {"field": "closed", "headerName": "今日结案", "flex": 0.95, "type": "rightAligned"},
    {"field": "rate", "headerName": LABELS["region"]["on_time_close_rate"], "flex": 1.3, "type": "rightAligned"},
    # 近1小时上报 against today's hourly mean (dashboard/figures/districts.py trend_of)
    {"field": "trend", "headerName": "趋势", "flex": 1.2, "tooltipField": "trend_note",
     "cellClassRules": {"wall-trend--up": f"params.data.arrow === '{districts.UP}'",
                        "wall-trend--down": f"params.data.arrow === '{districts.DOWN}'"}},
    {"field": "hourly", "headerName": "今日分时上报", "flex": 1.4, "cellRenderer": "WallSpark",  # wall.js
     "cellClass": "wall-spark-cell"},
]


def _districts_panel() -> html.Section:
    """各区对比 in the board's place (``?board=districts``, the city wall): one row per district."""
    return html.Section(
        className="gh-panel wall-board wall-districts",
        children=[
            html.H2(className="gh-panel__title", children=[
                "各区对比",
                html.Span("今日 · 趋势为近1小时上报 / 今日每小时平均", className="wall-note"),
                late_badge("live"),
                html.Span(id="wall-districts-page", className="wall-page"),
            ]),
            html.Div(className="wall-grid-box",
                     children=_grid("wall-districts", DISTRICT_COLUMNS, "暂无区级数据")),
        ],
    )


def _ranked(name: dict[str, Any], *figures: tuple[str, str, float]) -> list[dict[str, Any]]:
    """A ranking grid's columns: 名次, the name, some figures, 综合指标值 and 等级 (coloured)."""
    return [
        {"field": "rank", "headerName": "名次", "flex": 0.55},
        name,
        *[{"field": f, "headerName": h, "flex": w, "type": "rightAligned"} for f, h, w in figures],
        {"field": "composite", "headerName": "综合指标值", "flex": 1.1, "type": "rightAligned"},
        {"field": "grade", "headerName": "等级", "flex": 0.6, "cellClass": "wall-grade",
         "cellClassRules": {f"wall-grade--{g}": f"params.value === '{g}'" for g in "ABCDE"}},
    ]


EVAL_REGION_COLUMNS = _ranked(
    {"field": "name", "headerName": "区域", "flex": 1.5, "cellClass": "wall-ellipsis", "tooltipField": "name"},
    *[(key, LABELS["region"][key], flex) for key, flex in (("filed", 0.9), ("close_rate", 0.9),
                                                           ("on_time_close_rate", 1.1))])
EVAL_UNIT_COLUMNS = _ranked(
    {"field": "name", "headerName": "处置单位", "flex": 2.0, "cellClass": "wall-ellipsis", "tooltipField": "name"},
    *[(key, LABELS["unit"][key], flex) for key, flex in (("assigned", 0.9), ("on_time_handle_rate", 1.1),
                                                         ("rework_rate", 0.8))])
EVAL_REFRESH_MS = 60_000  # the ranking moves with closed cases: once a minute is plenty


def _evaluation_panel(period: str | None) -> html.Section:
    """综合考评 in the board's place: districts on top, units below (``?board=evaluation``)."""
    return html.Section(
        className="gh-panel wall-board wall-eval",
        children=[
            html.H2(className="gh-panel__title", children=[
                "综合考评",
                html.Span(id="wall-eval-period", className="wall-note", children=PLACEHOLDER),
                late_badge("ranking"),
                html.Span(id="wall-eval-regions-page", className="wall-page"),
                html.Span(id="wall-eval-units-page", className="wall-page"),
            ]),
            html.Div(className="wall-eval__grids", children=[
                html.Div(className="wall-grid-box wall-eval__regions",
                         children=_grid("wall-eval-regions", EVAL_REGION_COLUMNS, "本期暂无区域考评数据")),
                html.Div(className="wall-grid-box wall-eval__units",
                         children=_grid("wall-eval-units", EVAL_UNIT_COLUMNS, "本期暂无处置单位考评数据")),
            ]),
            dcc.Interval(id="wall-eval-tick", interval=EVAL_REFRESH_MS, n_intervals=0),
            dcc.Store(id="wall-eval-config", data={"period": period}),
        ],
    )


def _map(settings: Settings, metric: str, where: str = "") -> dl.MapContainer:
    layers: list[Any] = [
        dl.Pane(name="grids", style={"zIndex": 410}, children=dl.GeoJSON(
            id="wall-grids",
            url=_with(GRID_URL, where),
            style={"variable": "gridhall.wall.gridStyle"},
            onEachFeature={"variable": "gridhall.wall.onGrid"},
            hideout={"metric": metric},
            interactive=True,
        )),
        dl.Pane(name="boundaries", style={"zIndex": 420, "pointerEvents": "none"}, children=dl.GeoJSON(
            id="wall-boundaries",
            url=_with(BOUNDARY_URL, where),
            style={"variable": "gridhall.wall.boundaryStyle"},
            onEachFeature={"variable": "gridhall.wall.onBoundary"},  # streets' surge rings (wallsurges.js)
            interactive=False,
        )),
    ]
    # fitted to the grids' bounds once they load (wall.js)
    return city_map(settings, "wall-mapview", "wall-map__map", layers, zoomControl=False, zoomSnap=0.1)


# -- fragments filled by the refresh --------------------------------------------------------
def kpi_texts(values: Sequence[int | float | None]) -> list[str]:
    """Texts of the KPI tiles in ``KPIS`` order; rates are shares in [0, 1] or None."""
    return tile_texts(KPIS, values)


SOURCES_TITLE = "在办案件 · 按来源"


def render_sources(counts: Sequence[Sequence[Any]]) -> list[Any]:
    """The source strip: its title, then per source with open cases its label, count and share
    (a bar as wide as the share); (label, count) pairs in the vocabulary's order."""
    total = sum(int(count) for _, count in counts)
    chips: list[Any] = [html.Span(SOURCES_TITLE, className="wall-sources__title")]
    if not total:
        return [*chips, html.Span("暂无在办案件", className="gh-empty")]
    for label, count in counts:
        if not count:
            continue
        share = int(count) / total
        chips.append(html.Span(className="wall-sources__item", title=f"{label} {count} 件", children=[
            html.Span(str(label), className="wall-sources__label"),
            html.Span(f"{int(count):,}", className="wall-sources__value"),
            html.Span(f"{share:.0%}", className="wall-sources__share"),
            html.Span(className="wall-sources__bar", style={"width": f"{share * 100:.1f}%"}),
        ]))
    return chips


def render_hot(spots: Sequence[tuple[str, str, int]], unit: str) -> list[html.Li]:
    """The hot-spot list: (grid code, place, value)."""
    if not spots:
        return [html.Li("暂无", className="gh-empty")]
    return [
        html.Li(className="wall-hot__item", **attrs({"data-grid": code}), children=[
            html.Span(str(rank), className="wall-hot__rank"),
            html.Div(className="wall-hot__who", children=[
                html.Span(place or "未登记所属社区", className="wall-hot__place", title=place),
                html.Span(code, className="wall-hot__code"),
            ]),
            html.Span(f"{value}", className="wall-hot__value", title=f"{value} {unit}"),
        ])
        for rank, (code, place, value) in enumerate(spots, start=1)
    ]
