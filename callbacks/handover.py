"""/explore's 交接班报告 section (docs/handover.md): past handovers with their HTML/PDF/XLSX, and the
current shift's notes, written by a shift lead or an admin.

Handovers are the city hall's: the section and the files are for viewers with the city scope
(a district's or street's viewer sees nothing and gets 404). Leaders read; the notes' writers
are checked on the server (``dashboard.store.handovers.NOTE_ROLES``), never by what the page shows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import flask
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboard.output.handover import FORMATS, MEDIA_TYPES, filename, render
from dashboard.output.pdf import PdfUnavailable
from dashboard.rules.shifts import MAX_NOTES, Shift
from dashboard.store import handovers

if TYPE_CHECKING:
    import dash
    from sqlalchemy.orm import Session, sessionmaker

    from dashboard.settings import Settings
    from dashboard.store.scope import Scope


class HallViewer(Protocol):
    """Who asks (callbacks/explore.py's Viewer): the section needs the role and the scope."""

    @property
    def role(self) -> str: ...

    @property
    def scope(self) -> Scope: ...


class HallService(Protocol):
    """What the section needs of its page's service (callbacks/explore.py's ExploreService; a
    page's callbacks are imported by the registry only, so this names the shape, not the class)."""

    settings: Settings
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime]

    def viewer(self, session: Session) -> HallViewer | None: ...


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


def register(app: dash.Dash, service: HallService) -> None:
    """The section's callbacks (ids ``explore-handover-*``)."""

    @app.callback(Output("explore-handover", "children"), Output("explore-handover-editor", "children"),
                  Output("explore-handover-box", "className"),
                  Input("explore-url", "search"), Input("explore-refresh", "n_clicks"),
                  Input("explore-handover-version", "data"))
    def show(_search: Any, _refresh: Any, _version: Any) -> tuple[Any, Any, str]:
        hidden: tuple[Any, Any, str] = ([], [], "explore-handover-box")
        try:
            with service.sessions() as session:
                viewer = service.viewer(session)
                if viewer is None or not viewer.scope.is_city:
                    return hidden
                current = service.settings.shift_plan.shift_at(service.clock())
                text, by, at = handovers.notes_of(session, current)
                entries = handovers.list_handovers(session, service.settings.tz, limit=SHOWN + 1)
            said = f"（{by} {at.astimezone(service.settings.tz):%H:%M} 保存）" if by and at else ""
            # The editor exists only for those who may write (leaders get no control at all).
            editor = editor_of(current, text, said) if viewer.role in handovers.NOTE_ROLES else []
            return render_list(entries), editor, "explore-handover-box is-on"
        except Exception:
            log.exception("explore: handovers failed")
            return html.Div(FAILED, className="explore-error is-on"), [], "explore-handover-box is-on"

    @app.callback(Output("explore-handover-msg", "children"), Output("explore-handover-version", "data"),
                  Input({"type": "explore-handover-save", "shift": ALL}, "n_clicks"),
                  State({"type": "explore-handover-text", "shift": ALL}, "value"),
                  State("explore-handover-version", "data"), prevent_initial_call=True)
    def save(_clicks: Any, texts: Any, version: Any) -> tuple[Any, Any]:
        trig = ctx.triggered_id
        if not isinstance(trig, dict) or not (ctx.triggered and ctx.triggered[0].get("value")):
            raise PreventUpdate  # the button appearing (n_clicks 0), not a click
        text = next((t for t in texts or [] if isinstance(t, str)), "")
        try:
            from auth import identity

            with service.sessions() as session:
                viewer, who = service.viewer(session), identity.current()
                if viewer is None or who is None:
                    return html.Span("登录已失效，请重新登录", className="explore-late"), no_update
                if not viewer.scope.is_city:
                    return html.Span("只有市级值班长或管理员可以填写交接班备注", className="explore-late"), no_update
                now = service.clock()
                shift = service.settings.shift_plan.shift_at(now)
                if trig.get("shift") != shift.key:  # the page was opened in an earlier shift
                    return html.Span("班次已更替，请刷新后填写当前班次的备注", className="explore-late"), no_update
                handovers.save_notes(session, who.user_id, shift, text, now)
                session.commit()
            return html.Span("备注已保存", className="explore-ok"), (version if isinstance(version, int) else 0) + 1
        except handovers.NotesRefused as exc:
            return html.Span(str(exc), className="explore-late"), no_update
        except Exception:
            log.exception("explore: saving handover notes failed")
            return html.Span(FAILED, className="explore-late"), no_update


def editor_of(shift: Shift, text: str, said: str) -> list[Any]:
    """The current shift's notes editor (shift leads and admins of the city)."""
    return [
        html.Label(f"当前班次 {shift.label} 交接班备注{said}", htmlFor="explore-handover-text",
                   className="explore-note"),
        dcc.Textarea(id={"type": "explore-handover-text", "shift": shift.key}, value=text,
                     className="explore-textarea explore-handover__text", maxLength=MAX_NOTES,
                     placeholder="本班需交接的事项（交班时写入报告）"),
        html.Button("保存备注", id={"type": "explore-handover-save", "shift": shift.key}, n_clicks=0,
                    className="explore-btn explore-btn--primary"),
    ]


def file_response(service: HallService, key: str, fmt: str) -> flask.Response:
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


def add_routes(server: flask.Flask, service: HallService) -> None:
    def handover_file(shift: str, fmt: str) -> flask.Response:
        return file_response(service, shift, fmt)

    server.add_url_rule(FILE_RULE, endpoint="explore_handover", view_func=handover_file)


__all__ = ["FILE_RULE", "add_routes", "editor_of", "file_response", "register", "render_list"]
