"""Dash callbacks; each page module exposes ``register(app, ...)``."""

from __future__ import annotations

from dataclasses import dataclass

import dash
import redis
from sqlalchemy.orm import Session, sessionmaker

from dashboard.settings import Settings

from . import live, wall


@dataclass
class Services:
    """The per-process state behind the pages."""

    live: live.LiveService
    wall: wall.WallService


def register(
    app: dash.Dash,
    settings: Settings,
    sessions: sessionmaker[Session],
    redis_client: redis.Redis,
) -> Services:
    """Register every page's callbacks on ``app``; returns the pages' services."""
    services = Services(live.LiveService(settings, sessions, redis_client),
                        wall.WallService(settings, sessions, redis_client))
    live.register(app, services.live)
    wall.register(app, services.wall)
    return services


__all__ = ["Services", "live", "register", "wall"]
