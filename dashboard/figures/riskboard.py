"""The wall's 临期高风险 scores: every open case scored by the newest risk model, once a period.

A web worker keeps one :class:`RiskBoard`. Scoring reads every open case from SQL and runs the
model over all of them (docs/foresight.md: about a second at 100,000 open cases), far too much
for a wall refresh; so the board scores in a background thread at most once every
``GRIDHALL_WALL_RISK_REFRESH_S`` (and at once when a new model version is stored), and every
refresh of every screen reads the last result from memory. The wall then takes, per screen's
region, the riskiest cases the live view still shows open and not overdue
(``LiveView.open_rows``), so a case that closed or went overdue since the scoring leaves the
section at the next refresh, not at the next scoring.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from dashboard.figures.riskmodel import OpenRanking, newest, rank_open
from dashboard.rules.clock import utcnow
from dashboard.rules.deadlines import Timing

log = logging.getLogger(__name__)

# The riskiest open cases whose top reason is worked out at each scoring (a reason costs one model
# call per input): more than any wall shows, so a region's first rows have theirs too.
REASONS_FOR = 2000
# While no version is stored, or after a failure, look again this often (a first `gridhall risk
# train` reaches the wall within it).
RETRY_S = 30.0


@dataclass(frozen=True)
class RiskState:
    """What the wall's risk section shows: the last scoring, or why there is none."""

    ranking: OpenRanking | None  # None: no model trained, or not scored yet
    trained: bool  # a model version is stored
    generation: int  # bumped at each new scoring (the wall's panels are computed again)
    error: str | None = None


class RiskBoard:
    """One worker's periodic scoring of the open cases (see the module doc). Thread-safe."""

    def __init__(self, sessions: sessionmaker[Session], timing: Callable[[], Timing | None], period_s: float,
                 on_new: Callable[[], None] | None = None, reasons_for: int = REASONS_FOR,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sessions, self.timing, self.period_s = sessions, timing, period_s
        self.on_new, self.reasons_for, self.clock = on_new, reasons_for, clock
        self._state = RiskState(None, False, 0)
        self._checked = -float("inf")  # monotonic time of the last scoring (or look for a model)
        self._running = False
        self._lock = threading.Lock()

    def current(self) -> RiskState:
        """The last scoring; starts a new one in the background when the period has passed."""
        with self._lock:
            state = self._state
            wait = self.period_s if state.ranking is not None else min(self.period_s, RETRY_S)
            if not self._running and self.clock() - self._checked >= wait:
                self._running = True
                threading.Thread(target=self._refresh, name="gridhall-wall-risk", daemon=True).start()
        return state

    def refresh_now(self) -> RiskState:
        """Score now, in this thread (tests, the first look of a bench); returns the new state."""
        with self._lock:
            self._running = True
        self._refresh()
        return self._state

    def _refresh(self) -> None:
        old = self._state
        if self.timing() is None:  # the live view is still loading: ask again at the next look
            with self._lock:
                self._running = False
            return
        try:
            ranking, trained, error = self._score(utcnow(), old)
        except Exception as exc:  # the section says the risk is unavailable; the wall goes on
            log.warning("wall: overdue risk not scored: %s", (str(exc).strip().splitlines() or [type(exc).__name__])[0])
            ranking, trained, error = old.ranking, old.trained, "评分失败，稍后重试"
        changed = ranking is not old.ranking or trained != old.trained or error != old.error
        state = RiskState(ranking, trained, old.generation + 1, error) if changed else old
        with self._lock:
            self._state = state
            self._checked = self.clock()
            self._running = False
        if changed and self.on_new is not None:
            self.on_new()

    def _score(self, now: datetime, old: RiskState) -> tuple[OpenRanking | None, bool, str | None]:
        timing = self.timing()
        if timing is None:
            return old.ranking, old.trained, old.error
        with self.sessions() as session:
            loaded = newest(session)
            if loaded is None:
                return None, False, None
            ranking = rank_open(session, timing, loaded[0], loaded[1], now, reasons_for=self.reasons_for)
        log.debug("wall: %d open cases scored in %.2f s", len(ranking.case_ids), ranking.seconds)
        return ranking, True, None


__all__ = ["REASONS_FOR", "RiskBoard", "RiskState"]
