"""Which screens are connected: every web worker notes the screens that ask for a page, in Redis.

A screen is one browser session (a wall, a leader's phone, a shift lead's desk) that asked for
a page or one of its callbacks. A screen's polls land on any worker (and any host), so each
worker keeps the screens it saw in a dict and writes them to one sorted set
(``<prefix>screens``, member ``page|scope|screen``, score the time it last asked) at most every
:data:`FLUSH_EVERY_S`: one Redis round trip per worker per few seconds, whatever the number of
screens. :func:`connected` counts the members seen within :data:`WINDOW_S`, so a screen that
talks to two workers counts once — a per-worker count summed over the workers would count it
twice. The screen is named by a hash of its session id, never the id itself.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import cast

import redis

from dashboard.settings import Settings

from .keys import SCREENS_KEY
from .sessionstore import SessionStore

log = logging.getLogger(__name__)

WINDOW_S = 60.0
"""A screen that asked within this many seconds counts as connected (the slowest page polls
every few seconds; a minute rides out a short network cut without the count dropping)."""
FLUSH_EVERY_S = 5.0
"""How often a worker writes the screens it saw (it answers many polls in between)."""
SEP = "|"


def screen_name(session_id: str) -> str:
    """The name a screen is counted under: a short hash, so the set holds no session id."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:16]


class ScreenLog:
    """One worker's screens seen since its last write, written to Redis now and then."""

    def __init__(self, client: redis.Redis, settings: Settings, *,
                 clock: Callable[[], float] = time.time, flush_every_s: float = FLUSH_EVERY_S) -> None:
        self.client = client
        self.key = settings.key(SCREENS_KEY)
        self.clock = clock
        self.flush_every_s = flush_every_s
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._flushed_at = 0.0

    def seen(self, page: str, scope: str, screen: str) -> None:
        """Note that ``screen`` (see :func:`screen_name`) asked for ``page`` in ``scope`` now."""
        now = self.clock()
        with self._lock:
            self._seen[SEP.join((page, scope, screen))] = now
            due = now - self._flushed_at >= self.flush_every_s
        if due:
            self.flush()

    def flush(self) -> None:
        """Write what was seen; a Redis error only loses this batch (the next poll brings it back)."""
        with self._lock:
            seen, self._seen = self._seen, {}
            now = self._flushed_at = self.clock()
        if not seen:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.zadd(self.key, seen)
            pipe.zremrangebyscore(self.key, "-inf", now - WINDOW_S)
            pipe.expire(self.key, int(WINDOW_S * 10))
            pipe.execute()
        except redis.RedisError as exc:
            log.debug("screens: not written: %s", exc)


def seen_on(client: redis.Redis, settings: Settings, page: str, *, now: float | None = None,
            window_s: float = WINDOW_S) -> set[str]:
    """The names (:func:`screen_name`) of the screens that asked for ``page`` within ``window_s``."""
    now = time.time() if now is None else now
    members = cast(list[str], client.zrangebyscore(settings.key(SCREENS_KEY), now - window_s, "+inf"))
    return {m.split(SEP, 2)[2] for m in members if m.count(SEP) >= 2 and m.split(SEP, 1)[0] == page}


def connected(client: redis.Redis, settings: Settings, *, now: float | None = None,
              window_s: float = WINDOW_S) -> dict[tuple[str, str], int]:
    """Screens per (page, scope) that asked within ``window_s`` seconds, from every worker."""
    now = time.time() if now is None else now
    members = cast(list[str], client.zrangebyscore(settings.key(SCREENS_KEY), now - window_s, "+inf"))
    counts: Counter[tuple[str, str]] = Counter()
    for member in members:
        page, scope, _screen = member.split(SEP, 2)
        counts[(page, scope)] += 1
    return dict(counts)


def users_on(client: redis.Redis, settings: Settings, page: str, user_ids: list[int], *,
             now: float | None = None, window_s: float = WINDOW_S) -> set[int]:
    """Which of ``user_ids`` had a session that asked for ``page`` within ``window_s`` (a hall
    screen's display user: is its wall open?). Two round trips whatever the number of users;
    a screen is noted at most :data:`FLUSH_EVERY_S` late."""
    if not user_ids:
        return set()
    seen = seen_on(client, settings, page, now=now, window_s=window_s)
    sessions = SessionStore(client, settings).sessions_of(user_ids)
    return {user_id for user_id, sids in sessions.items() if any(screen_name(sid) in seen for sid in sids)}
