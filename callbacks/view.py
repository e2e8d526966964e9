"""/view callbacks: the leaders' read-only summary, filtered by the signed-in user's scope.

Every figure comes from ``dashboard.figures.readapi`` (the JSON API's SQL, the wall's definitions)
through the process's shared cache (``dashboard.figures.readcache``: computed once per scope and
``GRIDHALL_READ_CACHE_S``, shared with the read API and every viewer of the same scope, keyed by
the scope and never by the user), and every query is filtered by the scope of the user signed in **in this request**
(``auth.identity.scope``): nothing the browser sends names a region, a grid or a case, so
editing a callback payload cannot reach another district. The only inputs are the refresh
counter, the page's own digests (compared, never trusted) and the map metric (one of two
names). Errors become a Chinese banner; the cause goes to the log, never to the browser.

Two server callbacks:

* ``geometry`` — once per page load: the scope's grid polygons in a compact form
  (``dashboard.figures.scopemap``: integer deltas at 1e-5°, codes grouped by community), about
  a third of the GeoJSON text. ``layouts/assets/view.js`` decodes it for the map.
* ``refresh`` — at load and every 30 s: KPIs, grid values of the map's metric (non-zero
  cells only), hot spots, areas, unit ranking, 综合考评 and overdue list. Panels whose content
  did not change since the page's last answer are not re-sent.

综合考评 is ``dashboard.figures.evaluation.evaluate`` (the wall's, the API's and the report's figures)
for the scope's sub-regions and units in the current month, judged as of now; it runs SQL
aggregates over the month, so it is computed at most once a minute per scope and process
(:meth:`ViewService.evaluation`). Its rows are the wall's (``callbacks.wall.ranking_rows``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import dash
import redis
from dash import ClientsideFunction, Input, Output, State, no_update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from dashboard.figures import readapi
from dashboard.figures.evaluation import RANKED_BELOW, Evaluation, ObjectKind, Period
from dashboard.figures.evaluation import evaluate as run_evaluation
from dashboard.figures.liveview import LiveView
from dashboard.figures.readcache import CachedReads, ReadCache
from dashboard.figures.scopemap import GeoPack, load_geo
from dashboard.figures.wallfigures import QueueRow
from dashboard.rules.clock import utcnow
from dashboard.rules.deadlines import Timing
from dashboard.rules.evalspec import WeightsError, weights_from_settings
from dashboard.rules.vocab import UNLOCATED
from dashboard.settings import Settings
from dashboard.store.scope import Scope, ScopeError
from layouts import view as page
from layouts.kit.fmt import PLACEHOLDER, fmt_rate
from layouts.kit.health import render_banner
from layouts.kit.ranking import period_text as eval_period_text
from layouts.kit.ranking import ranking_rows

from .timing import PageService

log = logging.getLogger(__name__)

GEO_TTL_S = 300.0  # like the scope cache: a city import shows after 5 minutes at most
GEO_CACHE_MAX = 32  # scopes kept per process (a city has a few dozen districts and streets)
EVAL_TTL_S = 60.0  # 综合考评 (SQL aggregates over the month): at most once a minute per scope
FIGURES_SHARE_S = 5.0  # a scope's /view page is computed at most this often per worker (its refresh: 30 s)

# What the banner says, by cause (never the exception's text).
REFUSED = "无法显示数据"  # the banner's title when the viewer may not see the figures (MSG_* say why)
MSG_SIGNED_OUT = "未登录或登录已过期，请重新登录后查看"
MSG_FORBIDDEN = "您的账户无权查看本页面"
MSG_SCOPE = "您的管辖范围在系统中不存在，请联系管理员"
MSG_DATABASE = "暂时无法读取数据库，显示的是上次的数据，正在重试"
MSG_INTERNAL = "服务器内部错误，显示的是上次的数据，正在重试（详见服务日志）"
MSG_EVAL_WEIGHTS = "综合考评的权重配置有误，无法计算，请联系管理员（详见服务日志）"
MSG_EVAL_FAILED = "综合考评暂时无法计算，请稍后再看（详见服务日志）"


def _digest(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class Refused(Exception):
    """The request may not see /view's data; ``message`` says why (in Chinese)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def signed_in_scope(session: Session) -> Scope:
    """The scope of the user signed in to this request, after checking /view's role rule.

    Raises :class:`Refused` without a user, for a role /view does not admit (a wall screen's
    display token) or when the user's region no longer exists.
    """
    from auth import identity, policy

    try:
        who = identity.current()
    except Exception:  # no login manager / no request: nobody is signed in
        who = None
    if who is None:
        raise Refused(MSG_SIGNED_OUT)
    if not policy.PAGES["view"].allows(who.role, who.city_scope):
        raise Refused(MSG_FORBIDDEN)
    try:
        return identity.scope(session)
    except identity.NotSignedIn:
        raise Refused(MSG_SIGNED_OUT) from None
    except ScopeError:
        raise Refused(MSG_SCOPE) from None


