"""Request limits counted in Redis with the ``limits`` library: sign-in attempts per client IP,
and read-API requests per token.

A moving window of ``GRIDHALL_LOGIN_RATE_PER_MINUTE`` attempts per client address and minute
(``auth.proxies.client_address``: behind a trusted proxy, the real client's), shared by all
workers and hosts through Redis. It complements the per-(account, client) lock of
``feeds.signinlocks`` (which a spray over many usernames from one address would not
trip). If Redis is unreachable the throttle lets the attempt through and logs it; the sign-in
itself is then refused (503) because its locks and session record need Redis.

:class:`ApiThrottle` limits ``/api/v1`` to ``GRIDHALL_API_RATE_PER_SECOND`` requests per
second (moving window) per bearer token — or per signed-in user for a browser without one —
so one client polling in a loop cannot starve the hall's other readers; every other token keeps
its own count. If Redis is unreachable requests pass (the API reads SQL, not Redis), and for
the next few seconds the limit is not even tried, so no request waits for Redis's timeout.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

import redis
from limits import RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.storage import RedisClusterStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from dashboard.settings import Settings
from feeds.connection import is_cluster
from feeds.keys import THROTTLE_PREFIX

from .proxies import client_address

log = logging.getLogger(__name__)


def limits_storage(settings: Settings, client: redis.Redis) -> Storage:
    """The ``limits`` storage on gridhall's Redis: ``client``'s own connections, or in a Redis
    Cluster the library's cluster storage on the same URL (``redis+cluster://``, its own form
    too). Each limit is one key (one slot), so the moving window works the same in a cluster."""
    prefix = settings.key(THROTTLE_PREFIX)
    if is_cluster(client) and settings.redis_url:
        return RedisClusterStorage(settings.redis_url, key_prefix=prefix)
    return RedisStorage("redis://", connection_pool=client.connection_pool, key_prefix=prefix)


class LoginThrottle:
    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self._limiter = MovingWindowRateLimiter(limits_storage(settings, client))
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


class ApiThrottle:
    """Read-API requests per caller and second (``GRIDHALL_API_RATE_PER_SECOND``; 0: no limit)."""

    WARN_EVERY_S = 60.0  # while Redis is away, one log line a minute, not one per request
    RETRY_REDIS_S = 5.0  # after a failure, requests pass unlimited this long without trying Redis

    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self._limiter = MovingWindowRateLimiter(limits_storage(settings, client))
        self.per_second = settings.api_rate_per_second
        self._item = RateLimitItemPerSecond(max(1, self.per_second))
        self._warned = -math.inf
        self._away_until = -math.inf

    @staticmethod
    def token_caller(token: str) -> str:
        """The caller a bearer token counts as: a digest, so no token text is written to Redis."""
        return "token:" + hashlib.blake2b(token.encode(), digest_size=12).hexdigest()

    @staticmethod
    def user_caller(user_id: int) -> str:
        return f"user:{user_id}"

    def retry_after(self, caller: str) -> int | None:
        """Count one request of ``caller``: None when allowed, else whole seconds to wait (≥ 1)."""
        if self.per_second <= 0 or time.monotonic() < self._away_until:
            return None
        try:
            if self._limiter.hit(self._item, "api", caller):
                return None
            reset = self._limiter.get_window_stats(self._item, "api", caller).reset_time
        except Exception as exc:  # Redis away: the API itself reads SQL, so let the request through
            now = time.monotonic()
            self._away_until = now + self.RETRY_REDIS_S
            if now - self._warned >= self.WARN_EVERY_S:
                self._warned = now
                log.warning("API rate limit unavailable (%s); requests allowed",
                            str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return None
        return max(1, math.ceil(reset - time.time()))
