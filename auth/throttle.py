"""Per-client-IP limits on sign-in attempts, counted in Redis with the ``limits`` library.

A moving window of ``GRIDHALL_LOGIN_RATE_PER_MINUTE`` attempts per IP and minute, shared by all
workers and hosts through Redis. It complements the per-account lock of
``dashboard.users.verify_password`` (which a spray over many usernames from one address
would not trip). If Redis is unreachable the attempt is allowed and logged: the account lock
still holds, and a Redis outage must not lock the whole command hall out.
"""

from __future__ import annotations

import logging

import flask
import redis
from limits import RateLimitItemPerMinute
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from dashboard.settings import Settings

log = logging.getLogger(__name__)


class LoginThrottle:
    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        storage = RedisStorage("redis://", connection_pool=client.connection_pool,
                               key_prefix=f"{settings.redis_prefix}throttle")
        self._limiter = MovingWindowRateLimiter(storage)
        self._item = RateLimitItemPerMinute(settings.login_rate_per_minute)

    def allow(self, what: str = "login") -> bool:
        """Count one attempt from this request's client address; False when over the limit."""
        address = flask.request.remote_addr or "unknown"
        try:
            return bool(self._limiter.hit(self._item, what, address))
        except Exception as exc:  # Redis away: fail open, the per-account lock still applies
            log.warning("login throttle unavailable (%s); attempt allowed", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return True