# 综合考评 ranks the level below the scope (one definition, shared with the wall's ranking panel).
EVAL_KIND = RANKED_BELOW


# -- the figures --------------------------------------------------------------------------------
@dataclass
class Figures:
    """Everything one refresh shows, as plain data (rendered by layouts/view.py)."""

    at: datetime
    scope: str
    kpis: list[str]
    values: dict[str, int]
    hot: list[dict[str, Any]]
    areas_title: str
    areas: list[dict[str, Any]]
    overdue: list[dict[str, Any]]
    overdue_count: str
    units: list[dict[str, Any]]
    units_count: str
    ranking: Ranking | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # the readapi results (tests)


def overdue_row(c: QueueRow) -> dict[str, Any]:
    if c.overdue:
        late = f"超 {page.hm(c.overdue_work_minutes if c.working else c.overdue_calendar_minutes)}"
    else:
        late = f"剩 {page.hm(c.remaining_minutes)}"
    measure = "工作时间" if c.working else "自然时间"
    return {
        "id": c.case_id,
        "number": c.number or c.case_id,
        "overdue": bool(c.overdue),
        "urgent": bool(c.urgent),
        "klass": " / ".join(p for p in (c.major_name, c.minor_name) if p) or PLACEHOLDER,
        "place": " · ".join(p for p in (c.district, c.street, c.community) if p) or ("" if c.grid_code else UNLOCATED),
        "grid": c.grid_code,
        "unit": c.unit_name or "未派遣",
        "stage": c.stage_label,
        "late": late,
        "deadline": f"{c.clock_label}截止 {c.deadline_at:%m-%d %H:%M}（{measure}）",
        "description": c.description or "",
    }


def unit_rows(board: readapi.UnitBoard, limit: int) -> list[dict[str, Any]]:
    rows = []
    for rank, u in enumerate(board.units[:limit], start=1):
        rows.append({
            "code": u.code, "rank": rank, "unit": u.name,
            "overdue": u.overdue, "pending": u.pending, "disposing": u.pending + u.feedback,
            "closed_today": u.closed_today, "on_time_rate": fmt_rate(u.on_time_rate),
            "rework": u.rework, "extended": u.extension,
            "levels": {"overdue": u.levels.get("overdue"), "on_time_rate": u.levels.get("on_time_rate"),
                       "rework": u.levels.get("rework"), "extended": u.levels.get("extension")},
        })
    return rows


@dataclass(frozen=True)
class Ranking:
    """The 综合考评 panel: the period note, the sub-regions' and the units' rows
    (``ranking_rows``, at most ``page.EVAL_ROWS`` each) and their totals; or an error (Chinese)."""

    kind: str  # ObjectKind value of the regions ranked
    note: str
    regions: list[dict[str, Any]]
    regions_total: int
    units: list[dict[str, Any]]
    units_total: int
    error: str | None = None
    raw: tuple[Evaluation, ...] = field(default=(), repr=False, compare=False)

    def view(self) -> dict[str, Any]:
        """What the page shows (digested)."""
        return {"kind": self.kind, "note": self.note, "regions": [self.regions, self.regions_total],
                "units": [self.units, self.units_total], "error": self.error}


