"""The city's name: one answer for every screen header, page title, sign-in page and report.

``GRIDHALL_CITY_NAME`` when it is set (an explicit override); otherwise the ``name`` of the
city folder's ``city.toml``, stored in the database by ``gridhall import city``; otherwise
nothing (a city without a name shows its titles without one, never another city's name).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from dashboard.settings import Settings
from dashboard.store.models import Meta

META_KEY = "city_name"  # in the ``meta`` table
MAX_LENGTH = 64


def city_name(settings: Settings, session: Session) -> str:
    """The name to show for this deployment's city ("" when it has none)."""
    if settings.city_name:
        return settings.city_name
    row = session.get(Meta, META_KEY)
    return row.value if row else ""


def store_city_name(session: Session, name: str | None) -> None:
    """Record the imported city's own name (a re-import without one keeps the old name)."""
    if name:
        session.merge(Meta(key=META_KEY, value=name))


class CityNameSource:
    """``city_name`` for the web workers, read at most every ``ttl_s`` seconds.

    Every page load asks for it; a re-import shows up within ``ttl_s`` without a restart.
    When the database is unreachable the last known name stays.
    """

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], ttl_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._sessions = sessions
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._value = settings.city_name or ""
        self._read_at: float | None = None

    def __call__(self) -> str:
        if self._settings.city_name:
            return self._settings.city_name
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self._ttl_s:
                self._read_at = now
                try:
                    with self._sessions() as session:
                        self._value = city_name(self._settings, session)
                except SQLAlchemyError:
                    pass  # keep the last name; the page shows the database problem elsewhere
            return self._value
