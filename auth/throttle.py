"""Per-client-IP limits on sign-in attempts, counted in Redis with the ``limits`` library.

A moving window of ``GRIDHALL_LOGIN_RATE_PER_MINUTE`` attempts per client address and minute
(``auth.proxies.client_address``: behind a trusted proxy, the real client's), shared by all
workers and hosts through Redis. It complements the per-(account, client) lock of
``feeds.signinlocks`` (which a spray over many usernames from one address would not
trip). If Redis is unreachable the throttle lets the attempt through and logs it; the sign-in
itself is then refused (503) because its locks and session record need Redis.
"""

from __future__ import annotations

import logging

import redis
from limits import RateLimitItemPerMinute
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from dashboard.settings import Settings
from feeds.keys import THROTTLE_PREFIX

from .proxies import client_address

log = logging.getLogger(__name__)


class LoginThrottle:
    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        storage = RedisStorage("redis://", connection_pool=client.connection_pool,
                               key_prefix=settings.key(THROTTLE_PREFIX))
        self._limiter = MovingWindowRateLimiter(storage)
        self._item = RateLimitItemPerMinute(settings.login_rate_per_minute)

    def allow(self, what: str = "login") -> bool:
        """Count one attempt from this request's client address; False when over the limit."""
        address = client_address()
        try:
            return bool(self._limiter.hit(self._item, what, address))
        except Exception as exc:  # Redis away: the sign-in that follows answers 503 itself
            log.warning("login throttle unavailable (%s); attempt allowed",
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return True
