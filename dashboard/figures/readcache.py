"""Scoped figures computed once per (figure, scope, parameters, instant) and shared by every
reader of that scope in the process: the read API and /view (docs/api.md "Freshness").

A hall has a few dozen scopes (the city, its districts, some streets) but many readers: wall
systems polling the API every second, leaders' phones on /view. The read API's figures
(``readapi``) are SQL aggregates (~100 ms on a large city), so one per request queues the
whole hall behind them. :class:`ReadCache` keeps each answer for ``ttl_s`` seconds:

- **Keyed by the scope, never the user**: ``(figure, scope level and region code, parameters,
  the request's instant in whole TTLs)``. Two leaders of one district share an answer; two
  districts never do — the answer a key holds is the one computed for that scope alone.
- **At most ``ttl_s`` old**: an entry serves while the request's instant falls in the TTL slot
  it was computed for *and* less than ``ttl_s`` of this process's monotonic time has passed
  since its computation started (a frozen or jumping clock cannot keep it alive).
- **Computed once**: concurrent requests for a missing key wait for the one computing it
  (single flight) and share its answer or its error; an error is never kept.
- **Bounded**: at most ``max_entries`` keys, least recently used dropped first; stale entries
  are dropped as new ones arrive.
- ``ttl_s`` 0 switches it off: every call computes (the per-request-SQL path, kept as the
  benchmarks' baseline mode).

:class:`CachedReads` is ``readapi`` (and 综合考评) through one such cache.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from dashboard.figures import livereads, readapi
from dashboard.figures.evaluation import Evaluation, ObjectKind, Period, evaluate
from dashboard.figures.liveview import LiveView
from dashboard.rules.deadlines import Timing
from dashboard.rules.evalspec import Weights
from dashboard.store.scope import Scope

T = TypeVar("T")

MAX_ENTRIES = 256  # keys per process: a few dozen scopes × a handful of figures and pages
# The live view ticks every second; one further behind (a busy worker, a paused follower) or at
# another instant than asked (a pinned clock) is not used: the SQL path answers instead.
LIVE_MAX_LAG_S = 3.0
FLIGHT_WAIT_S = 30.0  # a waiter computes by itself after this (the statement timeout is 10 s)


def scope_key(scope: Scope) -> tuple[str, str | None]:
    """What identifies a scope's figures: its level and region code (None: the city)."""
    return (scope.level, scope.code)


@dataclass
class _Entry:
    slot: int
    made: float  # monotonic time its computation started
    value: Any


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None


