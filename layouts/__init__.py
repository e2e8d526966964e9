"""Page layouts (Dash components only; data comes from callbacks)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import ParseResult, parse_qs, urlparse

import flask
from dash import html

from dashboard.settings import Settings

from . import explore, live, view, wall


def root_layout(settings: Settings, city_name: Callable[[], str] = lambda: "") -> Callable[[], html.Div]:
    """The app's layout, chosen per request by path: /wall, /explore, /view or /live.

    Who may see which page is decided before this runs (auth/guard.py checks the same path).
    ``city_name`` answers the city's name for the header (``dashboard.cityname``).
    """

    def serve() -> html.Div:
        url = _page_url()
        page = page_of(url.path) if url is not None else None
        city = city_name()
        if url is None:  # no page address (page is None): the default page
            return live.layout(settings, city=city)
        if page == "wall":
            query = parse_qs(url.query)
            return wall.layout(settings, query.get("metric", [wall.DEFAULT_METRIC])[0],
                               explore=_may_open("explore"), board=query.get("board", ["units"])[0],
                               period=query.get("period", [None])[0], city=city)
        if page == "explore":
            return explore.layout(settings, url.query, city=city)
        if page == "view":
            return view.layout(settings, url.query, city=city)
        return live.layout(settings, city=city)

    return serve


def _may_open(page: str) -> bool:
    """Whether the signed-in viewer may open ``page`` (only to offer links; the guard decides)."""
    from auth import identity, policy  # imported late: auth.policy imports this package

    who = identity.current()
    return who is not None and policy.PAGES[page].allows(who.role, who.city_scope)


def page_of(path: str) -> str | None:
    """The page a URL path names: its first segment when that is a page, else None."""
    first = path.strip("/").split("/", 1)[0]
    return first if first in PAGES else None


PAGES = ("wall", "explore", "view", "live")


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
    return html.Div([live.layout(settings), wall.layout(settings, board="evaluation"), explore.layout(settings),
                     view.layout(settings)])


__all__ = ["explore", "live", "page_of", "root_layout", "validation_layout", "view", "wall"]
