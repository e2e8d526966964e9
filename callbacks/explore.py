"""/explore callbacks and its CSV/XLSX export (docs/explore.md).

The URL's query string is the page's state (``dashboard.figures.selection.Selection``):

* ``explore-url.search`` → everything shown (figures, map, table, filter controls), the hot
  grids and notes, and the open case's detail — three callbacks, so opening a case does not
  recompute the figures;
* the filter controls, a click on the map or a table row, and closing the detail → a new
  ``explore-url.search`` (pushed to the history, so back/forward and links work);
* the hot-spot buttons → a note in ``hotspot_notes`` (the page's only write).

Every callback asks ``auth.identity`` who is signed in and filters by that user's scope on
the server; a region, grid or case outside it answers like an unknown one. Errors become a
message in the page, never a traceback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import dash
import flask
from dash import ALL, ClientsideFunction, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from sqlalchemy.orm import Session

from auth import policy
from dashboard.figures import explore, hotspots, selection, timetravel
from dashboard.figures.casedetail import case_detail
from dashboard.figures.devicealarms import device_alarms
from dashboard.figures.evaluation import Evaluation, ObjectKind, Period, evaluate
from dashboard.figures.riskmodel import case_risk
from dashboard.figures.scoped import OutOfScope
from dashboard.output.export import to_csv, to_xlsx
from dashboard.rules.evalspec import INDICATORS, weights_from_settings
from dashboard.store.archive import PeriodArchived
from dashboard.store.scope import Scope
from dashboard.store.users import UserRole, active_user
from layouts import explore as view
from layouts.explore import (
    children_title,
    class_figure,
    devices_note,
    map_note,
    month_options,
    ranking_columns,
    ranking_options,
    render_children,
    render_crumbs,
    render_detail,
    render_devices,
    render_hot,
    render_notes,
    render_unlocated,
    shown_note,
    trend_figure,
    unlocated_note,
)
from layouts.kit.fmt import PLACEHOLDER, fmt_int, fmt_rate
from layouts.kit.ranking import period_text, ranking_rows

from .timing import PageService

log = logging.getLogger(__name__)

SIGNED_OUT = "未登录或登录已过期，请重新登录"
FAILED = "查询失败，请稍后重试（详情见服务器日志）"
EXPORT_RULE = "/explore/export.<fmt>"
FILTERS = ("window", "kind", "major", "minor", "source", "stage", "unit", "flag")
# 综合考评's controls (explore-ev-month, explore-ev-ranking), also URL parameters.
EVAL_CONTROLS = ("month", "ranking")
RANKING_TTL_S = 60.0  # an evaluation per (scope, kind, month) is reused this long
RANKING_CACHE_MAX = 256


@dataclass(frozen=True)
class Viewer:
    """Who asks, as the callbacks need it: role, display name and region scope."""

    role: str
    name: str
    scope: Scope

    @property
    def writes(self) -> bool:
        return self.role == UserRole.SHIFT_LEAD.value


class ExploreService(PageService):
    """What /explore's callbacks share in one process (settings, sessions, clock, timing)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (scope code, kind, month) → (monotonic time, Evaluation): the 综合考评 panel
        self._rankings: dict[tuple[str | None, str, str], tuple[float, Evaluation]] = {}
        self._rankings_lock = threading.Lock()

    # -- who ---------------------------------------------------------------------------------
    def viewer(self, session: Session) -> Viewer | None:
        """The signed-in user of this request (None: nobody, or outside a request)."""
        from auth import identity

        try:
            who = identity.current()
            if who is None:
                return None
            return Viewer(who.role, who.display_name, identity.scope(session))
        except Exception:  # no sign-in configured, user gone, scope region gone: nobody
            log.debug("explore: no signed-in user", exc_info=True)
            return None

    # -- the figures ----------------------------------------------------------------------------
    def render(self, session: Session, viewer: Viewer, search: str | None) -> dict[str, Any]:
        """Every output of the main callback, by name (see ``MAIN_OUTPUTS``)."""
        now = self.clock()
        timing = self.timing(session)
        tz = self.settings.tz
        out: dict[str, Any] = {"updated": now.astimezone(tz).strftime("%H:%M:%S"),
                               "who": f"辖区：{viewer.scope.name}"}
        try:
            sel = selection.Selection.parse(search)
        except selection.SelectionError as exc:
            return {**out, **self._empty(f"地址参数有误：{exc}")}
        scope = viewer.scope
        try:
            place = explore.place(session, scope, timing, now, sel)
        except OutOfScope:
            return {**out, **self._empty(explore.NOT_FOUND, sel)}
        k = explore.kpis(session, scope, timing, now, sel)
        kids = explore.children(session, scope, timing, now, sel)
        by, classes = explore.class_breakdown(session, scope, timing, now, sel)
        tr = explore.trends(session, scope, timing, now, sel)
        mp = explore.map_data(session, scope, timing, now, sel)
        table = explore.case_table(session, scope, timing, now, sel)
        majors, minors = explore.class_options(timing, sel.kind, sel.major)
        units = explore.unit_options(session, scope, timing, now, sel)
        out.update({
            "crumbs": render_crumbs(place, sel),
            "error": [], "error_class": "explore-error",
            "kpis": [fmt_int(k.total), fmt_int(k.reported), fmt_int(k.closed), fmt_int(k.open),
                     fmt_int(k.overdue), fmt_int(k.due_soon), fmt_int(k.urgent),
                     fmt_rate(k.on_time_close_rate)],
            "children_title": children_title(place.level),
            "children": render_children(kids, sel),
            "map_title": "案件分布" if mp.mode == "cases" else "网格分布",
            "map_note": map_note(mp),
            "layer": None if mp.clustered else mp.geojson,
            "layer_hideout": {"max": mp.max_value, "mode": mp.mode},
            "cluster": mp.geojson if mp.clustered else None,
            "cluster_hideout": {"max": mp.max_value, "mode": mp.mode},
            "outline": mp.outline,
            "viewport": {"bounds": mp.bounds, "transition": "fitBounds"} if mp.bounds else no_update,
            "classes_title": "类别构成 · " + ("按小类" if by == "minor" else "按大类"),
            "classes": class_figure(classes),
            "trend_days": trend_figure(tr.days, "日期"),
            "trend_hours": trend_figure(tr.hours, "时"),
            "rows": list(table.rows),
            "table_note": shown_note(table.shown, table.total, "条"),
            "csv": sel.with_case(None).href("/explore/export.csv"),
            "xlsx": sel.with_case(None).href("/explore/export.xlsx"),
            "values": [getattr(sel, f) for f in FILTERS],
            "options": [
                [{"label": f"{c} {n}", "value": c} for c, n in majors],
                [{"label": f"{c} {n}", "value": c} for c, n in minors],
                [{"label": n, "value": c} for c, n in units],
            ],
        })
        return out

    def _empty(self, message: str, sel: selection.Selection | None = None) -> dict[str, Any]:
        empty = {"type": "FeatureCollection", "features": []}
        return {
            "crumbs": [dcc.Link("返回起始范围", href="/explore", className="explore-crumb")],
            "error": message, "error_class": "explore-error is-on",
            "kpis": [PLACEHOLDER] * len(view.KPIS), "children_title": "下级区域", "children": [],
            "map_title": "网格分布", "map_note": "", "layer": empty, "layer_hideout": {"max": 1, "mode": "grids"},
            "cluster": None, "cluster_hideout": {"max": 1, "mode": "grid_points"}, "outline": None,
            "viewport": no_update, "classes_title": "类别构成", "classes": class_figure([]),
            "trend_days": trend_figure((), "日期"), "trend_hours": trend_figure((), "时"),
            "rows": [], "table_note": "", "csv": "/explore/export.csv", "xlsx": "/explore/export.xlsx",
            "values": [getattr(sel, f) for f in FILTERS] if sel is not None else [no_update] * len(FILTERS),
            "options": [no_update] * 3,
        }

    # -- 综合考评 ---------------------------------------------------------------------------------
    def evaluation(self, session: Session, scope: Scope, kind: str, month: str, now: datetime) -> Evaluation:
        """``evaluate()`` of ``kind`` in ``scope`` for ``month``, reused for RANKING_TTL_S per process."""
        key = (scope.code, kind, month)
        with self._rankings_lock:
            hit = self._rankings.get(key)
        if hit is not None and time.monotonic() - hit[0] < RANKING_TTL_S:
            return hit[1]
        ev = evaluate(session, scope, ObjectKind(kind), Period.parse(month, self.settings.tz),
                      weights_from_settings(self.settings), now=now)
        with self._rankings_lock:
            stamp = time.monotonic()
            if len(self._rankings) >= RANKING_CACHE_MAX:
                expired = [k for k, (t, _) in self._rankings.items() if stamp - t >= RANKING_TTL_S]
                for k in expired or list(self._rankings):
                    self._rankings.pop(k, None)
            self._rankings[key] = (stamp, ev)
        return ev

    def ranking(self, session: Session, viewer: Viewer, search: str | None) -> dict[str, Any]:
        """Every output of the 综合考评 callback, by name (see ``RANKING_OUTPUTS``)."""
        now = self.clock()
        tz = self.settings.tz
        this_month = explore.current_month(now, tz)
        out: dict[str, Any] = {"rows": [], "columns": ranking_columns(None), "note": "", "msg": "",
                               "month_options": month_options(this_month, None), "month": this_month,
                               "ranking_options": ranking_options(None), "ranking": selection.DEFAULT_RANKING}
        try:
            sel = selection.Selection.parse(search)
        except selection.SelectionError as exc:
            return {**out, "msg": f"地址参数有误：{exc}"}
        month = sel.month or this_month
        out.update(month_options=month_options(this_month, sel.month), month=month,
                   ranking=sel.ranking or selection.DEFAULT_RANKING)
        if month > this_month:
            return {**out, "msg": "考评月份不能晚于本月"}
        timing = self.timing(session)
        try:
            target, kind, place = explore.ranking_target(session, viewer.scope, timing, now, sel)
        except OutOfScope:
            return {**out, "msg": explore.NOT_FOUND}
        out["ranking_options"] = ranking_options(place.level)
        if target is None:
            return {**out, "msg": "网格是最小单元，不做综合考评；请回到社区或以上层级查看"}
        try:
            ev = self.evaluation(session, target, kind, month, now)
        except PeriodArchived as exc:  # its closed cases were archived (docs/history.md)
            return {**out, "msg": str(exc).split(" — ")[0]}
        rows = ranking_rows(ev)
        measures = {i.key: i.measure for i in INDICATORS[ObjectKind(kind).group]}
        for row in rows:
            for key, measure in measures.items():
                value = row.get(key)
                if isinstance(value, float) and measure in ("area", "density"):
                    row[key] = f"{value:,.2f}"
                elif isinstance(value, float) and measure == "score":
                    row[key] = f"{value:.1f}"
            if kind in explore.CHILD_KIND.values():
                row["href"] = sel.at(row["id"]).href()
        what = f"{place.name} · " + (children_title(place.level) if kind in explore.CHILD_KIND.values()
                                     else selection.RANKINGS[kind])
        short = sum(1 for r in ev.rows if not r.sample_ok)
        out.update(rows=rows, columns=ranking_columns(kind),
                   note=f"{what} · {period_text(ev, tz)} · 共 {len(rows)} 个" + (
                       f"，{short} 个样本不足（少于 {ev.min_cases} 件，不评等级、不排名）"
                       if short else ""))
        if not rows:
            out["msg"] = "本月暂无可考评的对象"
        return out

    # -- hot grids and notes --------------------------------------------------------------------
    def hot(self, session: Session, viewer: Viewer, search: str | None) -> tuple[Any, Any]:
        """(the hot-grid list, the notes panel) of the selection."""
        now = self.clock()
        timing = self.timing(session)
        try:
            sel = selection.Selection.parse(search)
            place = explore.place(session, viewer.scope, timing, now, sel)
        except (selection.SelectionError, OutOfScope):
            return [], []
        spots = explore.hot_grids(session, viewer.scope, timing, now, sel)
        acks = hotspots.acknowledged(session, viewer.scope, now)
        tz = self.settings.tz
        hot = render_hot(spots, acks, sel, viewer.writes, tz)
        if place.level != "grid" or place.code is None:
            codes = [s.code for s in spots]
            notes = hotspots.recent(session, viewer.scope, grid_codes=codes, limit=30) if codes else []
            return hot, render_notes(notes, None, False, tz)
        notes = hotspots.recent(session, viewer.scope, grid_codes=[place.code], limit=50)
        return hot, render_notes(notes, place.code, viewer.writes, tz)

    def note(self, session: Session, viewer: Viewer, user_id: int, grid_code: Any, kind: str, text: Any) -> str:
        """Store an acknowledgement or note; returns the message to show (the caller commits)."""
        if not viewer.writes:
            raise hotspots.NotAllowed("只有值班长可以确认或批注热点")
        user = active_user(session, user_id)
        if user is None:
            raise hotspots.NotAllowed("账户不存在或已停用")
        if not isinstance(grid_code, str) or not isinstance(text, (str, type(None))):
            raise OutOfScope(str(grid_code))
        saved = hotspots.add(session, user, viewer.scope, grid_code, kind, text or "", self.clock())
        return f"已{saved.kind_label}网格 {saved.grid_code}"

    # -- 待定位 ----------------------------------------------------------------------------------
    def unlocated(self, session: Session, viewer: Viewer, search: str | None) -> tuple[Any, str, str]:
        """(the 待定位 list, its note, the box's class): shown to city-scope users at the city
        level only; such cases belong to no district, so any other view hides the box."""
        hidden: tuple[Any, str, str] = ([], "", "explore-unlocated")
        try:
            sel = selection.Selection.parse(search)
        except selection.SelectionError:
            return hidden
        if sel.region is not None or not viewer.scope.is_city:
            return hidden
        u = explore.unlocated(session, viewer.scope, self.timing(session), self.clock())
        if u is None:
            return hidden
        return render_unlocated(u, sel), unlocated_note(u), "explore-unlocated is-on"

    # -- 设备告警统计 -----------------------------------------------------------------------------
    def devices(self, session: Session, viewer: Viewer, search: str | None) -> tuple[Any, str, str]:
        """(设备告警统计, its note, the box's class): video/IoT alarm counters of the selection's
        alarm cases; the box is hidden when it has none (docs/sources.md)."""
        hidden: tuple[Any, str, str] = ([], "", "explore-devices")
        try:
            sel = selection.Selection.parse(search)
            d = device_alarms(session, viewer.scope, self.timing(session), self.clock(), sel)
        except (selection.SelectionError, OutOfScope):
            return hidden
        if not d.devices:
            return hidden
        return render_devices(d), devices_note(d), "explore-devices is-on"

    # -- case detail ----------------------------------------------------------------------------
    def detail(self, session: Session, viewer: Viewer, search: str | None) -> tuple[Any, str]:
        try:
            sel = selection.Selection.parse(search)
        except selection.SelectionError:
            return [], "explore-detail"
        if not sel.case:
            return [], "explore-detail"
        timing = self.timing(session)
        d = case_detail(session, viewer.scope, timing, self.clock(), sel.case)
        if d is None:
            return [html.P(explore.NOT_FOUND, className="explore-error is-on")], "explore-detail is-open"
        risk = None
        if d.clock_stage is not None:
            try:
                risk = case_risk(session, timing, self.clock(), d.case_id)
            except Exception:  # a model that cannot score must not take the case's page with it
                log.warning("overdue risk of case %s not computed", d.case_id, exc_info=True)
        return render_detail(d, sel, self.settings.tz, risk), "explore-detail is-open"

    # -- export ---------------------------------------------------------------------------------
    def export(self, fmt: str, query: str) -> flask.Response:
        """The current case table as CSV (UTF-8 with BOM) or XLSX; 404 outside the scope."""
        if fmt not in ("csv", "xlsx"):
            flask.abort(404)
        with self.sessions() as session:
            viewer = self.viewer(session)
            if viewer is None:
                return _text_response(SIGNED_OUT, 401)
            try:
                sel = selection.Selection.parse(query)
            except selection.SelectionError as exc:
                return _text_response(f"地址参数有误：{exc}", 400)
            now = self.clock()
            timing = self.timing(session)
            try:
                table = explore.export_rows(session, viewer.scope, timing, now, sel)
            except OutOfScope:
                return _text_response(explore.NOT_FOUND, 404)
        stamp = now.astimezone(self.settings.tz).strftime("%Y%m%d-%H%M")
        body, mimetype = (to_csv(table.rows), "text/csv; charset=utf-8") if fmt == "csv" else (
            to_xlsx(table.rows), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        response = flask.Response(body, mimetype=mimetype)
        response.headers["Content-Disposition"] = f"attachment; filename=explore-{stamp}.{fmt}"
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Total-Count"] = str(table.total)
        response.headers["X-Exported-Count"] = str(table.shown)
        return response


def _text_response(message: str, status: int) -> flask.Response:
    r = flask.Response(message, status=status, mimetype="text/plain")
    r.headers["Cache-Control"] = "no-store"
    return r


# -- callbacks ------------------------------------------------------------------------------------
MAIN_OUTPUTS: tuple[tuple[str, str, str], ...] = (
    # (name in ExploreService.render's dict, component id, property)
    ("crumbs", "explore-crumbs", "children"),
    ("who", "explore-who", "children"),
    ("updated", "explore-updated", "children"),
    ("error", "explore-error", "children"),
    ("error_class", "explore-error", "className"),
    ("children_title", "explore-children-title", "children"),
    ("children", "explore-children", "children"),
    ("map_title", "explore-map-title", "children"),
    ("map_note", "explore-map-note", "children"),
    ("layer", "explore-map-layer", "data"),
    ("layer_hideout", "explore-map-layer", "hideout"),
    ("cluster", "explore-map-cluster", "data"),
    ("cluster_hideout", "explore-map-cluster", "hideout"),
    ("outline", "explore-map-outline", "data"),
    ("viewport", "explore-map", "viewport"),
    ("classes_title", "explore-classes-title", "children"),
    ("classes", "explore-classes", "figure"),
    ("trend_days", "explore-trend-days", "figure"),
    ("trend_hours", "explore-trend-hours", "figure"),
    ("rows", "explore-table", "rowData"),
    ("table_note", "explore-table-note", "children"),
    ("csv", "explore-export-csv", "href"),
    ("xlsx", "explore-export-xlsx", "href"),
)


RANKING_OUTPUTS: tuple[tuple[str, str, str], ...] = (
    ("rows", "explore-ev-grid", "rowData"),
    ("columns", "explore-ev-grid", "columnDefs"),
    ("note", "explore-ev-note", "children"),
    ("msg", "explore-ev-msg", "children"),
    ("month_options", "explore-ev-month", "options"),
    ("month", "explore-ev-month", "value"),
    ("ranking_options", "explore-ev-ranking", "options"),
    ("ranking", "explore-ev-ranking", "value"),
)


def ranking_outputs() -> list[Output]:
    return [Output(cid, prop) for _, cid, prop in RANKING_OUTPUTS] + [Output("explore-ev-key", "data")]


def main_outputs() -> list[Output]:
    return ([Output(cid, prop) for _, cid, prop in MAIN_OUTPUTS]
            + [Output(f"explore-kpi-{key}", "children") for key, _, _ in view.KPIS]
            + [Output(f"explore-f-{f}", "value") for f in FILTERS]
            + [Output(f"explore-f-{f}", "options") for f in ("major", "minor", "unit")]
            + [Output("explore-view-key", "data")])


def _signed_out_outputs() -> list[Any]:
    n = len(MAIN_OUTPUTS) + len(view.KPIS) + len(FILTERS) + 3 + 1
    out: list[Any] = [no_update] * n
    names = [name for name, _, _ in MAIN_OUTPUTS]
    out[names.index("error")] = SIGNED_OUT
    out[names.index("error_class")] = "explore-error is-on"
    return out


def _flatten(result: dict[str, Any], key: str | None) -> list[Any]:
    return ([result[name] for name, _, _ in MAIN_OUTPUTS] + list(result.get("kpis", [PLACEHOLDER] * len(view.KPIS)))
            + list(result["values"]) + list(result["options"]) + [key])


def register(app: dash.Dash, service: ExploreService) -> None:
    """Register /explore's callbacks (every output id starts with \"explore-\") and its export."""
    from callbacks import handover, surges

    handover.register(app, service)  # the 交接班报告 section
    surges.register(app, service)  # the 突增预警 section

    @app.callback(*main_outputs(), Input("explore-url", "search"), Input("explore-refresh", "n_clicks"),
                  State("explore-view-key", "data"), *[State(f"explore-f-{f}", "value") for f in FILTERS])
    def show(search: Any, _refresh: Any, shown_key: Any, *controls: Any) -> list[Any]:
        search = search if isinstance(search, str) else ""
        try:
            key = selection.Selection.parse(search).view_key
        except selection.SelectionError:
            key = None
        if key is not None and key == shown_key and ctx.triggered_id == "explore-url":
            raise PreventUpdate  # only the open case changed: the detail callback shows it
        try:
            with service.sessions() as session:
                viewer = service.viewer(session)
                if viewer is None:
                    return _signed_out_outputs()
                result = service.render(session, viewer, search)
                # Set only the controls that differ from the URL (back/forward, a link): a
                # control changed while this answer was on its way must keep its new value.
                result["values"] = [no_update if v == (c or None) else v
                                    for v, c in zip(result["values"], controls, strict=False)]
                return _flatten(result, key)
        except PreventUpdate:
            raise
        except Exception:
            log.exception("explore: rendering %r failed", search)
            out = _signed_out_outputs()
            out[[n for n, _, _ in MAIN_OUTPUTS].index("error")] = FAILED
            return out

    @app.callback(*ranking_outputs(), Input("explore-url", "search"), Input("explore-refresh", "n_clicks"),
                  State("explore-ev-key", "data"), State("explore-ev-month", "value"),
                  State("explore-ev-ranking", "value"))
    def ranking(search: Any, _refresh: Any, shown_key: Any, month: Any, objects: Any) -> list[Any]:
        search = search if isinstance(search, str) else ""
        try:
            key = selection.Selection.parse(search).ranking_key
        except selection.SelectionError:
            key = None
        if key is not None and key == shown_key and ctx.triggered_id == "explore-url":
            raise PreventUpdate  # the filters or the open case changed: not the ranking
        names = [n for n, _, _ in RANKING_OUTPUTS]
        try:
            with service.sessions() as session:
                viewer = service.viewer(session)
                if viewer is None:
                    out: list[Any] = [no_update] * (len(names) + 1)
                    out[0], out[names.index("msg")] = [], SIGNED_OUT
                    return out
                result = service.ranking(session, viewer, search)
        except Exception:
            log.exception("explore: 综合考评 for %r failed", search)
            out = [no_update] * (len(names) + 1)
            out[0], out[names.index("msg")] = [], FAILED
            return out
        # like the filters: set a control only when it differs (it triggers navigate)
        if result["month"] == month:
            result["month"] = no_update
        if result["ranking"] == objects:
            result["ranking"] = no_update
        return [result[n] for n in names] + [key]

    @app.callback(Output("explore-hot", "children"), Output("explore-notes", "children"),
                  Input("explore-url", "search"), Input("explore-notes-version", "data"),
                  Input("explore-refresh", "n_clicks"))
    def hot(search: Any, _version: Any, _refresh: Any) -> tuple[Any, Any]:
        try:
            with service.sessions() as session:
                viewer = service.viewer(session)
                if viewer is None:
                    return [], []
                return service.hot(session, viewer, search if isinstance(search, str) else "")
        except Exception:
            log.exception("explore: hot grids for %r failed", search)
            return html.Div(FAILED, className="explore-error is-on"), []

    def side_box(name: str, what: str, compute: Callable[[Session, Any, str], tuple[Any, str, str]]) -> None:
        """A box beside the table (待定位, 设备告警统计): its rows, its note and its class (shown or
        not) for the page's selection; an error shows in the box, never a traceback."""
        @app.callback(Output(f"explore-{name}", "children"), Output(f"explore-{name}-note", "children"),
                      Output(f"explore-{name}-box", "className"),
                      Input("explore-url", "search"), Input("explore-refresh", "n_clicks"))
        def box(search: Any, _refresh: Any) -> tuple[Any, str, str]:
            try:
                with service.sessions() as session:
                    viewer = service.viewer(session)
                    if viewer is None:
                        return [], "", f"explore-{name}"
                    return compute(session, viewer, search if isinstance(search, str) else "")
            except Exception:
                log.exception("explore: %s for %r failed", what, search)
                return html.Div(FAILED, className="explore-error is-on"), "", f"explore-{name} is-on"

    side_box("unlocated", "待定位", service.unlocated)
    side_box("devices", "设备告警统计", service.devices)

    @app.callback(Output("explore-replay", "children"), Output("explore-replay-box", "className"),
                  Input("explore-url", "pathname"))
    def replay_box(_path: Any) -> tuple[Any, str]:
        """回放: the controls for the roles that may replay the wall, bounded by the stored events."""
        box = "explore-handover-box explore-replay-box"
        try:
            with service.sessions() as session:
                viewer = service.viewer(session)
                if viewer is None or viewer.role not in policy.REPLAY:  # server-side: the signed-in role
                    return [], box
                bounds = replay_bounds(session, service.settings.tz, service.clock())
        except Exception:
            log.exception("explore: 回放 bounds failed")
            return html.P(FAILED, className="explore-error is-on"), box + " is-on"
        if bounds is None:
            return html.P(REPLAY_EMPTY, className="explore-note"), box + " is-on"
        return view.replay_controls(*bounds), box + " is-on"

    @app.callback(Output("explore-replay-minute", "min"), Output("explore-replay-minute", "max"),
                  Output("explore-replay-minute", "marks"), Output("explore-replay-minute", "value"),
                  Input("explore-replay-date", "date"), State("explore-replay-minute", "value"),
                  State("explore-replay-bounds", "data"), prevent_initial_call=True)
    def replay_day(day: Any, minute: Any, bounds: Any) -> tuple[int, int, dict[int, str], int]:
        first, last = _replay_range(bounds)
        if first is None or last is None or not isinstance(day, str):
            raise PreventUpdate
        lo, hi = view.replay_day_bounds(first, last, day[:10])
        value = minute if isinstance(minute, int) else hi
        return lo, hi, view.replay_marks(lo, hi), min(max(value, lo), hi)

    @app.callback(Output("explore-replay-open", "href"), Output("explore-replay-minute-text", "children"),
                  Input("explore-replay-date", "date"), Input("explore-replay-minute", "value"),
                  Input("explore-replay-speed", "value"), Input("explore-url", "search"),
                  State("explore-replay-bounds", "data"))
    def replay_link(day: Any, minute: Any, speed: Any, search: Any, bounds: Any) -> tuple[str, str]:
        first, last = _replay_range(bounds)
        if first is None or last is None:
            raise PreventUpdate
        at = replay_minute(first, last, day, minute)
        region = _replay_region(search)
        return replay_href(at, speed, region), f"{at:%Y-%m-%d %H:%M}"

    @app.callback(Output("explore-detail-body", "children"), Output("explore-detail", "className"),
                  Input("explore-url", "search"))
    def detail(search: Any) -> tuple[Any, str]:
        try:
            with service.sessions() as session:
                viewer = service.viewer(session)
                if viewer is None:
                    return [], "explore-detail"
                return service.detail(session, viewer, search if isinstance(search, str) else "")
        except Exception:
            log.exception("explore: case detail for %r failed", search)
            return [html.P(FAILED, className="explore-error is-on")], "explore-detail is-open"

    @app.callback(Output("explore-url", "search"),
                  *[Input(f"explore-f-{f}", "value") for f in FILTERS],
                  *[Input(f"explore-ev-{f}", "value") for f in EVAL_CONTROLS],
                  Input("explore-map-layer", "clickData"), Input("explore-map-cluster", "clickData"),
                  Input("explore-table", "cellClicked"), Input("explore-go", "data"),
                  Input("explore-detail-close", "n_clicks"),
                  State("explore-url", "search"), prevent_initial_call=True)
    def navigate(*args: Any) -> str:
        n = len(FILTERS) + len(EVAL_CONTROLS)
        return navigate_to(ctx.triggered_id, args[:n], args[n:n + 4], args[-1],
                           this_month=explore.current_month(service.clock(), service.settings.tz))

    @app.callback(Output("explore-hot-msg", "children"), Output("explore-notes-version", "data"),
                  Input({"type": "explore-ack", "grid": ALL}, "n_clicks"),
                  Input({"type": "explore-hot-ack", "grid": ALL}, "n_clicks"),
                  Input({"type": "explore-note-save", "grid": ALL}, "n_clicks"),
                  State({"type": "explore-note-text", "grid": ALL}, "value"),
                  State({"type": "explore-note-text", "grid": ALL}, "id"),
                  State("explore-notes-version", "data"), prevent_initial_call=True)
    def write_note(_acks: Any, _hot: Any, _saves: Any, texts: Any, text_ids: Any, version: Any) -> tuple[Any, Any]:
        trig = ctx.triggered_id
        value = ctx.triggered[0].get("value") if ctx.triggered else None
        if not isinstance(trig, dict) or not value:
            raise PreventUpdate  # a button appearing (n_clicks 0), not a click
        kind = "note" if trig.get("type") == "explore-note-save" else "ack"
        grid = trig.get("grid")
        text = ""
        if kind == "note":
            for tid, t in zip(text_ids or [], texts or [], strict=False):
                if isinstance(tid, dict) and tid.get("grid") == grid:
                    text = t
        bump = (version if isinstance(version, int) else 0) + 1
        try:
            with service.sessions() as session:
                from auth import identity

                viewer = service.viewer(session)
                who = identity.current()
                if viewer is None or who is None:
                    return html.Span(SIGNED_OUT, className="explore-late"), no_update
                # Server-side: the role of the signed-in user, never what the page shows.
                if who.role != UserRole.SHIFT_LEAD.value:
                    return html.Span("只有值班长可以确认或批注热点", className="explore-late"), no_update
                message = service.note(session, viewer, who.user_id, grid, kind, text)
                session.commit()
                return html.Span(message, className="explore-ok"), bump
        except OutOfScope:
            return html.Span(explore.NOT_FOUND, className="explore-late"), no_update
        except (hotspots.NotAllowed, hotspots.BadNote) as exc:
            return html.Span(str(exc), className="explore-late"), no_update
        except Exception:
            log.exception("explore: writing a hot-spot note failed")
            return html.Span(FAILED, className="explore-late"), no_update

    app.clientside_callback(
        ClientsideFunction(namespace="gridhall_explore", function_name="clock"),
        Output("explore-clock", "children"),
        Input("explore-clock-tick", "n_intervals"),
        State("explore-config", "data"),
    )

    # Phones: the filters fold under 筛选 (explore.css); the button says how many are set.
    app.clientside_callback(
        ClientsideFunction(namespace="gridhall_explore", function_name="filtersToggle"),
        Output("explore-filters", "className"), Output("explore-filters-toggle", "children"),
        Output("explore-filters-toggle", "aria-expanded"),
        Input("explore-filters-toggle", "n_clicks"),
        *[Input(f"explore-f-{f}", "value") for f in FILTERS if f != "window"],
    )


def add_routes(server: flask.Flask, service: ExploreService) -> None:
    """The explore page's own Flask route (auth/policy.py lists it under the page): the export."""

    def export(fmt: str) -> flask.Response:
        try:
            return service.export(fmt, flask.request.query_string.decode("utf-8", "replace"))
        except Exception as exc:
            if isinstance(exc, flask.wrappers.Response) or hasattr(exc, "code"):
                raise
            log.exception("explore: export failed")
            return _text_response(FAILED, 500)

    server.add_url_rule(EXPORT_RULE, endpoint="explore_export", view_func=export)
    from callbacks import handover

    handover.add_routes(server, service)  # the handovers' HTML/PDF/XLSX


def navigate_to(trigger: Any, values: Any, clicks: Any, search: Any, this_month: str | None = None) -> str:
    """The new query string after a filter change or a click; PreventUpdate when unchanged.

    ``values`` are the filter controls as they are now (FILTERS, then 综合考评's EVAL_CONTROLS;
    missing ones keep the URL's), ``this_month`` the current month (the month control showing
    it leaves ``month`` out of the URL: the default), ``clicks`` the data of the map layer,
    the clustered layer, the table cell and a region or case link (``explore-go``: ``{"region": code}``
    or ``{"case": id}``, the 待定位 list).
    A click keeps the place and the open case of the URL and takes the filters from the
    controls: a filter changed a moment before is in the controls at once, while the URL and
    the links rendered from it follow only after a round trip, so a click made in between
    keeps it.
    """
    search = search if isinstance(search, str) else ""
    current = selection.Selection.lenient(search)
    clicks = list(clicks) + [None] * (4 - len(clicks))
    is_filter = trigger in {f"explore-f-{f}" for f in FILTERS} | {f"explore-ev-{f}" for f in EVAL_CONTROLS}
    try:
        shown = _from_controls(trigger, values, current, this_month)
    except selection.SelectionError:
        if is_filter:
            raise PreventUpdate from None
        shown = current  # controls that make no selection: a click keeps the URL's filters
    if is_filter:
        new = shown
    elif trigger in ("explore-map-layer", "explore-map-cluster"):
        data = clicks[0] if trigger == "explore-map-layer" else clicks[1]
        props = (data or {}).get("properties") if isinstance(data, dict) else None
        if not isinstance(props, dict) or props.get("cluster"):
            raise PreventUpdate
        if isinstance(props.get("case"), str):
            new = shown.with_case(props["case"])
        elif isinstance(props.get("code"), str) and props["code"] != current.region:
            new = shown.at(props["code"])
        else:
            raise PreventUpdate
    elif trigger == "explore-table":
        cell = clicks[2]
        row_id = cell.get("rowId") if isinstance(cell, dict) else None
        if not isinstance(row_id, str) or not row_id:
            raise PreventUpdate
        new = shown.with_case(row_id)
    elif trigger == "explore-go" and isinstance(clicks[3], dict) and "case" in clicks[3]:
        case_id = clicks[3]["case"]  # a 待定位 row: its shape is checked here, its scope by the detail
        if not isinstance(case_id, str) or not case_id:
            raise PreventUpdate
        try:
            new = selection.Selection.from_values({**_values(shown), "month": shown.month, "ranking": shown.ranking,
                                                 "region": shown.region, "case": case_id})
        except selection.SelectionError:
            raise PreventUpdate from None
    elif trigger == "explore-go":
        go = clicks[3]
        region = go.get("region") if isinstance(go, dict) else None
        if not isinstance(region, str):
            raise PreventUpdate
        try:  # the code's shape is checked here; its scope by the callbacks that read it
            new = selection.Selection.from_values({**_values(shown), "month": shown.month, "ranking": shown.ranking,
                                                 "region": region or None, "case": None})
        except selection.SelectionError:
            raise PreventUpdate from None
    elif trigger == "explore-detail-close":
        new = shown.with_case(None)
    else:
        raise PreventUpdate
    query = new.to_query()
    if query == search.lstrip("?"):
        raise PreventUpdate
    return f"?{query}" if query else ""


# -- 回放 ----------------------------------------------------------------------------------------
REPLAY_EMPTY = "尚无已存储的事件，没有可回放的时刻"


def replay_bounds(session: Session, tz: Any, now: datetime) -> tuple[datetime, datetime, str] | None:
    """(the first minute a replay may show, the last, a note) in city time; None with no event stored.

    Not before the first event stored, nor before what the online data can show when months were
    archived (``timetravel.earliest_online``, the bound the wall's replay itself checks), not in the future."""
    first = timetravel.first_event_at(session)
    if first is None:
        return None
    note = "最早可选第一条事件的时刻，最晚为现在"
    online = timetravel.earliest_online(session, tz)
    if online is not None:
        earliest, cutoff = online
        note = f"{cutoff} 之前的月份需要归档库（gridhall archive），最早可选 {earliest.astimezone(tz):%Y-%m-%d %H:%M}"
        first = max(first, earliest)
    # whole minutes inside the bounds: the first one at or after the first event, the current one
    lo = first.astimezone(tz)
    if lo.second or lo.microsecond:
        lo = lo.replace(second=0, microsecond=0) + timedelta(minutes=1)
    hi = now.astimezone(tz).replace(second=0, microsecond=0)
    if lo > hi:
        return None
    return lo, hi, note


def _replay_range(bounds: Any) -> tuple[datetime | None, datetime | None]:
    try:
        return datetime.fromisoformat(bounds["first"]), datetime.fromisoformat(bounds["last"])
    except (TypeError, KeyError, ValueError):
        return None, None


def replay_minute(first: datetime, last: datetime, day: Any, minute: Any) -> datetime:
    """The minute the controls choose (``day`` ISO date, ``minute`` of the day), inside [first, last]."""
    try:
        d = date.fromisoformat(str(day)[:10])
    except ValueError:
        d = last.date()
    m = minute if isinstance(minute, int) and 0 <= minute < view.DAY_MINUTES else 0
    at = datetime(d.year, d.month, d.day, m // 60, m % 60, tzinfo=last.tzinfo)
    return min(max(at, first), last)


def _replay_region(search: Any) -> str | None:
    """The /explore region the wall may show with ``region=`` (a region code; a grid's place is not a region)."""
    try:
        region = selection.Selection.parse(search if isinstance(search, str) else "").region
    except selection.SelectionError:
        return None
    return region if region is not None and len(region) in REGION_CODE_LENGTHS else None


REGION_CODE_LENGTHS = (6, 9, 12)  # 区划代码 of a district / street / community (a 14/15-digit one is a grid)


def replay_href(at: datetime, speed: Any, region: str | None) -> str:
    """``/wall?at=…&speed=…`` (and ``region=`` of the /explore region) for the replay at ``at`` (city time)."""
    query = {"at": f"{at:%Y-%m-%dT%H:%M}", "speed": str(speed if speed in view.REPLAY_SPEEDS else 1)}
    if region:
        query["region"] = region
    return "/wall?" + urlencode(query)


def _values(sel: selection.Selection) -> dict[str, Any]:
    return {f: getattr(sel, f) for f in FILTERS}


def _from_controls(trigger: Any, values: Any, current: selection.Selection,
                   this_month: str | None = None) -> selection.Selection:
    """The URL's place and case with the filters the controls show; raises SelectionError.

    Choosing another 类别 clears 大类 and 小类, another 大类 clears 小类 (the controls still
    hold the old ones until the options arrive). 综合考评's controls: a missing or empty one
    keeps the URL's value; the current month and the child regions are the defaults (left out)."""
    values = list(values)
    evals = values[len(FILTERS):len(FILTERS) + len(EVAL_CONTROLS)]
    values = values[:len(FILTERS)] + [None] * (len(FILTERS) - len(values[:len(FILTERS)]))
    chosen = {f: (v if isinstance(v, str) and v else None) for f, v in zip(FILTERS, values, strict=False)}
    for f, v in zip(EVAL_CONTROLS, evals + [None] * (len(EVAL_CONTROLS) - len(evals)), strict=False):
        chosen[f] = v if isinstance(v, str) and v else getattr(current, f)
    if chosen["month"] is not None and chosen["month"] == this_month:
        chosen["month"] = None
    if chosen["ranking"] == selection.DEFAULT_RANKING:
        chosen["ranking"] = None
    if not chosen.get("kind"):
        chosen["major"] = chosen["minor"] = None
    elif trigger == "explore-f-kind" and chosen["kind"] != current.kind:
        chosen["major"] = chosen["minor"] = None
    elif trigger == "explore-f-major" and chosen["major"] != current.major:
        chosen["minor"] = None
    chosen["window"] = chosen["window"] or selection.DEFAULT_WINDOW
    return selection.Selection.from_values({**chosen, "region": current.region, "case": current.case})


__all__ = ["replay_bounds", "replay_href", "replay_minute", "REPLAY_EMPTY",
           "ExploreService", "add_routes", "register", "navigate_to", "MAIN_OUTPUTS", "EXPORT_RULE", "RANKING_OUTPUTS",
           "ranking_outputs"]
