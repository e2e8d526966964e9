"""Dash callbacks; each page module exposes ``register(app, ...)``."""

from __future__ import annotations

import dash
import redis
from sqlalchemy.orm import Session, sessionmaker

from dashboard.settings import Settings

from . import live


def register(
    app: dash.Dash,
    settings: Settings,
    sessions: sessionmaker[Session],
    redis_client: redis.Redis,
) -> live.LiveService:
    """Register every page's callbacks on ``app``; returns the live page's service."""
    service = live.LiveService(settings, sessions, redis_client)
    live.register(app, service)
    return service


__all__ = ["live", "register"]