class ReadCache:
    """A per-process, thread-safe, bounded cache of scoped figures (see the module docstring)."""

    def __init__(self, ttl_s: float, max_entries: int = MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = max(0.0, float(ttl_s))
        self.max_entries = max(1, max_entries)
        self.clock = clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._flights: dict[tuple[Hashable, int], _Flight] = {}
        self._lock = threading.Lock()
        self.computed = 0  # computations run (tests and benchmarks read these two)
        self.served = 0  # answers given from an entry or another request's computation

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def get(self, figure: str, scope: Scope, params: tuple[Hashable, ...], now: datetime,
            compute: Callable[[], T]) -> T:
        """The value of ``compute()`` for ``figure`` of ``scope`` with ``params`` at ``now``:
        computed here, or shared with another request of the same key at most ``ttl_s`` ago."""
        if not self.enabled:
            with self._lock:
                self.computed += 1
            return compute()
        key: Hashable = (figure, scope_key(scope), params)
        slot = math.floor(now.timestamp() / self.ttl_s)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.slot == slot and self.clock() - entry.made < self.ttl_s:
                self._entries.move_to_end(key)
                self.served += 1
                return entry.value  # type: ignore[no-any-return]  # stored by this key's compute
            flight = self._flights.get((key, slot))
            leader = flight is None
            if flight is None:
                flight = self._flights[(key, slot)] = _Flight()
        if not leader:
            return self._wait(flight, compute)
        made = self.clock()
        try:
            value = compute()
        except BaseException as exc:
            flight.error = exc
            self._land(key, slot, flight, None)
            raise
        flight.value = value
        self._land(key, slot, flight, _Entry(slot, made, value))
        return value

    def _land(self, key: Hashable, slot: int, flight: _Flight, entry: _Entry | None) -> None:
        """End ``flight``: keep its answer (never an error) and wake its waiters."""
        with self._lock:
            self._flights.pop((key, slot), None)
            self.computed += 1
            if entry is not None:
                self._store(key, entry)
        flight.done.set()

    def _wait(self, flight: _Flight, compute: Callable[[], T]) -> T:
        if not flight.done.wait(FLIGHT_WAIT_S):
            return compute()  # the computing request is stuck: do not queue behind it
        if flight.error is not None:
            raise flight.error
        with self._lock:
            self.served += 1
        return flight.value  # type: ignore[no-any-return]  # set by this key's compute

    def _store(self, key: Hashable, entry: _Entry) -> None:
        """Keep ``entry`` (lock held) unless a newer one is there; drop stale entries from the old
        end and the least recently used beyond the bound."""
        kept = self._entries.get(key)
        if kept is not None and kept.made > entry.made:
            return  # a later slot's computation finished first
        self._entries[key] = entry
        self._entries.move_to_end(key)
        now = self.clock()
        while self._entries:
            oldest_key, oldest = next(iter(self._entries.items()))
            if len(self._entries) > self.max_entries or now - oldest.made >= self.ttl_s:
                if oldest_key == key:
                    break
                self._entries.popitem(last=False)
            else:
                break


class CachedReads:
    """``readapi``'s figures and 综合考评 through one :class:`ReadCache`: what the read API and
    /view ask for. Same arguments and answers as the functions they call.

    ``live``: where the worker's live view is (``WallService.live``). While it is loaded and
    following the feed, the summary, the grids (without a region filter) and the overdue page
    come from it (``livereads``:
    milliseconds, no SQL aggregate); otherwise, and always with the cache off, from SQL
    (``readapi``)."""

    def __init__(self, cache: ReadCache, live: Callable[[], LiveView | None] | None = None) -> None:
        self.cache = cache
        self.live = live

    def _live(self, now: datetime) -> LiveView | None:
        """The live view if it can answer for ``now``: following the feed, and its instant
        (its last tick) within LIVE_MAX_LAG_S of ``now``."""
        # Off with the cache (TTL 0): the per-request-SQL path, the benchmarks' baseline.
        view = self.live() if self.live is not None and self.cache.enabled else None
        if view is None or view.stale_reason is not None:
            return None
        return view if abs((now - view.as_of).total_seconds()) <= LIVE_MAX_LAG_S else None

    def summary(self, session: Session, scope: Scope, timing: Timing, now: datetime) -> readapi.Summary:
        def compute() -> readapi.Summary:
            view = self._live(now)
            return livereads.summary(view, scope) if view is not None else readapi.summary(session, scope, timing, now)

        return self.cache.get("summary", scope, (), now, compute)

    def grids(self, session: Session, scope: Scope, timing: Timing, now: datetime, *, region: str | None = None,
              include_idle: bool = False, limit: int = readapi.MAX_LIMIT, offset: int = 0) -> readapi.GridPage:
        def compute() -> readapi.GridPage:
            view = self._live(now) if region is None else None  # a region filter: SQL resolves it
            if view is not None:
                return livereads.grids(view, scope, include_idle=include_idle, limit=limit, offset=offset)
            return readapi.grids(session, scope, timing, now, region=region, include_idle=include_idle,
                                 limit=limit, offset=offset)

        return self.cache.get("grids", scope, (region, include_idle, limit, offset), now, compute)

    def overdue(self, session: Session, scope: Scope, timing: Timing, now: datetime, *, limit: int = 50,
                offset: int = 0) -> readapi.OverduePage:
        def compute() -> readapi.OverduePage:
            view = self._live(now)
            if view is not None:
                return livereads.overdue(view, session, scope, limit=limit, offset=offset)
            return readapi.overdue(session, scope, timing, now, limit=limit, offset=offset)

        return self.cache.get("overdue", scope, (limit, offset), now, compute)

    def units(self, session: Session, scope: Scope, timing: Timing, now: datetime) -> readapi.UnitBoard:
        return self.cache.get("units", scope, (), now, lambda: readapi.units(session, scope, timing, now))

    def evaluation(self, session: Session, scope: Scope, kind: ObjectKind | str, period: Period,
                   weights: Weights, now: datetime) -> Evaluation:
        # The weights are the process's settings (one set per cache owner), not a parameter.
        return self.cache.get("evaluation", scope, (ObjectKind(kind).value, period.start, period.end), now,
                              lambda: evaluate(session, scope, kind, period, weights, now=now))


__all__ = ["MAX_ENTRIES", "CachedReads", "ReadCache", "scope_key"]
