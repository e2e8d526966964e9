"""Page layouts (Dash components only; data comes from callbacks)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import ParseResult, parse_qs, urlparse

import flask
from dash import html

from auth import identity, policy
from dashboard.rules.clock import utcnow
from dashboard.rules.screenspec import SpecError, parse_playlist, playlist_to_json
from dashboard.settings import Settings
from dashboard.store.scope import CITY, Scope

from . import explore, live, screens, view, wall


@dataclass(frozen=True)
class Context:
    """What a page's layout may ask of the app besides its URL (no I/O of its own here)."""

    city: str  # the city's name for the header (``dashboard.store.cityname``)
    # The scope a wall request may show, for a ``?region=`` code or None (the viewer's own);
    # raises PermissionError when the region is not inside the viewer's scope
    # (callbacks/wall.py ``viewer_scope``).
    region_scope: Callable[[str | None], Scope] = lambda region: CITY
    # The named screen (大屏) bound to a display user, as the wall page holds it (its setting,
    # playlist and banners: callbacks/wall.py ``screen_payload``), or None.
    screen_of: Callable[[int | None], dict[str, Any] | None] = lambda user_id: None


# A page's layout from (settings, its URL, the context); one for every page of the registry
# (auth/policy.py PAGE_LIST), which tests/test_layers.py checks.
PageLayout = Callable[[Settings, ParseResult, Context], html.Div]


def root_layout(settings: Settings, city_name: Callable[[], str] = lambda: "",
                region_scope: Callable[[str | None], Scope] = lambda region: CITY,
                screen_of: Callable[[int | None], dict[str, Any] | None] = lambda user_id: None,
                ) -> Callable[[], html.Div]:
    """The app's layout, chosen per request by path: /wall, /explore, /view, /screens or /live.

    Who may see which page is decided before this runs (auth/guard.py checks the same path).
    ``city_name`` answers the city's name for the header (``dashboard.store.cityname``),
    ``region_scope`` the scope of a wall's ``?region=``, ``screen_of`` a display user's named
    screen (see :class:`Context`).
    """

    def serve() -> html.Div:
        url = _page_url()
        page = policy.page_of(url.path) if url is not None else None
        context = Context(city_name(), region_scope, screen_of)
        if url is None or page is None:  # no page address, or not a page's: the default page
            return live.layout(settings, city=context.city)
        return LAYOUTS[page](settings, url, context)

    return serve


def _wall(settings: Settings, url: ParseResult, context: Context) -> html.Div:
    query = parse_qs(url.query)

    def arg(name: str, default: str | None = None) -> str | None:
        return query.get(name, [default])[0]

    who = identity.current()
    screen = context.screen_of(who.user_id) if who is not None and who.role == policy.DISPLAY else None
    if screen is not None:  # a named screen shows its setting, whatever the URL says
        query = {"region": [screen["region"] or ""], "metric": [screen["metric"]], "layout": [screen["layout"]]}
        tile = screen["tile"]
        if tile:
            query["tile"] = [f"{tile[0]}x{tile[1]}:{tile[2]},{tile[3]}"]
    try:
        scope = context.region_scope(arg("region") or None)
    except PermissionError:  # a code outside the viewer's scope, or no region at all: the same answer
        return wall.refused(context.city)
    if screen is None and arg("playlist"):  # a kiosk's own rotation by URL (a named screen has its own)
        try:
            screen = {"playlist": playlist_to_json(parse_playlist(arg("playlist") or ""))}
        except SpecError as exc:
            return wall.refused(context.city, str(exc))
    at, speed = None, None
    if screen is None and arg("at"):  # 回放 (a named screen shows its hall live, whatever the URL says)
        at = wall.parse_at(arg("at"), settings.tz)
        if at is None:
            return wall.refused(context.city, wall.REPLAY_BAD_TEXT)
        if at > utcnow():
            return wall.refused(context.city, wall.REPLAY_FUTURE_TEXT)
        if arg("speed"):  # play on at N×
            speed = wall.parse_speed(arg("speed"))
            if speed is None:
                return wall.refused(context.city, wall.REPLAY_SPEED_TEXT)
    return wall.layout(settings, arg("metric", wall.DEFAULT_METRIC) or wall.DEFAULT_METRIC,
                       explore=_may_open("explore"), board=arg("board", "units") or "units",
                       period=arg("period"), city=context.city, scope=scope, screen_layout=arg("layout"),
                       tile=arg("tile"), screen=screen, at=at, speed=speed, now=utcnow())


LAYOUTS: dict[str, PageLayout] = {
    "wall": _wall,
    "explore": lambda settings, url, context: explore.layout(settings, url.query, city=context.city,
                                                             screens=_may_open("screens")),
    "view": lambda settings, url, context: view.layout(settings, url.query, city=context.city),
    "live": lambda settings, url, context: live.layout(settings, city=context.city),
    "screens": lambda settings, url, context: screens.layout(settings, city=context.city),
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
    example = utcnow().astimezone(settings.tz).replace(second=0, microsecond=0)
    return html.Div([live.layout(settings), wall.layout(settings, board="evaluation"), explore.layout(settings),
                     # /explore's 回放 controls, filled in by a callback for the roles that may replay
                     html.Div(explore.replay_controls(example, example, "")),
                     view.layout(settings), screens.layout(settings)])


__all__ = ["LAYOUTS", "Context", "explore", "live", "root_layout", "screens", "validation_layout", "view", "wall"]