class ViewService(PageService):
    """What /view's callbacks share in one process: the timing (built once), the geometry of
    the scopes recently shown and the scoped figures (``reads``, shared with the read API)."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], client: redis.Redis,
                 clock: Callable[[], datetime] = utcnow, live: Callable[[], LiveView | None] | None = None) -> None:
        """``live``: the worker's live view, when it has one (the wall's); the scoped summary
        and overdue page then come from it (``CachedReads``)."""
        super().__init__(settings, sessions, client, clock)
        self._geo: OrderedDict[tuple[str, str], tuple[float, GeoPack]] = OrderedDict()
        self._geo_lock = threading.Lock()
        self._eval: OrderedDict[tuple[str, str, str], tuple[float, Ranking]] = OrderedDict()
        self.reads = CachedReads(ReadCache(settings.read_cache_s), live)
        # A /view refresh comes every 30 s and computes a scope's whole page (~0.1–0.5 s of SQL):
        # shared for FIGURES_SHARE_S, not only read_cache_s, or nearly every phone's refresh
        # computes it again (bench/viewers.py: /view was the slowest answer at 50 and 100 viewers).
        # read_cache_s 0 (the benchmarks' baseline) still means every refresh computes.
        self.figure_cache = ReadCache(max(settings.read_cache_s, FIGURES_SHARE_S) if settings.read_cache_s else 0)

    # -- per-process state ------------------------------------------------------------------
    def geo(self, session: Session, scope: Scope) -> GeoPack:
        key = (session.get_bind().engine.url.render_as_string(hide_password=True), scope.code or "")
        now = time.monotonic()
        with self._geo_lock:
            hit = self._geo.get(key)
            if hit is not None and now - hit[0] < GEO_TTL_S:
                self._geo.move_to_end(key)
                return hit[1]
        pack = load_geo(session, scope)
        with self._geo_lock:
            self._geo[key] = (now, pack)
            self._geo.move_to_end(key)
            while len(self._geo) > GEO_CACHE_MAX:
                self._geo.popitem(last=False)
        return pack

    def evaluation(self, session: Session, scope: Scope, now: datetime) -> Ranking:
        """综合考评 of the scope's sub-regions and units in the month of ``now`` (city time),
        judged as of ``now``: computed at most once a minute per scope, period and process."""
        tz = self.settings.tz
        period = Period.parse(f"{now.astimezone(tz):%Y-%m}", tz)
        kind = EVAL_KIND.get(scope.level, ObjectKind.DISTRICT)
        key = (session.get_bind().engine.url.render_as_string(hide_password=True), scope.code or "", period.label)
        with self._geo_lock:
            hit = self._eval.get(key)
            if hit is not None and time.monotonic() - hit[0] < EVAL_TTL_S:
                return hit[1]
        try:
            weights = weights_from_settings(self.settings)
        except WeightsError:
            log.exception("view: 综合考评 weights unreadable")
            return Ranking(kind.value, "", [], 0, [], 0, MSG_EVAL_WEIGHTS)
        regions = run_evaluation(session, scope, kind, period, weights, now=now)
        units = run_evaluation(session, scope, ObjectKind.UNIT, period, weights, now=now)
        region_rows, unit_rows_ = ranking_rows(regions), ranking_rows(units)
        # the period and its instant; "ranked by 综合指标值" is the table's own column
        note = eval_period_text(regions, tz).removesuffix(" · 按综合指标值排名")
        ranking = Ranking(kind.value, note,
                          region_rows[:page.EVAL_ROWS], len(region_rows),
                          unit_rows_[:page.EVAL_ROWS], len(unit_rows_), raw=(regions, units))
        with self._geo_lock:
            self._eval[key] = (time.monotonic(), ranking)
            self._eval.move_to_end(key)
            while len(self._eval) > GEO_CACHE_MAX:
                self._eval.popitem(last=False)
        return ranking

    # -- figures (scope given: the callbacks pass the signed-in user's) ---------------------
    def grid_rows(self, session: Session, scope: Scope, timing: Timing, now: datetime) -> list[readapi.GridRow]:
        """Every grid of the scope with any figure (readapi.grids, page by page)."""
        rows: list[readapi.GridRow] = []
        offset = 0
        while True:
            part = self.reads.grids(session, scope, timing, now, limit=readapi.MAX_LIMIT, offset=offset)
            rows.extend(part.grids)
            offset += len(part.grids)
            if not part.grids or offset >= part.total:
                return rows

    def figures(self, session: Session, scope: Scope, metric: str, now: datetime | None = None) -> Figures:
        """What one refresh of ``scope`` shows for ``metric`` at ``now`` (default the clock): made
        once per scope, metric and FIGURES_SHARE_S, shared by every viewer of the scope."""
        metric = page.metric_of(metric)
        at = now or self.clock()
        return self.figure_cache.get("view:" + metric, scope, (), at,
                                     lambda: self._figures(session, scope, metric, at))

    def _figures(self, session: Session, scope: Scope, metric: str, now: datetime) -> Figures:
        timing = self.timing(session)
        summary = self.reads.summary(session, scope, timing, now)
        grids = self.grid_rows(session, scope, timing, now)
        queue = self.reads.overdue(session, scope, timing, now, limit=page.OVERDUE_ROWS)
        board = self.reads.units(session, scope, timing, now)
        pack = self.geo(session, scope)
        try:
            ranking = self.evaluation(session, scope, now)
        except SQLAlchemyError:
            raise  # the database is away: the whole refresh says so
        except Exception:
            log.exception("view: 综合考评 failed")
            ranking = Ranking(EVAL_KIND.get(scope.level, ObjectKind.DISTRICT).value, "", [], 0, [], 0,
                              MSG_EVAL_FAILED)

        values = {g.code: int(getattr(g, metric)) for g in grids if getattr(g, metric)}
        hot_grids = sorted((g for g in grids if getattr(g, metric) > 0), key=lambda g: (-getattr(g, metric), g.code))
        hot = [{"code": g.code, "place": " · ".join(p for p in (g.street, g.community) if p),
                "value": int(getattr(g, metric))} for g in hot_grids[:page.HOT_SPOTS]]
        sums: dict[str, list[int]] = {}
        for g in grids:
            parent = pack.parents.get(g.code)
            if parent is not None:
                acc = sums.setdefault(parent, [0, 0, 0])
                acc[0] += g.open
                acc[1] += g.overdue
                acc[2] += g.new_hour
        areas: list[dict[str, Any]] = [{"code": code, "name": name, "open": sums.get(code, [0, 0, 0])[0],
                  "overdue": sums.get(code, [0, 0, 0])[1], "new_hour": sums.get(code, [0, 0, 0])[2]}
                 for code, name in pack.children]
        areas.sort(key=lambda a: (-a["overdue"], -a["open"], a["code"]))
        total_queue = queue.overdue_total + queue.due_soon_total
        return Figures(
            at=now.astimezone(self.settings.tz),
            scope=page.scope_text(summary.scope_name, summary.scope_level),
            kpis=page.kpi_texts([getattr(summary, key) for key, _, _ in page.KPIS]),
            values=values,
            hot=hot,
            areas_title=page.CHILD_TITLES.get(scope.level, "各区概况"),
            areas=areas,
            overdue=[overdue_row(c) for c in queue.cases],
            overdue_count=f"超期 {queue.overdue_total:,} · 临期 {queue.due_soon_total:,} · "
                          + page.count_text(len(queue.cases), total_queue),
            units=unit_rows(board, page.UNIT_ROWS),
            units_count=page.count_text(min(len(board.units), page.UNIT_ROWS), len(board.units)),
            ranking=ranking,
            raw={"summary": summary, "grids": grids, "overdue": queue, "units": board},
        )

    # -- what the callbacks answer ----------------------------------------------------------
    def geometry(self) -> tuple[Any, str]:
        """(compact geometry or None, the map note) for the signed-in user's scope."""
        try:
            with self.sessions() as session:
                scope = signed_in_scope(session)
                pack = self.geo(session, scope)
        except Refused as exc:
            return None, exc.message
        except Exception:
            log.exception("view: grid geometry failed")
            return None, "地图暂时无法载入，请稍后刷新页面"
        if not pack.grids:
            return pack.compact, "辖区内没有单元网格"
        return pack.compact, f"共 {pack.grids:,} 个单元网格；点击网格查看该网格的案件"

    def refresh(self, metric: Any, state: Any) -> tuple[Any, ...]:
        """The refresh callback's outputs (see :data:`OUTPUTS`)."""
        metric = page.metric_of(metric)
        last = state.get("d") if isinstance(state, dict) else None
        had: dict[str, Any] = last if isinstance(last, dict) else {}
        try:
            with self.sessions() as session:
                scope = signed_in_scope(session)
                fig = self.figures(session, scope, metric)
        except Refused as exc:
            return self._refused(exc.message)
        except SQLAlchemyError:
            log.exception("view: database error")
            return self._failed(MSG_DATABASE)
        except Exception:
            log.exception("view: refresh failed")
            return self._failed(MSG_INTERNAL)
        parts: dict[str, Any] = {
            "scope": fig.scope, "kpis": fig.kpis, "values": fig.values, "hot": fig.hot,
            "areas": [fig.areas_title, fig.areas], "overdue": [fig.overdue, fig.overdue_count],
            "units": [fig.units, fig.units_count],
            "eval": fig.ranking.view() if fig.ranking else None,
        }
        digests = {k: _digest(v) for k, v in parts.items()}
        fresh = {k for k in parts if digests[k] != had.get(k)}
        unit = page.METRICS[metric][1]

        def send(key: str, value: Callable[[], Any]) -> Any:
            return value() if key in fresh else no_update

        kpis = fig.kpis if "kpis" in fresh else [no_update] * len(page.KPIS)
        return (
            *render_banner(None), "gh-page view",
            fig.at.strftime("%H:%M:%S"),
            send("scope", lambda: fig.scope),
            *kpis,
            send("values", lambda: {"values": fig.values}),
            send("hot", lambda: page.render_hot(fig.hot, unit)),
            send("areas", lambda: fig.areas_title),
            send("areas", lambda: page.render_areas(fig.areas)),
            send("units", lambda: page.render_units(fig.units)),
            send("units", lambda: fig.units_count),
            send("overdue", lambda: page.render_overdue(fig.overdue)),
            send("overdue", lambda: fig.overdue_count),
            *(render_ranking(fig.ranking) if "eval" in fresh else [no_update] * 5),
            {"d": digests},
        )

    def _refused(self, message: str) -> tuple[Any, ...]:
        """Not allowed: say so and show no figures at all (nothing of an earlier user stays)."""
        banner, cls = render_banner(message, REFUSED)
        empty = page.render_hot([], "")
        return (banner, cls, "gh-page view is-refused", PLACEHOLDER, PLACEHOLDER,
                *[PLACEHOLDER] * len(page.KPIS),
                {"values": {}}, empty, page.CHILD_TITLES["city"], page.render_areas([]), page.render_units([]), "",
                page.render_overdue([]), "", *render_ranking(None), None)

    def _failed(self, message: str) -> tuple[Any, ...]:
        """A passing failure: keep the figures shown, faded, under a banner."""
        banner, cls = render_banner(message)
        return (banner, cls, "gh-page view is-stale", no_update, no_update, *[no_update] * len(page.KPIS),
                no_update, no_update, no_update, no_update, no_update, no_update, no_update, no_update,
                *[no_update] * 5, no_update)


