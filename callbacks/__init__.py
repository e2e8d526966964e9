"""Dash callbacks; each page module exposes ``register(app, ...)``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import dash
import flask
import redis
from sqlalchemy.orm import Session, sessionmaker

from dashboard.settings import Settings

from . import explore, live, screens, view, wall


@dataclass
class Services:
    """The per-process state behind the pages."""

    live: live.LiveService
    wall: wall.WallService
    explore: explore.ExploreService
    view: view.ViewService
    screens: screens.ScreensService
    # Dash callback key ("..a.b...c.d..") → the page it belongs to; the guard (auth/guard.py)
    # applies that page's rule to every callback request. A callback missing here is refused.
    # Clientside callbacks are not listed: they run in the browser only.
    callback_pages: dict[str, str]


# Each page's callbacks, registered with the page's own service: one entry for every page of the
# registry (auth/policy.py PAGE_LIST; tests/test_layers.py checks), in the order they register.
PAGE_CALLBACKS: dict[str, Callable[[dash.Dash, Services], None]] = {
    "live": lambda app, services: live.register(app, services.live),
    "wall": lambda app, services: wall.register(app, services.wall),
    "explore": lambda app, services: explore.register(app, services.explore),
    "view": lambda app, services: view.register(app, services.view),
    "screens": lambda app, services: screens.register(app, services.screens),
}

# Each page's own Flask routes beside its path (auth/policy.py lists them under the page, so the
# guard applies the page's rule): the wall's geometry, explore's export.
PAGE_ROUTES: dict[str, Callable[[flask.Flask, Services], None]] = {
    "wall": lambda server, services: wall.add_routes(server, services.wall),
    "explore": lambda server, services: explore.add_routes(server, services.explore),
}


def register(
    app: dash.Dash,
    settings: Settings,
    sessions: sessionmaker[Session],
    redis_client: redis.Redis,
) -> Services:
    """Register every page's callbacks and routes on ``app``; returns the pages' services."""
    wall_service = wall.WallService(settings, sessions, redis_client)
    services = Services(live.LiveService(settings, sessions, redis_client),
                        wall_service,
                        explore.ExploreService(settings, sessions, redis_client),
                        # The read API and /view share the wall's live view (its summary, its queue).
                        view.ViewService(settings, sessions, redis_client, live=wall_service.loaded_view),
                        screens.ScreensService(settings, sessions, redis_client),
                        callback_pages={})
    for page, register_page in PAGE_CALLBACKS.items():
        before = set(app.callback_map)
        register_page(app, services)
        # Server-side callbacks only: clientside ones never reach the server (a request naming
        # one is refused by the guard like any unknown callback).
        added = {k for k in set(app.callback_map) - before if "callback" in app.callback_map[k]}
        services.callback_pages.update(dict.fromkeys(added, page))
    for add_routes in PAGE_ROUTES.values():
        add_routes(app.server, services)
    return services


__all__ = ["PAGE_CALLBACKS", "PAGE_ROUTES", "Services", "explore", "live", "register", "screens", "view", "wall"]
