"""What the services of /explore and /view share: settings, sessions, Redis, a clock, and the
timing (limits, working calendar, classes), built once per process.

The timing is built at the first request rather than at start-up, so the app starts while the
database is away; a failed build is tried again at the next request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

import redis
from sqlalchemy.orm import Session, sessionmaker

from dashboard.rules.clock import utcnow
from dashboard.rules.deadlines import Timing
from dashboard.settings import Settings
from dashboard.store.reference import timing_for


class LazyTiming:
    """``get(session)``: the settings' classification scheme and limits, read once (thread-safe)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._timing: Timing | None = None
        self._lock = threading.Lock()

    def get(self, session: Session) -> Timing:
        with self._lock:
            if self._timing is None:
                self._timing = timing_for(self.settings, session)
            return self._timing



class PageService:
    """The base of a page's service: what its callbacks share in one process."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], client: redis.Redis,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.sessions = sessions
        self.client = client
        self.clock = clock
        self._timing = LazyTiming(settings)

    def timing(self, session: Session) -> Timing:
        """Limits, working calendar and classes: built at the first request of this process."""
        return self._timing.get(session)


__all__ = ["LazyTiming", "PageService"]