def render_ranking(ranking: Ranking | None) -> list[Any]:
    """The 综合考评 panel's outputs: note, region tab label and subtitle, regions, units."""
    if ranking is None:  # refused: nothing at all
        empty = page.render_eval([], (), "")
        return ["", page.EVAL_TABS["district"], page.EVAL_TABS["district"], empty, empty]
    tab = page.EVAL_TABS.get(ranking.kind, page.EVAL_TABS["district"])
    if ranking.error:
        from dash import html

        message = html.Div(ranking.error, className="gh-empty view-eval__error", role="alert")
        return ["", tab, tab, message, message]
    link = "grid" if ranking.kind == ObjectKind.GRID.value else "region"
    return [
        ranking.note, tab, tab,
        page.render_eval(ranking.regions, page.EVAL_REGION_COLUMNS, tab.removeprefix("各"), link,
                         ranking.regions_total),
        page.render_eval(ranking.units, page.EVAL_UNIT_COLUMNS, "处置单位", None, ranking.units_total),
    ]


# The refresh callback's outputs, in the order of ViewService.refresh's answer.
def outputs() -> list[Output]:
    return [
        Output("view-banner", "children"),
        Output("view-banner", "className"),
        Output("view-root", "className"),
        Output("view-updated", "children"),
        Output("view-scope", "children"),
        *[Output(f"view-kpi-{key}", "children") for key, _, _ in page.KPIS],
        Output("view-values", "data"),
        Output("view-hot", "children"),
        Output("view-areas-title", "children"),
        Output("view-areas", "children"),
        Output("view-units", "children"),
        Output("view-units-count", "children"),
        Output("view-overdue", "children"),
        Output("view-overdue-count", "children"),
        Output("view-eval-note", "children"),
        Output("view-eval-tab", "children"),
        Output("view-eval-subtitle", "children"),
        Output("view-eval-regions", "children"),
        Output("view-eval-units", "children"),
        Output("view-state", "data"),
    ]


