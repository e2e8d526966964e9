"""Page layouts (Dash components only; data comes from callbacks)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import ParseResult, parse_qs, urlparse

import flask
from dash import html

from auth import identity, policy
from dashboard.settings import Settings

from . import explore, live, view, wall

# A page's layout from (settings, its URL, the city's name); one for every page of the registry
# (auth/policy.py PAGE_LIST), which tests/test_layers.py checks.
PageLayout = Callable[[Settings, ParseResult, str], html.Div]


def root_layout(settings: Settings, city_name: Callable[[], str] = lambda: "") -> Callable[[], html.Div]:
    """The app's layout, chosen per request by path: /wall, /explore, /view or /live.

    Who may see which page is decided before this runs (auth/guard.py checks the same path).
    ``city_name`` answers the city's name for the header (``dashboard.store.cityname``).
    """

    def serve() -> html.Div:
        url = _page_url()
        page = policy.page_of(url.path) if url is not None else None
        city = city_name()
        if url is None or page is None:  # no page address, or not a page's: the default page
            return live.layout(settings, city=city)
        return LAYOUTS[page](settings, url, city)

    return serve


def _wall(settings: Settings, url: ParseResult, city: str) -> html.Div:
    query = parse_qs(url.query)
    return wall.layout(settings, query.get("metric", [wall.DEFAULT_METRIC])[0],
                       explore=_may_open("explore"), board=query.get("board", ["units"])[0],
                       period=query.get("period", [None])[0], city=city)


LAYOUTS: dict[str, PageLayout] = {
    "wall": _wall,
    "explore": lambda settings, url, city: explore.layout(settings, url.query, city=city),
    "view": lambda settings, url, city: view.layout(settings, url.query, city=city),
    "live": lambda settings, url, city: live.layout(settings, city=city),
}


def _may_open(page: str) -> bool:
    """Whether the signed-in viewer may open ``page`` (only to offer links; the guard decides)."""
    who = identity.current()
    return who is not None and policy.PAGES[page].allows(who.role, who.city_scope)


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


__all__ = ["LAYOUTS", "explore", "live", "root_layout", "validation_layout", "view", "wall"]
