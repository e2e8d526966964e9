"""The process's geocoder of the stored gazetteer, built once and rebuilt when the gazetteer changes.

Building a :class:`~dashboard.geocode.matcher.Geocoder` reads the whole gazetteer (tens of
thousands of rows, a second or so); a web worker or a bridge answers many addresses with one.
A re-import (``gridhall import gazetteer``) replaces every row, so the fingerprint — the count
and the highest id — changes; it is looked at no more often than every ``check_s`` seconds
(one small aggregate query), and the next caller after a change gets a rebuilt geocoder.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dashboard.geocode.matcher import Geocoder
from dashboard.store.models import GazetteerEntry

CHECK_S = 60.0  # how often the gazetteer's fingerprint is read (a re-import is seen this late at most)


class CurrentGeocoder:
    """One geocoder per process, current with the stored gazetteer (thread-safe)."""

    def __init__(self, check_s: float = CHECK_S, min_score: float | None = None) -> None:
        self.check_s = check_s
        self.min_score = min_score
        self._lock = threading.Lock()
        self._geocoder: Geocoder | None = None
        self._fingerprint: tuple[int, int] | None = None
        self._checked = float("-inf")

    def get(self, session: Session) -> Geocoder:
        """The geocoder of the gazetteer stored now (read through ``session`` when it must be)."""
        with self._lock:
            if self._geocoder is not None and time.monotonic() - self._checked < self.check_s:
                return self._geocoder
            count, top = session.execute(select(func.count(), func.max(GazetteerEntry.id))).one()
            fingerprint = (int(count), int(top or 0))
            self._checked = time.monotonic()
            if self._geocoder is None or fingerprint != self._fingerprint:
                self._geocoder = Geocoder.load(session, min_score=self.min_score)
                self._fingerprint = fingerprint
            return self._geocoder
