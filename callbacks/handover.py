"""/explore's 交接班报告 section (docs/handover.md): past handovers with their HTML/PDF/XLSX, and the
current shift's notes, written by a shift lead or an admin.

Handovers are the city hall's: the section and the files are for viewers with the city scope
(a district's or street's viewer sees nothing and gets 404). Leaders read; the notes' writers
are checked on the server (``dashboard.store.handovers.NOTE_ROLES``), never by what the page shows.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import flask
from dash import Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from dashboard.output.handover import FORMATS, MEDIA_TYPES, filename, render
from dashboard.output.pdf import PdfUnavailable
from dashboard.rules.shifts import Shift
from dashboard.store import handovers

if TYPE_CHECKING:
    import dash

    from callbacks.explore import ExploreService

log = logging.getLogger(__name__)

FILE_RULE = "/explore/handover/<shift>.<fmt>"  # <shift>: 2026-11-20T0800
SHOWN = 12  # past handovers listed
FAILED = "暂时无法读取，请稍后重试"
FORMAT_LABELS = {"html": "网页", "pdf": "PDF", "xlsx": "Excel"}


def _href(key: str, fmt: str) -> str:
    return f"/explore/handover/{key.replace(':', '')}.{fmt}"


def render_list(entries: list[handovers.HandoverEntry]) -> Any:
    written = [e for e in entries if e.written_at is not None][:SHOWN]
    if not written:
        return html.P("暂无交接班报告（每个班次结束时生成）", className="explore-note")
    return html.Ul(className="explore-handovers", children=[
        html.Li(className="explore-handover", children=[
            html.Span(e.label, className="explore-handover__shift"),
            html.Span(f"来件 {e.came_in} · 结案 {e.closed} · 新增超期 {e.went_overdue} · 预警 {e.alerts}",
                      className="explore-note"),
            html.Span(className="explore-handover__links", children=[
                html.A(FORMAT_LABELS[f], href=_href(e.key, f), className="explore-btn",
                       target="_blank" if f == "html" else None, download="" if f != "html" else None)
                for f in FORMATS]),
        ]) for e in written])


def register(app: dash.Dash, service: ExploreService) -> None:
    """The section's callbacks (ids ``explore-handover-*``)."""

    @app.callback(Output("explore-handover", "children"), Output("explore-handover-current", "children"),
                  Output("explore-handover-text", "value"), Output("explore-handover-box", "className"),
                  Input("explore-url", "search"), Input("explore-refresh", "n_clicks"),
                  Input("explore-handover-version", "data"))
    def show(_search: Any, _refresh: Any, _version: Any) -> tuple[Any, Any, Any, str]:
        hidden: tuple[Any, Any, Any, str] = ([], "", "", "explore-handover-box")
        try:
            with service.sessions() as session:
                viewer = service.viewer(session)
                if viewer is None or not viewer.scope.is_city:
                    return hidden
                plan, now = service.settings.shift_plan, service.clock()
                current = plan.shift_at(now)
                text, by, at = handovers.notes_of(session, current)
                entries = handovers.list_handovers(session, service.settings.tz, limit=SHOWN + 1)
            said = f"（{by} {at.astimezone(service.settings.tz):%H:%M} 保存）" if by and at else ""
            box = "explore-handover-box is-on" + (" can-write" if viewer.role in handovers.NOTE_ROLES else "")
            return render_list(entries), f"当前班次 {current.label} 交接班备注{said}", text, box
        except Exception:
            log.exception("explore: handovers failed")
            return html.Div(FAILED, className="explore-error is-on"), "", no_update, "explore-handover-box is-on"

    @app.callback(Output("explore-handover-msg", "children"), Output("explore-handover-version", "data"),
                  Input("explore-handover-save", "n_clicks"), State("explore-handover-text", "value"),
                  State("explore-handover-version", "data"), prevent_initial_call=True)
    def save(clicks: Any, text: Any, version: Any) -> tuple[Any, Any]:
        if not clicks or ctx.triggered_id != "explore-handover-save":
            raise PreventUpdate
        try:
            from auth import identity

            with service.sessions() as session:
                viewer, who = service.viewer(session), identity.current()
                if viewer is None or who is None:
                    return html.Span("登录已失效，请重新登录", className="explore-late"), no_update
                if not viewer.scope.is_city:
                    return html.Span("只有市级值班长或管理员可以填写交接班备注", className="explore-late"), no_update
                shift = service.settings.shift_plan.shift_at(service.clock())
                text = text if isinstance(text, str) else ""
                handovers.save_notes(session, who.user_id, shift, text, service.clock())
                session.commit()
            return html.Span("备注已保存", className="explore-ok"), (version if isinstance(version, int) else 0) + 1
        except handovers.NotesRefused as exc:
            return html.Span(str(exc), className="explore-late"), no_update
        except Exception:
            log.exception("explore: saving handover notes failed")
            return html.Span(FAILED, className="explore-late"), no_update


def file_response(service: ExploreService, key: str, fmt: str) -> flask.Response:
    """A stored handover as HTML, PDF or XLSX; 404 for an unknown shift, an unwritten one or a
    viewer without the city scope."""
    if fmt not in FORMATS:
        flask.abort(404)
    plan = service.settings.shift_plan
    try:
        shift: Shift = plan.named(f"{key[:-2]}:{key[-2:]}" if ":" not in key else key)
    except ValueError:
        flask.abort(404)
    with service.sessions() as session:
        viewer = service.viewer(session)
        if viewer is None:
            flask.abort(401)
        if not viewer.scope.is_city:
            flask.abort(404)
        content = handovers.stored(session, shift)
    if content is None:
        flask.abort(404)
    try:
        body = render(content, fmt)
    except PdfUnavailable:
        log.exception("explore: handover PDF")
        return flask.Response("PDF 暂不可用（服务器未安装 Chromium），请下载网页或 Excel 版", status=503,
                              mimetype="text/plain")
    response = flask.Response(body, mimetype=MEDIA_TYPES[fmt])
    if fmt != "html":
        response.headers["Content-Disposition"] = f"attachment; filename={filename(content, fmt)}"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def add_routes(server: flask.Flask, service: ExploreService) -> None:
    def handover_file(shift: str, fmt: str) -> flask.Response:
        return file_response(service, shift, fmt)

    server.add_url_rule(FILE_RULE, endpoint="explore_handover", view_func=handover_file)


__all__ = ["FILE_RULE", "add_routes", "file_response", "register", "render_list"]