def register(app: dash.Dash, service: ViewService) -> None:
    """Register /view's callbacks (every output id starts with \"view-\")."""

    @app.callback(
        Output("view-geo", "data"),
        Output("view-map-note", "children"),
        Input("view-config", "data"),
    )
    def geometry(_config: Any) -> tuple[Any, str]:
        return service.geometry()

    @app.callback(
        *outputs(),
        Input("view-tick", "n_intervals"),
        State("view-config", "data"),
        State("view-state", "data"),
    )
    def refresh(_n: Any, config: Any, state: Any) -> tuple[Any, ...]:
        metric = config.get("metric") if isinstance(config, dict) else None
        return service.refresh(metric, state)

    # Decode the geometry for the map and fit the map to it (browser only).
    app.clientside_callback(
        ClientsideFunction(namespace="gridhall_view", function_name="decode"),
        Output("view-grids", "data"),
        Output("view-mapview", "viewport"),
        Input("view-geo", "data"),
    )
    # Recolour the cells whose values changed.
    app.clientside_callback(
        ClientsideFunction(namespace="gridhall_view", function_name="paint"),
        Output("view-painted", "children"),
        Input("view-values", "data"),
        State("view-config", "data"),
    )
    # Refreshes stopped arriving (server or network gone): the browser says so itself.
    app.clientside_callback(
        ClientsideFunction(namespace="gridhall_view", function_name="watch"),
        Output("view-offline", "children"),
        Output("view-offline", "className"),
        Input("view-watch-tick", "n_intervals"),
        State("view-config", "data"),
    )


__all__ = ["Figures", "Ranking", "ViewService", "outputs", "register", "signed_in_scope"]
