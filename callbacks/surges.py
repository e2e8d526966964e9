"""/explore's 突增预警 section (docs/foresight.md): the surges of the last day in the viewer's scope,
newest first, with their figures ("x 件 / 通常 y 件"). Read-only; the alerts themselves are
acknowledged on the wall like any other."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from dash import Input, Output, html

from dashboard.rules.surges import PlaceLevel
from dashboard.store.surges import SurgeView, list_surges

if TYPE_CHECKING:
    import dash

    from callbacks.handover import HallService

log = logging.getLogger(__name__)

SINCE = timedelta(days=1)  # surges listed: those that lasted into the last day
SHOWN = 20
FAILED = "暂时无法读取，请稍后重试"


def render_list(surges: list[SurgeView], tz: Any) -> Any:
    if not surges:
        return html.P("近 24 小时无突增预警", className="explore-note")
    return html.Ul(className="explore-handovers explore-surges", children=[
        html.Li(className="explore-handover explore-surge" + (" is-open" if s.ended_at is None else ""), children=[
            html.Span(f"{s.started_at.astimezone(tz):%m-%d %H:%M}"
                      + (" 持续中" if s.ended_at is None else f"–{s.ended_at.astimezone(tz):%H:%M}"),
                      className="explore-handover__shift"),
            html.Span(f"{s.place_name if s.level is PlaceLevel.STREET else '网格 ' + s.place} · {s.group}"),
            html.Span(s.text, className="explore-note"),
        ]) for s in surges[:SHOWN]])


def register(app: dash.Dash, service: HallService) -> None:
    """The section's callback (id ``explore-surges``)."""

    @app.callback(Output("explore-surges", "children"),
                  Input("explore-url", "search"), Input("explore-refresh", "n_clicks"))
    def show(_search: Any, _refresh: Any) -> Any:
        try:
            with service.sessions() as session:
                viewer = service.viewer(session)
                if viewer is None:
                    return []
                found = [s for s in list_surges(session, service.clock() - SINCE)
                         if viewer.scope.is_city or viewer.scope.allows(s.place)]
            return render_list(found, service.settings.tz)
        except Exception:
            log.exception("explore: surges failed")
            return html.Div(FAILED, className="explore-error is-on")
