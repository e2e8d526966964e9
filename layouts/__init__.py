"""Page layouts (Dash components only; data comes from callbacks)."""

from __future__ import annotations

from typing import Callable
from urllib.parse import ParseResult, parse_qs, urlparse

import flask
from dash import html

from dashboard.settings import Settings

from . import live, wall


def root_layout(settings: Settings) -> Callable[[], html.Div]:
    """The app's layout, chosen per request by path: /wall is the wall, / and /live the live page."""

    def serve() -> html.Div:
        url = _page_url()
        if url is not None and url.path.rstrip("/").endswith("/wall"):
            metric = parse_qs(url.query).get("metric", [wall.DEFAULT_METRIC])[0]
            return wall.layout(settings, metric)
        return live.layout(settings)

    return serve


def _page_url() -> ParseResult | None:
    """The URL of the page being built.

    Dash asks for the layout from the page by a separate request (``/_dash-layout``), so the
    page's own address is that request's referrer; the index request itself has it as path.
    """
    if not flask.has_request_context():
        return None
    if flask.request.path.endswith("_dash-layout"):
        return urlparse(flask.request.referrer or "")
    return urlparse(flask.request.full_path)


def validation_layout(settings: Settings) -> html.Div:
    """Every page at once, so Dash can check callbacks against components of any page."""
    return html.Div([live.layout(settings), wall.layout(settings)])


__all__ = ["live", "root_layout", "validation_layout", "wall"]
