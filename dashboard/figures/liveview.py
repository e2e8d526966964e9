"""The live view of the command-hall wall: every figure of the wall, in memory, per web worker.

Each web worker keeps one :class:`LiveView`. It is

- **built from SQL at start** (:meth:`LiveView.load`): all open cases with their stored clocks,
  the cases with a timestamp of today (or of the last hour before it), and the cases handled
  this month (for the units' on-time rates);
- **advanced by the change notices** of the feed (:meth:`LiveView.apply`, driven by
  :class:`feeds.follower.ChangeFollower`): the rows of exactly the announced cases are read
  again (one ``SELECT … WHERE case_id IN (…)`` per 2,000 ids) and every aggregate is updated
  by taking the case's old record out and putting its new record in;
- **re-evaluated on the clock** (:meth:`LiveView.tick`, at least once a second): whether each
  running clock is overdue (超期), due soon (临期) or stopped by 挂账 is decided at the instant,
  vectorised with numpy over all open cases (the formulas of
  :func:`dashboard.rules.deadlines.evaluate_arrays`, with each deadline's working-minute offset
  computed once when the case is read), so a case crossing its deadline moves to 超期 with no
  event; the local day (today's KPIs) and the "new in the last hour" window move with it.

The screens' callbacks only read it (:meth:`kpis`, :meth:`grid_values`,
:meth:`grid_changes_since`, :meth:`hot_spots`, :meth:`overdue_queue`, :meth:`unit_board`,
:meth:`stage_counts`): no aggregate SQL per refresh. A region's wall reads the same figures
restricted to the region's grids (``scoped_*``: a boolean mask over grid indexes, cached per
scope; numpy masks and bincounts over the open slots and today's and this month's facts), the city's
wall also the districts side by side (:meth:`district_rows`). The definitions of every figure are in
the docstrings of the result dataclasses (:mod:`dashboard.figures.wallfigures`) and in
docs/wall.md "指标定义 / Definitions".

Storage: the open cases live in numpy arrays indexed by a *slot* (a dict maps ``case_id`` to
its slot; freed slots are reused), per-grid figures in numpy arrays indexed by a grid index
(100,000 grids are 400 KB per metric, and a tick updates only the grids whose cases flipped),
per-unit figures likewise. Today's and this month's facts, a few thousand to a few hundred
thousand cases, are small tuples in dicts, mirrored in numpy columns too (``_FactRows``: a
row per case, rows reused), so a region's or a district's figures of today and of the month
are masks and bincounts, not a loop over the cases.

**Threads.** One re-entrant lock per view. Writers (:meth:`apply`, :meth:`tick`, and the swap
at the end of :meth:`reload`) hold it for milliseconds; readers hold it while they copy out
plain values and return immutable dataclasses (or fresh dicts), so a caller never sees a
half-applied change. :meth:`reload` builds the new state outside the lock (seconds for a
million cases) while the old one keeps serving, then swaps it in.

**version** counts visible changes: it is bumped when a count, a membership (which cases are
超期/临期), a case's shown details or the day change. The minute figures of the overdue queue
grow with time without bumping it: a panel that shows them re-reads at its own pace.
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import String, bindparam, cast, func, inspect, or_, select, text
from sqlalchemy.orm import Session

from dashboard.figures.districts import HOUR, DistrictRow, hourly_mean, trend_of
from dashboard.figures.heat import GRID_METRICS
from dashboard.figures.wallfigures import (
    NEW_WINDOW,
    PRIOR_CASES,
    UNIT_FEEDBACK,
    UNIT_OVERDUE_CLOCK,
    UNIT_PENDING,
    Changes,
    HotSpot,
    Kpis,
    OverdueQueue,
    QueueRow,
    ScopedQueue,
    UnitRow,
    unit_levels,
)
from dashboard.rules.deadlines import due_soon_mask
from dashboard.rules.lifecycle import OPEN, Stage
from dashboard.rules.limits import STAGES as CLOCK_STAGES
from dashboard.rules.vocab import Source, Urgency
from dashboard.store.db import FreeText
from dashboard.store.models import Case, Grid, Region, Unit
from dashboard.store.queries import DISPOSING, OPEN_STAGES, StageCount, day_window

if TYPE_CHECKING:
    from dashboard.rules.deadlines import Timing

# -- definitions (documented in docs/wall.md) -----------------------------------------------------
CHANGELOG_VERSIONS = 256  # grid_changes_since answers for the last this many versions
DESCRIPTION_CHARS = 60  # the wall shows a short description; the case page has the rest
ID_CHUNK = 2000  # case ids per IN (...) list
LOAD_CHUNK = 50_000  # rows per chunk when loading the open cases
SCOPE_MASKS = 256  # region scopes' grid masks kept (a hall has a few dozen scopes)
DISTRICT = "district"  # the region level of 各区对比's rows

_NAT = np.iinfo(np.int64).min  # "no time" in the int64 microsecond arrays
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STAGES: tuple[Stage, ...] = tuple(Stage)
_STAGE_IX = {s.value: i for i, s in enumerate(_STAGES)}
_OPEN_IX = frozenset(_STAGE_IX[s.value] for s in OPEN)
_OPEN_VALUES = frozenset(s.value for s in OPEN)
_DISPOSING_IX = np.array([_STAGE_IX[s.value] for s in DISPOSING])
_PENDING_IX = frozenset(_STAGE_IX[s.value] for s in UNIT_PENDING)
_FEEDBACK_IX = frozenset(_STAGE_IX[s.value] for s in UNIT_FEEDBACK)
_PENDING_LIST = np.array(sorted(_PENDING_IX))
_FEEDBACK_LIST = np.array(sorted(_FEEDBACK_IX))
_CLOCKS: tuple[str, ...] = tuple(CLOCK_STAGES)
_CLOCK_IX = {c: i for i, c in enumerate(_CLOCKS)}
_HANDLE_IX = _CLOCK_IX[UNIT_OVERDUE_CLOCK]
_URGENT = Urgency.URGENT.value
_CHANNELS = tuple(Source)  # a case's 来源, stored as its index here ("chan"; -1: none given)
_CHANNEL_IX = {s.value: i for i, s in enumerate(_CHANNELS)}
_CALENDAR_UNIT = "calendar_hours"
_SOURCES = ("table", "source")
# Cached reads that depend on the instant itself (minutes, the hour's trend), not only on the
# version: a tick drops them even when nothing visible changed.
_PER_INSTANT = frozenset({"queue", "districts"})
# A month fact: (handled_at, unit index, on_time_handle, grid index); see LiveView._month.
MonthFact = tuple[int, int, bool, int]


def _us(moment: datetime) -> int:
    """An aware datetime as integer microseconds since 1970 UTC."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _dt(us: int, tz: tzinfo) -> datetime:
    return (_EPOCH + timedelta(microseconds=int(us))).astimezone(tz)


def _ts(values: Sequence[Any]) -> np.ndarray:
    """SQL timestamps read as text (naive UTC; None) → int64 microseconds (_NAT for None)."""
    if not len(values):
        return np.empty(0, dtype=np.int64)
    return np.array(values, dtype="datetime64[us]").view(np.int64)


def _as_text(column: Any, name: str) -> Any:
    # Timestamps are read as their text form (naive UTC on both backends): numpy parses a
    # million of them in 0.1 s, where building datetime objects first takes seconds.
    return cast(column, String).label(name)


# What the view reads of an open case, and of a case's day and month facts.
_OPEN_COLUMNS = (
    Case.case_id, Case.stage, Case.number, Case.kind, Case.class_code, Case.grid_id, Case.unit_id,
    Case.urgency, Case.source, func.substr(Case.description, 1, DESCRIPTION_CHARS, type_=FreeText).label("description"),
    _as_text(Case.reported_at, "reported_at"), Case.clock_stage, _as_text(Case.deadline_at, "deadline_at"),
    Case.deadline_source, Case.limit_minutes, Case.limit_unit, _as_text(Case.paused_at, "paused_at"),
    Case.rework_count, Case.extension_count,
)
_FACT_COLUMNS = (
    Case.case_id, Case.stage, Case.grid_id, Case.unit_id,
    _as_text(Case.reported_at, "f_reported"), _as_text(Case.filed_at, "f_filed"),
    _as_text(Case.dispatched_at, "f_dispatched"), _as_text(Case.closed_at, "f_closed"),
    _as_text(Case.handled_at, "f_handled"), Case.on_time_close, Case.on_time_handle,
)


# The rows :meth:`LiveView.apply` re-reads, built once: building this statement of 29 columns
# and its cache key for every change notice took a quarter of a worker's CPU under 200 viewers
# (bench/viewers.py, py-spy); an expanding parameter takes each notice's case ids.
_APPLY_SELECT = select(*_OPEN_COLUMNS, *_FACT_COLUMNS[4:]).where(
    Case.case_id.in_(bindparam("ids", expanding=True)))


def _fetch_chunks(session: Session, stmt: Any, size: int) -> Iterator[dict[str, list[Any]]]:
    """:func:`_fetch` in chunks of ``size`` rows (streamed where the driver can)."""
    result = session.connection().execution_options(stream_results=True, yield_per=size).execute(stmt)
    names = list(result.keys())
    for rows in result.partitions(size):
        yield dict(zip(names, (list(c) for c in zip(*rows, strict=False)), strict=False))


def _fetch(session: Session, stmt: Any, params: Mapping[str, Any] | None = None) -> dict[str, list[Any]]:
    """Run a SELECT on the session's connection (plain rows, no ORM) → column name → values."""
    result = session.connection().execute(stmt, dict(params) if params else None)
    names = list(result.keys())
    rows = result.all()
    if not rows:
        return {name: [] for name in names}
    return dict(zip(names, (list(c) for c in zip(*rows, strict=False)), strict=False))


class _FactRows:
    """Facts kept in a dict (case_id → tuple), mirrored as numpy columns: a row per case, freed
    rows reused (like the open cases' slots), a freed row holding each column's fill value so
    that it counts nowhere. A region's figures over today's or this month's facts are then
    masks and bincounts instead of a loop over hundreds of thousands of tuples."""

    def __init__(self, spec: Mapping[str, tuple[Any, int]]) -> None:
        self.spec = dict(spec)  # column → (dtype, fill)
        self.rows: dict[str, int] = {}
        self.free: list[int] = []
        self.a = self._alloc(0)

    def _alloc(self, capacity: int) -> dict[str, np.ndarray]:
        return {name: np.full(capacity, fill, dtype=dtype) for name, (dtype, fill) in self.spec.items()}

    def rebuild(self, ids: list[str], columns: Mapping[str, Any]) -> None:
        """All rows at once: ``columns`` holds a value per id for each column."""
        k = len(ids)
        a = self._alloc(max(1024, k))
        if k:
            for name, values in columns.items():
                a[name][:k] = values
        self.a = a
        self.rows = dict(zip(ids, range(k), strict=True))
        self.free = list(range(a[next(iter(a))].size - 1, k - 1, -1))

    def put(self, cid: str, values: Mapping[str, Any] | None) -> None:
        """Set the row of ``cid`` to ``values`` (None: no fact, the row is freed)."""
        r = self.rows.pop(cid, None)
        if r is not None:
            for name, (_dtype, fill) in self.spec.items():
                self.a[name][r] = fill
            self.free.append(r)
        if values is None:
            return
        if not self.free:
            size = self.a[next(iter(self.a))].size
            grown = self._alloc(2 * size)
            for name, arr in self.a.items():
                grown[name][:size] = arr
            self.a = grown
            self.free = list(range(2 * size - 1, size - 1, -1))
        r = self.free.pop()
        self.rows[cid] = r
        for name, v in values.items():
            self.a[name][r] = v


# The fact mirrors' columns. Today: the four timestamps (_NAT: none), the on-time flag of the
# 结案 (−1: no flag), grid and unit indexes. Month: unit, grid, on time, and whether it counts
# (a unit, handled inside this month).
_TODAY_SPEC: dict[str, tuple[Any, int]] = {
    "rep": (np.int64, _NAT), "fil": (np.int64, _NAT), "dis": (np.int64, _NAT), "clo": (np.int64, _NAT),
    "ok": (np.int8, -1), "grid": (np.int32, -1), "unit": (np.int32, -1)}
_MONTH_SPEC: dict[str, tuple[Any, int]] = {
    "unit": (np.int32, -1), "grid": (np.int32, -1), "ok": (bool, 0), "on": (bool, 0)}


# -- the view -----------------------------------------------------------------------------------------
def _day_counts(records: Iterable[tuple[int, int, int, int, bool | None, int, int]], lo: int, hi: int,
                ) -> dict[str, int]:
    """Today's KPI counts (上报, 立案, 派遣, 结案 and its on-time flags) of these day records
    (``LiveView._today``'s values) for the local day [lo, hi)."""
    k = dict(reported=0, filed=0, dispatched=0, closed=0, closed_on_time=0, closed_flagged=0)
    for rep, fil, dis, clo, ok, _g, _u in records:
        k["reported"] += lo <= rep < hi
        k["filed"] += lo <= fil < hi
        k["dispatched"] += lo <= dis < hi
        if lo <= clo < hi:
            k["closed"] += 1
            if ok is not None:
                k["closed_flagged"] += 1
                k["closed_on_time"] += bool(ok)
    return k


class LiveView:
    """All figures of the wall for one web worker (see the module docstring)."""

    def __init__(self, timing: Timing, tz: tzinfo | None = None) -> None:
        """An empty view; use :meth:`load`."""
        self._lock = threading.RLock()
        # Signalled whenever ``version`` moves (a change notice, a clock second that changed a
        # figure, a reload): pushed screens wait on it instead of polling (callbacks/wall.py).
        self._changed = threading.Condition(self._lock)
        self.timing = timing
        self.tz: tzinfo = tz if tz is not None else timing.calendar.tz
        self.stale_reason: str | None = None  # set by the follower when it cannot keep up
        self.version = 0
        self.loaded_at: datetime | None = None
        self.last_change_at: datetime | None = None
        self._init_state()

    @contextmanager
    def consistent(self) -> Iterator[LiveView]:
        """Hold the view still while a caller reads several figures as one picture.

        The wall's panels (KPIs, hot spots, queue, board) must agree with each other; the lock is
        re-entrant, so the figure methods called inside take it again without blocking.
        """
        with self._lock:
            yield self

    # ---------------------------------------------------------------------------- building
    def _init_state(self) -> None:
        # places
        self._gcode: list[str] = []
        self._gcodes = np.empty(0, dtype=object)  # the same codes, for fancy indexing
        self._gnames: list[tuple[str, str, str]] = []
        self._gix: dict[int, int] = {}  # grids.id → grid index
        self._grank = np.empty(0, dtype=np.int64)  # rank of each grid's code (tie-breaks)
        self._ucode: list[str] = []
        self._uname: list[str] = []
        self._uix: dict[int, int] = {}
        self._classes: list[tuple[str, str]] = [("", "")]  # class index → (major, minor) names
        self._cix: dict[tuple[str | None, str | None], int] = {(None, None): 0}
        # slots of open cases
        self._slot: dict[str, int] = {}
        self._free: list[int] = []
        self._cid: list[str | None] = []
        self._number: list[str | None] = []
        self._desc: list[str | None] = []
        self._cap = 0
        self._n = 0  # slots ever used (high-water mark)
        self._arrays: dict[str, np.ndarray] = {}
        self._grow(1024)
        # per grid / unit
        self._g = {m: np.zeros(0, dtype=np.int64) for m in GRID_METRICS}
        self._u = {m: np.zeros(0, dtype=np.int64) for m in
                   ("open", "pending", "feedback", "overdue", "rework", "extension", "closed_today",
                    "month_ok", "month_flag")}
        self._stage_n = np.zeros(len(_STAGES), dtype=np.int64)
        self._urgent_n = 0
        self._over_n = 0
        self._soon_n = 0
        # today's facts: case_id → (reported, filed, dispatched, closed (结案 only), on_time_close,
        # grid, unit), kept for every case with a timestamp ≥ day start − 1 h (no upper bound)
        self._today: dict[str, tuple[int, int, int, int, bool | None, int, int]] = {}
        self._kpi = dict(reported=0, filed=0, dispatched=0, closed=0, closed_on_time=0, closed_flagged=0)
        # this month's handled cases with a flag: case_id → (handled_at, unit, on_time_handle, grid)
        self._month: dict[str, MonthFact] = {}
        # Today's and this month's facts as arrays too (_FactRows), for a region's figures:
        # kept by _apply_facts, rebuilt from the dicts when first read after a load, a new day
        # or a restore (_fact_rows; 0.4 s at 440,000 facts of today, off the restore's path).
        self._tf = _FactRows(_TODAY_SPEC)
        self._mf = _FactRows(_MONTH_SPEC)
        self._facts_stale = True
        # districts (各区对比): (code, name) in code order, and each grid's district index (−1: none)
        self._districts: list[tuple[str, str]] = []
        self._gdist = np.empty(0, dtype=np.int32)
        # windows and the view's instant
        self._at = 0
        self._off_now = 0.0
        self._day: date = date.min
        self._day_lo = self._day_hi = self._keep_lo = 0
        self._month_lo = self._month_hi = 0
        self._hour_next = _NAT  # next instant at which the last-hour window changes membership
        self._log: deque[tuple[int, dict[str, frozenset[int]]]] = deque(maxlen=CHANGELOG_VERSIONS)
        self._log_floor = 0  # versions before this one cannot be answered (reload)
        self._cache: dict[Any, Any] = {}
        # grid code → grid index, built when first asked for the grid codes list it was built from
        self._code_ix: dict[str, int] = {}
        self._code_ix_of: list[str] | None = None
        # A region scope's grids (their grids.id) → a mask over grid indexes; rebuilt with the places.
        self._scope_masks: dict[frozenset[int], np.ndarray] = {}

    _ARRAY_TYPES = {
        "grid": np.int32, "unit": np.int32, "stage": np.int8, "clock": np.int8, "src": np.int8,
        "cls": np.int32, "chan": np.int8, "urgent": bool, "working": bool, "rework": np.int16, "ext": np.int16,
        "deadline": np.int64, "paused_at": np.int64, "reported": np.int64,
        "limit": np.float64, "off_d": np.float64,
        "overdue": bool, "soon": bool, "paused": bool, "live": bool,
    }

    def _grow(self, capacity: int) -> None:
        old = self._arrays
        new = {}
        for name, dtype in self._ARRAY_TYPES.items():
            fill = _NAT if dtype is np.int64 else (-1 if name in ("grid", "unit", "clock") else 0)
            arr = np.full(capacity, fill, dtype=dtype)
            if name in old:
                arr[: self._cap] = old[name]
            new[name] = arr
        self._arrays = new
        grow = capacity - self._cap
        self._cid += [None] * grow
        self._number += [None] * grow
        self._desc += [None] * grow
        self._cap = capacity

    @classmethod
    def load(cls, session: Session, timing: Timing, now: datetime, *, tz: tzinfo | None = None) -> LiveView:
        """Build the view from SQL as of ``now`` (aware). Takes seconds for a million open cases."""
        view = cls(timing, tz)
        view._build(session, now)
        view.version = 1
        view._log_floor = 1
        view.loaded_at = now
        return view

    def reload(self, session: Session, now: datetime) -> None:
        """Rebuild from SQL (after missed notices); readers see the old state until the swap."""
        self.adopt(LiveView.load(session, self.timing, now, tz=self.tz))

    def adopt(self, fresh: LiveView) -> None:
        """Take over the state of another view (a reload, or one restored from a snapshot and
        caught up): one swap under the lock, a new version, no delta answered across it."""
        with self._lock:
            version = self.version + 1
            keep = {"_lock": self._lock, "_changed": self._changed, "stale_reason": self.stale_reason,
                    "last_change_at": self.last_change_at}
            self.__dict__.update({k: v for k, v in fresh.__dict__.items() if k not in keep})
            self.loaded_at = fresh.loaded_at or fresh.as_of
            self.version = version
            self._log.clear()
            self._log_floor = version
            self._cache = {}
            self._changed.notify_all()

    # ---------------------------------------------------------------------------- snapshots
    def export_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The view's whole state as copies: numpy arrays and plain JSON-able values.

        What :meth:`from_state` takes back (the file around it is ``feeds/snapshot.py``'s).
        Copies are taken under the lock (tens of milliseconds for a million open cases), so
        the caller may serialise them in another thread while the view moves on.
        """
        with self._lock:
            n = self._n
            arrays: dict[str, np.ndarray] = {f"a.{k}": v[:n].copy() for k, v in self._arrays.items()}
            arrays.update({f"g.{k}": v.copy() for k, v in self._g.items()})
            arrays.update({f"u.{k}": v.copy() for k, v in self._u.items()})
            arrays["stage_n"] = self._stage_n.copy()
            arrays["grank"] = self._grank.copy()
            arrays["gdist"] = self._gdist.copy()
            big = {"cid": self._cid[:n], "number": self._number[:n], "desc": self._desc[:n],
                   "today_ids": list(self._today), "today": list(self._today.values()),
                   "month_ids": list(self._month), "month": list(self._month.values())}
            meta: dict[str, Any] = {
                "n": n, "free": list(self._free),
                "gcode": list(self._gcode), "gnames": list(self._gnames),
                "gix": [list(self._gix), list(self._gix.values())],
                "ucode": list(self._ucode), "uname": list(self._uname),
                "uix": [list(self._uix), list(self._uix.values())],
                "classes": list(self._classes), "districts": [list(d) for d in self._districts],
                "cix": [[k[0], k[1], v] for k, v in self._cix.items()],
                "urgent_n": self._urgent_n, "over_n": self._over_n, "soon_n": self._soon_n,
                "kpi": dict(self._kpi),
                "at": self._at, "day": self._day.isoformat(), "day_lo": self._day_lo, "day_hi": self._day_hi,
                "keep_lo": self._keep_lo, "month_lo": self._month_lo, "month_hi": self._month_hi,
                "hour_next": self._hour_next, "due_soon_ratio": self.timing.due_soon_ratio,
            }
        return arrays, {**meta, **big}

    @classmethod
    def from_state(cls, timing: Timing, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any],
                   *, tz: tzinfo | None = None) -> LiveView:
        """A view from :meth:`export_state`'s output, checked against ``timing``.

        Raises ValueError when the state does not fit together or was computed with other
        rules (another calendar, classification or 临期 ratio): the caller loads from SQL then.
        """
        view = cls(timing, tz)
        n = int(meta["n"])
        if meta["due_soon_ratio"] != timing.due_soon_ratio:
            raise ValueError("another due-soon ratio")
        a = {}
        for name, dtype in cls._ARRAY_TYPES.items():
            arr = np.asarray(arrays[f"a.{name}"])
            if arr.shape != (n,) or arr.dtype != np.dtype(dtype):
                raise ValueError(f"slot array {name}: {arr.dtype}{arr.shape}")
            a[name] = arr
        cid, number, desc = list(meta["cid"]), list(meta["number"]), list(meta["desc"])
        if not len(cid) == len(number) == len(desc) == n:
            raise ValueError("slot lists of another length")
        view._gcode = list(meta["gcode"])
        view._gcodes = np.array(view._gcode, dtype=object)
        view._gnames = [(c, s, d) for c, s, d in meta["gnames"]]
        view._gix = dict(zip(*meta["gix"], strict=True))
        view._ucode, view._uname = list(meta["ucode"]), list(meta["uname"])
        view._uix = dict(zip(*meta["uix"], strict=True))
        G, U = len(view._gcode), len(view._ucode)
        if len(view._gnames) != G or len(view._uname) != U:
            raise ValueError("place lists of another length")
        view._grank = np.asarray(arrays["grank"], dtype=np.int64)
        view._districts = [(str(c), str(nm)) for c, nm in meta["districts"]]
        view._gdist = np.asarray(arrays["gdist"], dtype=np.int32)
        if view._gdist.shape != (G,) or (view._gdist.size and int(view._gdist.max()) >= len(view._districts)):
            raise ValueError("districts of another length")
        view._g = {m: np.asarray(arrays[f"g.{m}"], dtype=np.int64) for m in GRID_METRICS}
        view._u = {m: np.asarray(arrays[f"u.{m}"], dtype=np.int64) for m in view._u}
        if view._grank.shape != (G,) or any(v.shape != (G,) for v in view._g.values()) or any(
                v.shape != (U,) for v in view._u.values()):
            raise ValueError("per-grid or per-unit arrays of another length")
        # the class names come from today's classification: they must be the ones stored
        view._cix = {(k, c): int(ix) for k, c, ix in meta["cix"]}
        stored = [tuple(c) for c in meta["classes"]]
        view._classes = [("", "")]
        for key, ix in sorted(view._cix.items(), key=lambda kv: kv[1]):
            if ix == 0:
                continue
            if ix != len(view._classes):
                raise ValueError("class indexes out of order")
            del view._cix[key]
            view._class_of(*key)
        if view._classes != stored:
            raise ValueError("another classification")
        view._stage_n = np.asarray(arrays["stage_n"], dtype=np.int64)
        view._arrays, view._cap, view._n = a, n, n
        view._cid, view._number, view._desc = cid, number, desc
        view._slot = dict(zip(cid, range(n), strict=True))
        view._slot.pop(None, None)  # type: ignore[call-overload]  # freed slots
        view._free = [int(s) for s in meta["free"]]
        if len(view._slot) + len(view._free) != n or any(cid[s] is not None for s in view._free):
            raise ValueError("slots and free list disagree")
        if n < 1024:
            view._grow(1024)
        # the deadlines' working-time offsets were computed with the calendar: same calendar?
        has = np.flatnonzero(a["deadline"] != _NAT)
        if has.size:
            sample = has[np.linspace(0, has.size - 1, min(has.size, 2000)).astype(np.int64)]
            if not np.allclose(view._offsets(a["deadline"][sample]), a["off_d"][sample], rtol=0, atol=1e-6,
                               equal_nan=True):
                raise ValueError("another working calendar")
        view._urgent_n, view._over_n, view._soon_n = int(meta["urgent_n"]), int(meta["over_n"]), int(meta["soon_n"])
        view._today = dict(zip(meta["today_ids"], map(tuple, meta["today"]), strict=True))
        view._kpi = {k: int(v) for k, v in meta["kpi"].items()}
        view._month = dict(zip(meta["month_ids"], map(tuple, meta["month"]), strict=True))
        if any(len(f) != 4 for f in view._month.values()):  # a month fact carries its grid since format 2
            raise ValueError("month facts of another shape")
        view._at = int(meta["at"])
        view._day = date.fromisoformat(meta["day"])
        view._day_lo, view._day_hi, view._keep_lo = int(meta["day_lo"]), int(meta["day_hi"]), int(meta["keep_lo"])
        view._month_lo, view._month_hi = int(meta["month_lo"]), int(meta["month_hi"])
        view._hour_next = int(meta["hour_next"])
        view._off_now = view._offset(view._at)
        view.version = 1
        view._log_floor = 1
        return view

    def differing(self, session: Session, k: int = 500, seed: int = 0) -> list[str]:
        """Case ids, of up to ``k`` open cases picked at random, whose record here is not SQL's.

        A restored view is checked with it after its catch-up: every case it holds should
        read as SQL has it (a snapshot of another database with the same reference data
        would not).
        """
        with self._lock:
            live = np.flatnonzero(self._arrays["live"][: self._n])
            if not live.size:
                return []
            pick = np.random.default_rng(seed).choice(live, size=min(k, live.size), replace=False)
            ids = [c for c in (self._cid[s] for s in pick.tolist()) if c is not None]
            mine = dict(zip(ids, self._gather(np.array([self._slot[c] for c in ids], dtype=np.int64)),
                            strict=True))
        cols = _fetch(session, select(*_OPEN_COLUMNS).where(Case.case_id.in_(ids)))
        probe = LiveView(self.timing, self.tz)
        probe.__dict__.update({k: v for k, v in self.__dict__.items()
                               if k in ("_gix", "_uix", "_cix", "_classes")})
        probe._cix, probe._classes = dict(self._cix), list(self._classes)
        found = dict(zip(cols["case_id"], range(len(cols["case_id"])), strict=True))
        theirs: dict[str, tuple[Any, ...]] = {}
        if found:
            rec = probe._records(cols)
            k_rows = len(cols["case_id"])
            for name in probe._RECORD:
                if not isinstance(rec[name], np.ndarray):
                    rec[name] = np.array([rec[name]] * k_rows if isinstance(rec[name], bool) else rec[name],
                                         dtype=self._ARRAY_TYPES[name])
            for cid, i in found.items():
                theirs[cid] = (*(rec[name][i].item() for name in probe._RECORD),
                               rec["number"][i], rec["description"][i])
        return sorted(c for c in ids if theirs.get(c) != mine[c])

    def _build(self, session: Session, now: datetime) -> None:
        self._load_places(session)
        self._start(now)
        # open cases, in chunks (bounded memory while reading a million rows)
        stmt = select(*_OPEN_COLUMNS).where(Case.stage.in_([s.value for s in OPEN]))
        self._fill_open(_fetch_chunks(session, stmt, LOAD_CHUNK))
        # today's and this month's facts
        keep = _dt(self._keep_lo, UTC)
        today = _fetch(session, select(*_FACT_COLUMNS).where(or_(
            Case.reported_at >= keep, Case.filed_at >= keep, Case.dispatched_at >= keep, Case.closed_at >= keep)))
        month = _fetch(session, select(*_FACT_COLUMNS).where(
            Case.handled_at >= _dt(self._month_lo, UTC), Case.on_time_handle.is_not(None)))
        self._fill_facts(today, month)

    @classmethod
    def from_rows(cls, session: Session, timing: Timing, now: datetime, rows: Mapping[str, list[Any]],
                  *, tz: tzinfo | None = None) -> LiveView:
        """Build the view as of ``now`` from case rows given as columns (not read from ``cases``).

        ``rows`` holds the columns :meth:`load` reads (``_OPEN_COLUMNS`` and ``_FACT_COLUMNS``'
        labels, timestamps naive UTC) for every case that may count at ``now``: the open ones and
        those with a fact of today or of this month (the others are ignored, as :meth:`load`'s
        queries leave them out). The replay (:mod:`dashboard.figures.timetravel`) gives the rows
        as they were at a past instant, folded from the events; ``session`` is read for the
        places (grids, units, regions) only.
        """
        view = cls(timing, tz)
        view._load_places(session)
        view._start(now)
        open_ix = [i for i, st in enumerate(rows.get("stage", ())) if st in _OPEN_VALUES]
        view._fill_open([{k: [v[i] for i in open_ix] for k, v in rows.items()}] if open_ix else [])
        view._fill_facts(rows, rows)
        view.version = 1
        view._log_floor = 1
        view.loaded_at = now
        return view

    def _start(self, now: datetime) -> None:
        self._set_windows(_us(now))
        self._at = _us(now)
        self._off_now = self._offset(self._at)

    def _fill_open(self, chunks: Iterable[Mapping[str, list[Any]]]) -> None:
        n = 0
        for cols in chunks:
            k = len(cols["case_id"])
            if n + k > self._cap:
                self._grow(max(2 * self._cap, n + k))
            sl = slice(n, n + k)
            self._write(sl, self._records(cols))
            self._cid[sl] = cols["case_id"]
            self._slot.update(zip(cols["case_id"], range(n, n + k), strict=False))
            n += k
        self._n = n
        if n:
            sl = slice(0, n)
            over, soon, paused = self._status(sl)
            a = self._arrays
            a["overdue"][sl], a["soon"][sl], a["paused"][sl] = over, soon, paused
        self._recount_open()

    def _fill_facts(self, today: Mapping[str, list[Any]], month: Mapping[str, list[Any]]) -> None:
        for cid, rec in zip(today["case_id"], self._today_records(today), strict=False):
            if rec is not None:
                self._today[cid] = rec
        for cid, mrec in zip(month["case_id"], self._month_records(month), strict=False):
            if mrec is not None:
                self._month[cid] = mrec
        self._recount_facts()

    def _load_places(self, session: Session) -> None:
        self._scope_masks = {}
        regions: dict[int, tuple[str, str, int | None]] = {}
        district_ids: dict[int, str] = {}  # region id → code, of the districts
        for rid, code, name, level, parent in session.execute(
                select(Region.id, Region.code, Region.name, Region.level, Region.parent_id)):
            regions[rid] = (name, level, parent)
            if level == DISTRICT:
                district_ids[rid] = code
        self._districts = sorted((code, regions[rid][0]) for rid, code in district_ids.items())
        d_ix = {code: i for i, (code, _n) in enumerate(self._districts)}
        gdist: dict[int, int] = {}  # grid index → district index
        dist_of: dict[int | None, int] = {}  # community id → district index

        def district_of(community_id: int | None) -> int:
            if community_id not in dist_of:
                rid, hops, found = community_id, 0, -1
                while rid is not None and hops < 5:
                    if rid in district_ids:
                        found = d_ix[district_ids[rid]]
                        break
                    rid, hops = regions.get(rid, ("", "", None))[2], hops + 1
                dist_of[community_id] = found
            return dist_of[community_id]
        above: dict[int | None, tuple[str, str, str]] = {}  # community id → its names

        def names_of(community_id: int | None) -> tuple[str, str, str]:
            if community_id not in above:
                names = {"community": "", "street": "", "district": ""}
                rid, hops = community_id, 0
                while rid is not None and hops < 5:
                    name, level, parent = regions.get(rid, ("", "", None))
                    if level in names and not names[level]:
                        names[level] = name
                    rid, hops = parent, hops + 1
                above[community_id] = (names["community"], names["street"], names["district"])
            return above[community_id]

        for gid, code, community_id in session.execute(
                select(Grid.id, Grid.code, Grid.community_id).order_by(Grid.code)):
            if gid in self._gix:
                gdist[self._gix[gid]] = district_of(community_id)
                continue
            gdist[len(self._gcode)] = district_of(community_id)
            self._gix[gid] = len(self._gcode)
            self._gcode.append(code)
            self._gnames.append(names_of(community_id))
        n = len(self._gcode)
        self._gcodes = np.array(self._gcode, dtype=object)
        for m in GRID_METRICS:
            self._g[m] = np.concatenate([self._g[m], np.zeros(n - len(self._g[m]), dtype=np.int64)])
        self._grank = np.empty(n, dtype=np.int64)
        self._grank[np.argsort(self._gcodes, kind="stable")] = np.arange(n)
        self._gdist = np.full(n, -1, dtype=np.int32)
        if gdist:
            self._gdist[list(gdist)] = list(gdist.values())
        for uid, code, name in session.execute(select(Unit.id, Unit.code, Unit.name).order_by(Unit.code)):
            if uid in self._uix:
                continue
            self._uix[uid] = len(self._ucode)
            self._ucode.append(code)
            self._uname.append(name)
        nu = len(self._ucode)
        for m in self._u:
            self._u[m] = np.concatenate([self._u[m], np.zeros(nu - len(self._u[m]), dtype=np.int64)])

    def _set_windows(self, at: int) -> None:
        w = day_window(self.tz, _dt(at, UTC))
        self._day, self._day_lo, self._day_hi = w.day, _us(w.start), _us(w.end)
        self._keep_lo = self._day_lo - NEW_WINDOW // timedelta(microseconds=1)
        first = w.day.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
        self._month_lo = _us(datetime.combine(first, time.min, tzinfo=self.tz))
        self._month_hi = _us(datetime.combine(after, time.min, tzinfo=self.tz))

    def _offset(self, at: int) -> float:
        return float(self.timing.calendar.offsets(np.array([at], dtype=np.int64).view("datetime64[us]"))[0])

    # ---------------------------------------------------------------------------- rows
    def _grid_of(self, grid_id: int | None) -> int:
        if grid_id is None:
            return -1
        return self._gix.get(grid_id, -1)

    def _unit_of(self, unit_id: int | None) -> int:
        if unit_id is None:
            return -1
        return self._uix.get(unit_id, -1)

    def _class_of(self, kind: str | None, code: str | None) -> int:
        key = (kind, code)
        ix = self._cix.get(key)
        if ix is None:
            major, minor = "", code or ""
            classification = self.timing.classification
            if kind and code and classification is not None:
                try:
                    entry = classification.get(kind, code)
                except ValueError:
                    entry = None
                if entry is not None:
                    major, minor = entry.major_name, entry.minor_name
            ix = self._cix[key] = len(self._classes)
            self._classes.append((major, minor))
        return ix

    def _records(self, cols: Mapping[str, list[Any]]) -> dict[str, Any]:
        """Open-case columns as read from SQL → the slot arrays' values (same order)."""
        gix, uix, cix = self._gix, self._uix, self._cix
        return {
            "grid": [gix.get(g, -1) for g in cols["grid_id"]],
            "unit": [uix.get(u, -1) for u in cols["unit_id"]],
            "stage": [_STAGE_IX.get(v, -1) for v in cols["stage"]],
            "clock": [_CLOCK_IX.get(v, -1) for v in cols["clock_stage"]],
            "src": [v == "source" for v in cols["deadline_source"]],
            "cls": [cix[k] if k in cix else self._class_of(*k)
                    for k in zip(cols["kind"], cols["class_code"], strict=False)],
            "urgent": [v == _URGENT for v in cols["urgency"]],
            "chan": [_CHANNEL_IX.get(v, -1) for v in cols["source"]],
            "working": [v != _CALENDAR_UNIT for v in cols["limit_unit"]],
            "rework": [v or 0 for v in cols["rework_count"]],
            "ext": [v or 0 for v in cols["extension_count"]],
            "deadline": _ts(cols["deadline_at"]),
            "paused_at": _ts(cols["paused_at"]),
            "reported": _ts(cols["reported_at"]),
            "limit": [v or 0.0 for v in cols["limit_minutes"]],
            "live": True,
            "number": cols["number"],
            "description": cols["description"],
        }

    def _write(self, slots: np.ndarray | slice, rec: Mapping[str, Any]) -> None:
        """Store records in slots (status flags are computed by the caller)."""
        a = self._arrays
        for name in self._RECORD:
            a[name][slots] = rec[name]
        a["off_d"][slots] = self._offsets(a["deadline"][slots])
        if isinstance(slots, slice):
            self._number[slots] = rec["number"]
            self._desc[slots] = rec["description"]
        else:
            for s, number, desc in zip(slots.tolist(), rec["number"], rec["description"], strict=False):
                self._number[s], self._desc[s] = number, desc

    def _offsets(self, us: np.ndarray) -> np.ndarray:
        out = np.full(us.shape, np.nan)
        has = us != _NAT
        if has.any():
            out[has] = self.timing.calendar.offsets(us[has].view("datetime64[us]"))
        return out

    def _recount_open(self) -> None:
        a, n = self._arrays, self._n
        live = a["live"][:n]
        grid, unit, stage = a["grid"][:n], a["unit"][:n], a["stage"][:n]
        over = a["overdue"][:n] & live
        G, U = len(self._gcode), len(self._ucode)
        ing = live & (grid >= 0)
        self._g["open"] = np.bincount(grid[ing], minlength=G).astype(np.int64)
        self._g["overdue"] = np.bincount(grid[ing & over], minlength=G).astype(np.int64)
        self._stage_n = np.bincount(stage[live], minlength=len(_STAGES)).astype(np.int64)
        self._urgent_n = int(np.count_nonzero(a["urgent"][:n] & live))
        self._over_n = int(np.count_nonzero(over))
        self._soon_n = int(np.count_nonzero(a["soon"][:n] & live))
        inu = live & (unit >= 0)
        u = unit[inu]

        def per_unit(mask: np.ndarray) -> np.ndarray:
            return np.bincount(unit[inu & mask], minlength=U).astype(np.int64)

        self._u["open"] = np.bincount(u, minlength=U).astype(np.int64)
        self._u["pending"] = per_unit(np.isin(stage, list(_PENDING_IX)))
        self._u["feedback"] = per_unit(np.isin(stage, list(_FEEDBACK_IX)))
        self._u["overdue"] = per_unit(over & (a["clock"][:n] == _HANDLE_IX))
        self._u["rework"] = per_unit(a["rework"][:n] > 0)
        self._u["extension"] = per_unit(a["ext"][:n] > 0)

    def _today_records(
            self, cols: Mapping[str, list[Any]]) -> list[tuple[int, int, int, int, bool | None, int, int] | None]:
        """Today's facts of each row (None: no timestamp since the day's start − 1 h)."""
        reps, fils, diss, clos = (_ts(cols[k]).tolist() for k in ("f_reported", "f_filed", "f_dispatched", "f_closed"))
        out: list[tuple[int, int, int, int, bool | None, int, int] | None] = []
        keep, closed = self._keep_lo, Stage.CLOSED.value
        for stage, rep, fil, dis, clo, ok, g, u in zip(cols["stage"], reps, fils, diss, clos, cols["on_time_close"],
                                                       cols["grid_id"], cols["unit_id"], strict=False):
            if stage != closed:
                clo = _NAT
            if stage is None or max(rep, fil, dis, clo) < keep:
                out.append(None)
            else:
                out.append((rep, fil, dis, clo, ok, self._grid_of(g), self._unit_of(u)))
        return out

    def _month_records(self, cols: Mapping[str, list[Any]]) -> list[MonthFact | None]:
        """This month's 处置 on-time fact of each row (None: not handled this month or no flag)."""
        out: list[MonthFact | None] = []
        for stage, handled, ok, u, g in zip(cols["stage"], _ts(cols["f_handled"]).tolist(),
                                            cols["on_time_handle"], cols["unit_id"], cols["grid_id"], strict=False):
            if stage is None or ok is None or handled < self._month_lo:  # _NAT is below any bound
                out.append(None)
            else:
                out.append((handled, self._unit_of(u), bool(ok), self._grid_of(g)))
        return out

    def _fact_rows(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The columns of today's and this month's fact mirrors, rebuilt from the dicts first
        when stale (after a load, a new day, a restore)."""
        if self._facts_stale:
            today, month = list(self._today.values()), list(self._month.values())

            def column(facts: list[tuple[Any, ...]], i: int, dtype: Any = np.int64) -> np.ndarray:
                return np.fromiter(map(itemgetter(i), facts), dtype=dtype, count=len(facts))

            self._tf.rebuild(list(self._today), {
                "rep": column(today, 0), "fil": column(today, 1), "dis": column(today, 2), "clo": column(today, 3),
                "ok": np.fromiter((-1 if r[4] is None else r[4] for r in today), dtype=np.int8, count=len(today)),
                "grid": column(today, 5), "unit": column(today, 6)})
            handled, unit = column(month, 0), column(month, 1)
            self._mf.rebuild(list(self._month), {
                "unit": unit, "grid": column(month, 3), "ok": column(month, 2, bool),
                "on": (unit >= 0) & (handled >= self._month_lo) & (handled < self._month_hi)})
            self._facts_stale = False
        return self._tf.a, self._mf.a

    @staticmethod
    def _today_row(rec: tuple[int, int, int, int, bool | None, int, int] | None) -> dict[str, Any] | None:
        if rec is None:
            return None
        rep, fil, dis, clo, ok, g, u = rec
        return {"rep": rep, "fil": fil, "dis": dis, "clo": clo, "ok": -1 if ok is None else int(ok),
                "grid": g, "unit": u}

    def _month_row(self, fact: MonthFact | None) -> dict[str, Any] | None:
        if fact is None:
            return None
        handled, u, ok, g = fact
        return {"unit": u, "grid": g, "ok": ok, "on": u >= 0 and self._month_lo <= handled < self._month_hi}

    def _recount_facts(self) -> None:
        """Today's KPIs, units' today/month figures and the last-hour grid counts from the dicts."""
        lo, hi = self._day_lo, self._day_hi
        self._today = {cid: rec for cid, rec in self._today.items() if max(rec[:4]) >= self._keep_lo}
        closed_today = np.zeros(len(self._ucode), dtype=np.int64)
        for _rep, _fil, _dis, clo, _ok, _g, u in self._today.values():
            if lo <= clo < hi and u >= 0:
                closed_today[u] += 1
        self._kpi = _day_counts(self._today.values(), lo, hi)
        self._u["closed_today"] = closed_today
        self._month = {cid: rec for cid, rec in self._month.items() if rec[0] >= self._month_lo}
        ok_n = np.zeros(len(self._ucode), dtype=np.int64)
        flag_n = np.zeros(len(self._ucode), dtype=np.int64)
        for handled, u, ok, _g in self._month.values():
            if u >= 0 and handled < self._month_hi:
                flag_n[u] += 1
                ok_n[u] += ok
        self._u["month_ok"], self._u["month_flag"] = ok_n, flag_n
        self._facts_stale = True
        self._g["new_hour"] = self._hour_counts()

    def _hour_counts(self) -> np.ndarray:
        """Per-grid count of cases reported in (at − 1 h, at]; sets when that next changes."""
        at, span = self._at, NEW_WINDOW // timedelta(microseconds=1)
        counts = np.zeros(len(self._gcode), dtype=np.int64)
        nxt = _NAT
        for rep, _f, _d, _c, _ok, g, _u in self._today.values():
            if rep == _NAT:
                continue
            if rep > at:
                change = rep
            elif rep > at - span:
                change = rep + span
                if g >= 0:
                    counts[g] += 1
            else:
                continue
            nxt = change if nxt == _NAT else min(nxt, change)
        self._hour_next = nxt
        return counts

    # ---------------------------------------------------------------------------- clocks
    def _status(self, idx: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Overdue / due-soon / paused of the given slots at the view's instant.

        The formulas of :func:`dashboard.rules.deadlines.evaluate_arrays` (临期 by its
        :func:`~dashboard.rules.deadlines.due_soon_mask`); the deadline's working offset is
        stored per slot, the instant's is computed once.
        """
        a, at = self._arrays, self._at
        d = a["deadline"][idx]
        has = (d != _NAT) & a["live"][idx]
        p = a["paused_at"][idx]
        paused = has & (p != _NAT) & (p <= at)
        overdue = has & ~paused & (at > d)
        with np.errstate(invalid="ignore"):
            remaining = np.where(a["working"][idx], a["off_d"][idx] - self._off_now, (d - at) / 60_000_000)
            soon = has & due_soon_mask(remaining, a["limit"][idx], overdue, paused, self.timing.due_soon_ratio)
        return overdue, soon, paused

    # ---------------------------------------------------------------------------- changes
    def _shares(self, idx: np.ndarray, sign: int) -> None:
        """Add (+1) or take out (−1) these open slots' shares of every aggregate."""
        if not idx.size:
            return
        a = self._arrays
        g, u, stage = a["grid"][idx], a["unit"][idx], a["stage"][idx]
        over, soon = a["overdue"][idx], a["soon"][idx]
        np.add.at(self._stage_n, stage, sign)
        self._urgent_n += sign * int(np.count_nonzero(a["urgent"][idx]))
        self._over_n += sign * int(np.count_nonzero(over))
        self._soon_n += sign * int(np.count_nonzero(soon))
        ing = g >= 0
        np.add.at(self._g["open"], g[ing], sign)
        np.add.at(self._g["overdue"], g[ing & over], sign)
        inu = u >= 0
        U = self._u
        np.add.at(U["open"], u[inu], sign)
        np.add.at(U["pending"], u[inu & np.isin(stage, _PENDING_LIST)], sign)
        np.add.at(U["feedback"], u[inu & np.isin(stage, _FEEDBACK_LIST)], sign)
        np.add.at(U["overdue"], u[inu & over & (a["clock"][idx] == _HANDLE_IX)], sign)
        np.add.at(U["rework"], u[inu & (a["rework"][idx] > 0)], sign)
        np.add.at(U["extension"], u[inu & (a["ext"][idx] > 0)], sign)

    # What a slot's record is (its status flags and derived offset are not part of it).
    _RECORD = ("grid", "unit", "stage", "clock", "src", "cls", "chan", "urgent", "working", "rework", "ext",
               "deadline", "paused_at", "reported", "limit", "live")

    def _gather(self, idx: np.ndarray) -> list[tuple[Any, ...]]:
        """The records of these slots as comparable tuples."""
        a = self._arrays
        columns = [a[name][idx].tolist() for name in self._RECORD]
        columns.append([self._number[s] for s in idx.tolist()])
        columns.append([self._desc[s] for s in idx.tolist()])
        return list(zip(*columns, strict=False))

    def _today_add(self, rec: tuple[int, int, int, int, bool | None, int, int], sign: int) -> None:
        lo, hi, k = self._day_lo, self._day_hi, self._kpi
        rep, fil, dis, clo, ok, g, u = rec
        k["reported"] += sign * (lo <= rep < hi)
        k["filed"] += sign * (lo <= fil < hi)
        k["dispatched"] += sign * (lo <= dis < hi)
        if lo <= clo < hi:
            k["closed"] += sign
            if ok is not None:
                k["closed_flagged"] += sign
                k["closed_on_time"] += sign * bool(ok)
            if u >= 0:
                self._u["closed_today"][u] += sign
        span = NEW_WINDOW // timedelta(microseconds=1)
        if rep != _NAT:
            if self._at - span < rep <= self._at and g >= 0:
                self._g["new_hour"][g] += sign
            if sign > 0:  # when the last-hour window next changes because of this case
                change = rep if rep > self._at else (rep + span if rep > self._at - span else _NAT)
                if change != _NAT and (self._hour_next == _NAT or change < self._hour_next):
                    self._hour_next = change

    def _month_add(self, rec: MonthFact, sign: int) -> None:
        handled, u, ok, _g = rec
        if u >= 0 and self._month_lo <= handled < self._month_hi:
            self._u["month_flag"][u] += sign
            self._u["month_ok"][u] += sign * ok

    def _snapshot(self, grids: np.ndarray, units: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[Any, ...]]:
        """The figures of these grids (metric × grid) and units (figure × unit), and the totals."""
        g = np.stack([self._g[m][grids] for m in GRID_METRICS])
        u = np.stack([arr[units] for arr in self._u.values()])
        k = (tuple(self._kpi.values()), tuple(self._stage_n.tolist()), self._urgent_n, self._over_n, self._soon_n)
        return g, u, k

    def apply(self, session: Session, case_ids: Iterable[str], now: datetime,
              then: Callable[[], object] | None = None) -> Changes:
        """Re-read these cases' rows and update every figure (milliseconds for hundreds).

        The changed cases are evaluated at the view's instant (the last :meth:`tick`); ``now``
        is recorded as :attr:`last_change_at`. Returns the grids and units whose figures
        changed; bumps :attr:`version` when anything visible changed.

        ``then`` runs under the view's lock right after the change, before any reader or
        waiter sees the new version: the follower records the notice id there, so the
        version and the coordinate a reader takes together (under :meth:`consistent`) agree.
        """
        ids = sorted(set(case_ids))
        parts = [_fetch(session, _APPLY_SELECT, {"ids": ids[i:i + ID_CHUNK]}) for i in range(0, len(ids), ID_CHUNK)]
        cols: dict[str, list[Any]] = {k: sum((p[k] for p in parts), []) for k in parts[0]} if parts else {}
        with self._lock:
            if any((g is not None and g not in self._gix) for g in cols.get("grid_id", ())) or any(
                    (u is not None and u not in self._uix) for u in cols.get("unit_id", ())):
                self._load_places(session)  # grids or units imported after the view was loaded
            changes = self._apply(ids, cols, now)
            if then is not None:
                then()
            return changes

    def apply_rows(self, session: Session, case_ids: Iterable[str], rows: Mapping[str, list[Any]],
                   now: datetime) -> Changes:
        """:meth:`apply` with the cases' rows given (as :meth:`from_rows` takes them), not read from SQL.

        A case of ``case_ids`` missing from ``rows`` is one that does not exist (yet): it leaves
        the view. The replay catches a snapshot up with it (:mod:`dashboard.figures.timetravel`).
        """
        ids = sorted(set(case_ids))
        cols = {k: list(v) for k, v in rows.items()}
        with self._lock:
            if any((g is not None and g not in self._gix) for g in cols.get("grid_id", ())) or any(
                    (u is not None and u not in self._uix) for u in cols.get("unit_id", ())):
                self._load_places(session)
            return self._apply(ids, cols, now)

    def _apply(self, ids: list[str], cols: dict[str, list[Any]], now: datetime) -> Changes:
        a = self._arrays
        found = {cid: i for i, cid in enumerate(cols.get("case_id", ()))}
        rec = self._records(cols) if found else None
        # what this batch may touch, before: grids and units of the old and new records
        old_slots = [self._slot[cid] for cid in ids if cid in self._slot]
        old_idx = np.array(old_slots, dtype=np.int64)
        grids = set(a["grid"][old_idx].tolist())
        units = set(a["unit"][old_idx].tolist())
        for cid in ids:
            t, m = self._today.get(cid), self._month.get(cid)
            if t is not None:
                grids.add(t[5])
                units.add(t[6])
            if m is not None:
                units.add(m[1])
        if rec is not None:
            grids.update(rec["grid"])
            units.update(rec["unit"])
        g_idx = np.array(sorted(i for i in grids if i >= 0), dtype=np.int64)
        u_idx = np.array(sorted(i for i in units if i >= 0), dtype=np.int64)
        g_before, u_before, kpi_before = self._snapshot(g_idx, u_idx)
        old_records = dict(zip((self._cid[s] for s in old_slots), self._gather(old_idx), strict=False))
        # the open part: take the old shares out, store the new records, put their shares in
        self._shares(old_idx, -1)
        rows, slots = [], []
        for cid in ids:
            i = found.get(cid)
            is_open = i is not None and rec is not None and rec["stage"][i] in _OPEN_IX
            s = self._slot.get(cid)
            if is_open:
                rows.append(i)
                slots.append(s if s is not None else self._new_slot(cid))
            elif s is not None:
                self._free_slot(s)
        still = {self._cid[s] for s in slots}
        visible = any(cid not in still for cid in old_records)  # a case left the open ones
        if slots:
            assert rec is not None
            a = self._arrays  # _new_slot may have grown them
            idx = np.array(slots, dtype=np.int64)
            pick = np.array(rows, dtype=np.int64)
            self._write(idx, {k: v if isinstance(v, bool)
                              else (v[pick] if isinstance(v, np.ndarray) else [v[j] for j in rows])
                              for k, v in rec.items()})
            over, soon, paused = self._status(idx)
            a["overdue"][idx], a["soon"][idx], a["paused"][idx] = over, soon, paused
            self._shares(idx, +1)
            for slot_cid, new in zip((self._cid[s] for s in slots), self._gather(idx), strict=False):
                visible |= old_records.get(slot_cid) != new
        # today's and this month's facts
        today = self._today_records(cols) if found else []
        month = self._month_records(cols) if found else []
        for cid in ids:
            i = found.get(cid)
            visible |= self._apply_facts(cid, today[i] if i is not None else None,
                                         month[i] if i is not None else None)
        g_after, u_after, kpi_after = self._snapshot(g_idx, u_idx)
        g_diff = g_before != g_after  # metric × grid
        changed_grids = g_idx[g_diff.any(axis=0)]
        changed_units = u_idx[(u_before != u_after).any(axis=0)]
        visible |= bool(changed_grids.size or changed_units.size) or kpi_after != kpi_before
        per_metric = {m: frozenset(g_idx[g_diff[j]].tolist()) for j, m in enumerate(GRID_METRICS)}
        self.last_change_at = now
        if visible:
            self._bump(per_metric)
        return Changes(self.version, visible, frozenset(self._gcodes[changed_grids].tolist()),
                       frozenset(self._ucode[i] for i in changed_units.tolist()))

    def _new_slot(self, cid: str) -> int:
        if self._free:
            s = self._free.pop()
        else:
            if self._n >= self._cap:
                self._grow(self._cap * 2)
            s = self._n
            self._n += 1
        self._slot[cid] = s
        self._cid[s] = cid
        return s

    def _free_slot(self, s: int) -> None:
        a = self._arrays
        cid = self._cid[s]
        if cid is not None:
            del self._slot[cid]
        for name in ("live", "overdue", "soon", "paused"):
            a[name][s] = False
        a["grid"][s] = a["unit"][s] = -1
        a["deadline"][s] = _NAT
        self._cid[s] = self._number[s] = self._desc[s] = None
        self._free.append(s)

    def _apply_facts(self, cid: str, new_t: tuple[int, int, int, int, bool | None, int, int] | None,
                     new_m: MonthFact | None) -> bool:
        old_t = self._today.pop(cid, None)
        if old_t is not None:
            self._today_add(old_t, -1)
        if new_t is not None:
            self._today[cid] = new_t
            self._today_add(new_t, +1)
        old_m = self._month.pop(cid, None)
        if old_m is not None:
            self._month_add(old_m, -1)
        if new_m is not None:
            self._month[cid] = new_m
            self._month_add(new_m, +1)
        if not self._facts_stale:  # else rebuilt from the dicts when next read
            if old_t != new_t:
                self._tf.put(cid, self._today_row(new_t))
            if old_m != new_m:
                self._mf.put(cid, self._month_row(new_m))
        return old_t != new_t or old_m != new_m

    def _bump(self, grids: Mapping[str, frozenset[int]]) -> None:
        self.version += 1
        self._log.append((self.version, dict(grids)))
        self._cache.clear()
        self._changed.notify_all()

    def wait_changed(self, version: int, timeout: float) -> int:
        """The view's version once it differs from ``version``, or after ``timeout`` seconds.

        A pushed screen (``/wall/events``) holds one thread here between changes; the wait
        releases the lock, so readers and the follower are not held up.
        """
        with self._lock:
            self._changed.wait_for(lambda: self.version != version, timeout)
            return self.version

    def tick(self, now: datetime) -> Changes:
        """Move the view's instant to ``now``: clocks, local day and last-hour window.

        Vectorised over all open cases (milliseconds for a million). A case crossing its
        deadline becomes 超期 here, with no event. At local midnight today's figures restart
        (from the facts in memory: every case with a timestamp since the previous day's last
        hour is kept); at the first of a month the units' on-time rates do.
        """
        at = _us(now)
        with self._lock:
            self._at = at
            self._off_now = self._offset(at)
            grids: dict[str, set[int]] = {m: set() for m in GRID_METRICS}
            units: set[int] = set()
            visible = False
            # local day / month
            if not (self._day_lo <= at < self._day_hi):
                old_hour = self._g["new_hour"].copy()
                old_u = {m: self._u[m].copy() for m in ("closed_today", "month_ok", "month_flag")}
                self._set_windows(at)
                self._recount_facts()
                grids["new_hour"] |= set(np.flatnonzero(old_hour != self._g["new_hour"]).tolist())
                for m, arr in old_u.items():
                    units |= set(np.flatnonzero(arr != self._u[m]).tolist())
                visible = True
            elif self._hour_next != _NAT and at >= self._hour_next:
                old_hour = self._g["new_hour"]
                new_hour = self._hour_counts()
                diff = np.flatnonzero(old_hour != new_hour)
                self._g["new_hour"] = new_hour
                if diff.size:
                    grids["new_hour"] |= set(diff.tolist())
                    visible = True
            # clocks
            n = self._n
            if n:
                a = self._arrays
                over, soon, paused = self._status(slice(0, n))
                flips = np.flatnonzero(over != a["overdue"][:n])
                soon_changed = bool(np.any(soon != a["soon"][:n]))
                a["paused"][:n] = paused
                if flips.size or soon_changed:
                    visible = True
                    a["soon"][:n] = soon
                    self._soon_n = int(np.count_nonzero(soon))
                if flips.size:
                    sign = np.where(over[flips], 1, -1).astype(np.int64)
                    a["overdue"][:n] = over
                    self._over_n += int(sign.sum())
                    g = a["grid"][flips]
                    ing = g >= 0
                    touched = np.unique(g[ing])
                    before = self._g["overdue"][touched]
                    np.add.at(self._g["overdue"], g[ing], sign[ing])
                    grids["overdue"] |= set(touched[before != self._g["overdue"][touched]].tolist())
                    u = a["unit"][flips]
                    inu = (u >= 0) & (a["clock"][flips] == _HANDLE_IX)
                    touched = np.unique(u[inu])
                    before = self._u["overdue"][touched]
                    np.add.at(self._u["overdue"], u[inu], sign[inu])
                    units |= set(touched[before != self._u["overdue"][touched]].tolist())
            if visible:
                self._bump({m: frozenset(v) for m, v in grids.items()})
            else:  # the queue's minutes moved with the instant
                self._cache = {k: v for k, v in self._cache.items() if k[0] not in _PER_INSTANT}
            all_grids = set().union(*grids.values())
            return Changes(self.version, visible, frozenset(self._gcode[i] for i in all_grids),
                           frozenset(self._ucode[i] for i in units))

    # ---------------------------------------------------------------------------- reads
    @property
    def as_of(self) -> datetime:
        """The view's instant: the last load or tick."""
        return _dt(self._at, self.tz)

    @property
    def open_cases(self) -> int:
        return len(self._slot)

    def kpis(self) -> Kpis:
        with self._lock:
            k = self._kpi
            flagged = k["closed_flagged"]
            return Kpis(
                day=self._day,
                reported=k["reported"], filed=k["filed"], dispatched=k["dispatched"],
                disposing=int(self._stage_n[_DISPOSING_IX].sum()),
                closed=k["closed"], closed_on_time=k["closed_on_time"], closed_flagged=flagged,
                on_time_close_rate=k["closed_on_time"] / flagged if flagged else None,
                overdue=self._over_n, due_soon=self._soon_n, urgent=self._urgent_n,
                open=int(self._stage_n.sum()),
            )

    def stage_counts(self) -> list[StageCount]:
        with self._lock:
            return [StageCount(s, s.label, int(self._stage_n[_STAGE_IX[s.value]])) for s in OPEN_STAGES]

    def grid_values(self, metric: str) -> dict[str, int]:
        """grid code → value of ``metric`` ("open", "new_hour", "overdue"), non-zero grids only."""
        values = self._metric(metric)
        with self._lock:
            key = ("values", metric)
            cached = self._cache.get(key)
            if cached is None:
                nz = np.flatnonzero(values)
                cached = self._cache[key] = dict(zip(self._gcodes[nz].tolist(), values[nz].tolist(), strict=False))
            return dict(cached)

    def grid_values_of(self, metric: str, codes: Iterable[str]) -> dict[str, int]:
        """The value of ``metric`` for each of ``codes`` (0 for a code the view does not know).

        What a grid delta needs: a few cells, without :meth:`grid_values`' dict of every
        non-zero grid (93,000 entries copied per update at 100,000 grids)."""
        values = self._metric(metric)
        with self._lock:
            if self._code_ix_of is not self._gcode or len(self._code_ix) != len(self._gcode):
                self._code_ix = {c: i for i, c in enumerate(self._gcode)}
                self._code_ix_of = self._gcode
            ix = self._code_ix
            return {c: int(values[ix[c]]) if c in ix else 0 for c in codes}

    def grid_changes_since(self, version: int, metric: str) -> dict[str, int] | None:
        """Grids whose ``metric`` changed after ``version``, with their values now (0 included).

        ``{}`` when ``version`` is current; None when it is too old (more than
        CHANGELOG_VERSIONS ago, or before a reload) or unknown: then redraw from
        :meth:`grid_values`.
        """
        values = self._metric(metric)
        with self._lock:
            if version == self.version:
                return {}
            if version > self.version or version < self._log_floor:
                return None
            if not self._log or self._log[0][0] > version + 1:
                return None
            changed: set[int] = set()
            for v, grids in self._log:
                if v > version:
                    changed |= grids.get(metric, frozenset())
            return {self._gcode[i]: int(values[i]) for i in sorted(changed)}

    def _metric(self, metric: str) -> np.ndarray:
        if metric not in GRID_METRICS:
            raise ValueError(f"unknown grid metric {metric!r}; one of {', '.join(GRID_METRICS)}")
        return self._g[metric]

    def hot_spots(self, metric: str, n: int = 10) -> list[HotSpot]:
        """The ``n`` grids with the highest non-zero ``metric``; ties by grid code."""
        with self._lock:
            values = self._metric(metric)
            key = ("hot", metric, n)
            if key not in self._cache:
                self._cache[key] = self._top(values, np.flatnonzero(values), n)
            return list(self._cache[key])

    def _top(self, values: np.ndarray, nz: np.ndarray, n: int) -> list[HotSpot]:
        """The ``n`` grids of ``nz`` (grid indexes with a non-zero value) with the highest value;
        ties by grid code."""
        if nz.size > n:
            kth = np.partition(values[nz], nz.size - n)[nz.size - n]
            nz = nz[values[nz] >= kth]
        order = nz[np.lexsort((self._grank[nz], -values[nz]))][:n]
        spots = []
        for i in order:
            community, street, district = self._gnames[i]
            spots.append(HotSpot(self._gcode[i], community, street, district, int(values[i])))
        return spots

    def overdue_queue(self, limit: int = 50, due_soon_limit: int | None = None) -> OverdueQueue:
        """Overdue cases (most overdue first) and due-soon cases at the view's instant."""
        due_soon_limit = limit if due_soon_limit is None else due_soon_limit
        with self._lock:
            key = ("queue", limit, due_soon_limit)
            if key in self._cache:
                hit: OverdueQueue = self._cache[key]
                return hit
            a, n = self._arrays, self._n
            result = self._queue(np.flatnonzero(a["overdue"][:n]), np.flatnonzero(a["soon"][:n]),
                                 limit, due_soon_limit)
            self._cache[key] = result
            return result

    def _queue(self, over: np.ndarray, soon: np.ndarray, limit: int, due_soon_limit: int) -> OverdueQueue:
        """The queue of these overdue and due-soon slots (a due-soon slot is never overdue)."""
        return OverdueQueue(
            at=self.as_of, overdue_total=int(over.size), due_soon_total=int(soon.size),
            overdue=tuple(self._row(s) for s in self._first(over, limit)),
            due_soon=tuple(self._row(s) for s in self._first(soon, due_soon_limit)))

    def _first(self, idx: np.ndarray, limit: int) -> list[int]:
        """Up to ``limit`` slots by (deadline, case_id)."""
        if limit <= 0 or not idx.size:
            return []
        d = self._arrays["deadline"][idx]
        if idx.size > limit:
            kth = np.partition(d, limit - 1)[limit - 1]
            keep = d <= kth
            idx, d = idx[keep], d[keep]
        order = sorted(range(idx.size), key=lambda j: (d[j], self._cid[idx[j]]))
        return [int(idx[j]) for j in order[:limit]]

    def _row(self, s: int) -> QueueRow:
        a = self._arrays
        g, u = int(a["grid"][s]), int(a["unit"][s])
        stage = _STAGES[a["stage"][s]]
        clock = _CLOCKS[a["clock"][s]] if a["clock"][s] >= 0 else ""
        d = int(a["deadline"][s])
        working = bool(a["working"][s])
        overdue = bool(a["overdue"][s])
        cal = (d - self._at) / 60_000_000
        off = float(a["off_d"][s]) - self._off_now
        major, minor = self._classes[a["cls"][s]]
        community, street, district = self._gnames[g] if g >= 0 else ("", "", "")
        return QueueRow(
            case_id=self._cid[s] or "", number=self._number[s], description=self._desc[s],
            major_name=major, minor_name=minor,
            grid_code=self._gcode[g] if g >= 0 else "", community=community, street=street, district=district,
            unit_code=self._ucode[u] if u >= 0 else "", unit_name=self._uname[u] if u >= 0 else "",
            stage=stage, stage_label=stage.label, clock_stage=clock, clock_label=CLOCK_STAGES.get(clock, ""),
            deadline_at=_dt(d, self.tz), deadline_source=_SOURCES[a["src"][s]], working=working,
            overdue=overdue,
            overdue_work_minutes=-off if overdue else 0.0,
            overdue_calendar_minutes=-cal if overdue else 0.0,
            remaining_minutes=off if working else cal,
            urgent=bool(a["urgent"][s]), rework_count=int(a["rework"][s]), extension_count=int(a["ext"][s]),
        )

    def open_rows(self, case_ids: Sequence[str], grid_ids: frozenset[int] | None, limit: int,
                  ) -> tuple[list[QueueRow], int]:
        """Queue rows of the cases among ``case_ids`` (kept in that order) that are open and not
        overdue at the view's instant, inside the scope of ``grid_ids`` (None: the city, gridless
        cases too): the first ``limit``, and how many qualify. The wall's 临期高风险 section: the
        ids come riskiest first from the last scoring, the view says which still belong."""
        with self._lock:
            a, n = self._arrays, self._n
            inside = self._in_scope(grid_ids) & ~a["overdue"][:n]
            out: list[QueueRow] = []
            total = 0
            for cid in case_ids:
                s = self._slot.get(cid)
                if s is None or s >= n or not inside[s]:
                    continue
                total += 1
                if len(out) < limit:
                    out.append(self._row(s))
            return out, total

    # ---------------------------------------------------------------------------- scoped reads
    def _grid_mask(self, grid_ids: frozenset[int]) -> np.ndarray:
        """Per grid index: is it one of ``grid_ids`` (a region scope's grids)."""
        mask = self._scope_masks.get(grid_ids)
        if mask is None:
            mask = np.zeros(len(self._gcode), dtype=bool)
            mask[[self._gix[g] for g in grid_ids if g in self._gix]] = True
            if len(self._scope_masks) >= SCOPE_MASKS:  # a hall has a few dozen scopes
                self._scope_masks.clear()
            self._scope_masks[grid_ids] = mask
        return mask

    def _in_scope(self, grid_ids: frozenset[int] | None) -> np.ndarray:
        """Per slot (up to the high-water mark): an open case inside the scope. ``None`` is
        the city, gridless cases included; a region scope holds only cases on its grids."""
        a, n = self._arrays, self._n
        live = a["live"][:n]
        if grid_ids is None:
            return live
        grid = a["grid"][:n]
        mask = self._grid_mask(grid_ids)
        if not mask.any():  # no grid of the scope is known (none imported yet): nothing inside
            return np.zeros(n, dtype=bool)
        inside: np.ndarray = live & (grid >= 0) & mask[np.maximum(grid, 0)]
        return inside

    def source_counts(self, grid_ids: frozenset[int] | None = None) -> list[tuple[Source, int]]:
        """Open cases (在办) by the channel they came in through (来源), every source in the
        vocabulary's order; of the cases on ``grid_ids`` (None: the city, unlocated cases too).
        A case whose source was never given is in none."""
        with self._lock:
            key = ("sources", grid_ids)
            if key not in self._cache:
                chan = self._arrays["chan"][:self._n][self._in_scope(grid_ids)]
                counts = np.bincount(chan[chan >= 0], minlength=len(_CHANNELS))
                self._cache[key] = tuple((source, int(counts[i])) for i, source in enumerate(_CHANNELS))
            return list(self._cache[key])

    def scoped_kpis(self, grid_ids: frozenset[int] | None) -> tuple[Kpis, list[StageCount]]:
        """:meth:`kpis` and :meth:`stage_counts` of the cases on ``grid_ids`` (None: the city).

        The read API's summary of a region (``dashboard.figures.livereads``): the same
        definitions as the SQL path (``readapi.summary``), from memory."""
        if grid_ids is None:
            with self._lock:
                return self.kpis(), self.stage_counts()
        with self._lock:
            key = ("scope-kpis", grid_ids)
            if key not in self._cache:
                a, n = self._arrays, self._n
                inside = self._in_scope(grid_ids)
                stage_n = np.bincount(a["stage"][:n][inside], minlength=len(_STAGES))
                k = self._day_counts_of(self._today_on(self._grid_mask(grid_ids)))
                flagged = k["closed_flagged"]
                kpis = Kpis(
                    day=self._day, reported=k["reported"], filed=k["filed"], dispatched=k["dispatched"],
                    disposing=int(stage_n[_DISPOSING_IX].sum()),
                    closed=k["closed"], closed_on_time=k["closed_on_time"], closed_flagged=flagged,
                    on_time_close_rate=k["closed_on_time"] / flagged if flagged else None,
                    overdue=int(np.count_nonzero(a["overdue"][:n] & inside)),
                    due_soon=int(np.count_nonzero(a["soon"][:n] & inside)),
                    urgent=int(np.count_nonzero(a["urgent"][:n] & inside)), open=int(stage_n.sum()),
                )
                stages = [StageCount(s, s.label, int(stage_n[_STAGE_IX[s.value]])) for s in OPEN_STAGES]
                self._cache[key] = (kpis, stages)
            kpis, stages = self._cache[key]
            return kpis, list(stages)

    def _today_on(self, grid_mask: np.ndarray) -> np.ndarray:
        """Per row of today's fact mirror: a fact of a case located on these grids."""
        g = self._fact_rows()[0]["grid"]
        on = g >= 0
        on[on] = grid_mask[g[on]]
        return on

    def _day_in(self, column: str) -> np.ndarray:
        """Per row of today's fact mirror: its ``column`` timestamp lies in today."""
        t = self._fact_rows()[0][column]
        inside: np.ndarray = (t >= self._day_lo) & (t < self._day_hi)
        return inside

    def _day_counts_of(self, rows: np.ndarray) -> dict[str, int]:
        """:func:`_day_counts` of these rows of today's fact mirror, vectorised."""
        closed = self._day_in("clo") & rows
        ok = self._fact_rows()[0]["ok"]
        return dict(
            reported=int(np.count_nonzero(self._day_in("rep") & rows)),
            filed=int(np.count_nonzero(self._day_in("fil") & rows)),
            dispatched=int(np.count_nonzero(self._day_in("dis") & rows)),
            closed=int(np.count_nonzero(closed)), closed_on_time=int(np.count_nonzero(closed & (ok == 1))),
            closed_flagged=int(np.count_nonzero(closed & (ok >= 0))))

    def scoped_grids(self, grid_ids: frozenset[int] | None, *, include_idle: bool = False,
                     ) -> list[tuple[str, str, str, str, int, int, int]]:
        """Per grid on ``grid_ids`` (None: every grid): (code, community, street, district, 在办,
        超期, 近1小时新增), busiest first (open, overdue, new descending), ties by code; grids
        with all three 0 only with ``include_idle``. The rows of ``readapi.grids``."""
        with self._lock:
            key = ("scope-grids", grid_ids, include_idle)
            if key not in self._cache:
                g = self._g
                opened, over, new = g["open"], g["overdue"], g["new_hour"]
                pick = np.ones(len(self._gcode), dtype=bool) if grid_ids is None else self._grid_mask(grid_ids)
                if not include_idle:
                    pick = pick & ((opened > 0) | (over > 0) | (new > 0))
                idx = np.flatnonzero(pick)
                idx = idx[np.lexsort((self._grank[idx], -new[idx], -over[idx], -opened[idx]))]
                self._cache[key] = [(self._gcode[i], *self._gnames[i], int(opened[i]), int(over[i]), int(new[i]))
                                    for i in idx.tolist()]
            return list(self._cache[key])

    def scoped_queue(self, grid_ids: frozenset[int] | None, limit: int, offset: int = 0) -> ScopedQueue:
        """The overdue cases on ``grid_ids`` (None: the city), most overdue (earliest deadline)
        first, then the due-soon ones, earliest deadline first, ties by case id; one page of
        that list (``offset``, ``limit``) and the totals. The order of ``readapi.overdue``."""
        with self._lock:
            key = ("queue", "scoped", grid_ids, limit, offset)  # "queue": dropped at every tick
            if key not in self._cache:
                a, n = self._arrays, self._n
                inside = self._in_scope(grid_ids)
                over = np.flatnonzero(a["overdue"][:n] & inside)
                soon = np.flatnonzero(a["soon"][:n] & inside & ~a["overdue"][:n])
                end = offset + limit
                slots = self._first(over, end)
                if len(slots) < end:
                    slots += self._first(soon, end - len(slots))
                rows = tuple(self._row(s) for s in slots[offset:end])
                self._cache[key] = ScopedQueue(self.as_of, int(over.size), int(soon.size), rows)
            hit: ScopedQueue = self._cache[key]
            return hit

    def scoped_hot_spots(self, grid_ids: frozenset[int] | None, metric: str, n: int = 10) -> list[HotSpot]:
        """:meth:`hot_spots` among the grids of ``grid_ids`` (None: every grid): the region's
        ``n`` grids with the highest non-zero ``metric``, ties by grid code."""
        if grid_ids is None:
            return self.hot_spots(metric, n)
        with self._lock:
            values = self._metric(metric)
            key = ("scope-hot", grid_ids, metric, n)
            if key not in self._cache:
                self._cache[key] = self._top(values, np.flatnonzero(self._grid_mask(grid_ids) & (values != 0)), n)
            return list(self._cache[key])

    def scoped_overdue_queue(self, grid_ids: frozenset[int] | None, limit: int = 50,
                             due_soon_limit: int | None = None) -> OverdueQueue:
        """:meth:`overdue_queue` of the open cases on ``grid_ids`` (None: the city, gridless
        cases included): the same type, order and totals, for a district's wall."""
        if grid_ids is None:
            return self.overdue_queue(limit, due_soon_limit)
        due_soon_limit = limit if due_soon_limit is None else due_soon_limit
        with self._lock:
            key = ("queue", "region", grid_ids, limit, due_soon_limit)  # "queue": dropped at every tick
            if key not in self._cache:
                a, n = self._arrays, self._n
                inside = self._in_scope(grid_ids)
                self._cache[key] = self._queue(np.flatnonzero(a["overdue"][:n] & inside),
                                               np.flatnonzero(a["soon"][:n] & inside), limit, due_soon_limit)
            hit: OverdueQueue = self._cache[key]
            return hit

    def scoped_unit_board(self, grid_ids: frozenset[int] | None) -> list[UnitRow]:
        """The unit board of a region: the units working in it, counted on its cases only.

        A unit is on it when any of its figures counts a case located on ``grid_ids`` (an open
        case, a 结案 of today, a 处置 of this month with an on-time flag); every column counts
        only those cases, with :class:`UnitRow`'s definitions, order and colours. The smoothing
        prior is the **region's** own 按期处置率 this month (1 without data), as
        ``readapi.units`` of the region's scope has it: a district's board ranks its units
        against its own level. None: :meth:`unit_board` (the city's, prior the city's).

        Cost: numpy masks and bincounts over the open slots and the mirrors of today's and
        this month's facts (no loop over cases).
        """
        if grid_ids is None:
            return self.unit_board()
        with self._lock:
            key = ("scope-units", grid_ids)
            if key not in self._cache:
                figures = {k: v.tolist() for k, v in self._scoped_unit_figures(grid_ids).items()}
                self._cache[key] = self._unit_rows(figures, include_idle=False)
            return list(self._cache[key])

    def _scoped_unit_figures(self, grid_ids: frozenset[int]) -> dict[str, np.ndarray]:
        """Per unit index: the board's figures of the cases on ``grid_ids`` (the ``_u`` arrays' names)."""
        a, n, U = self._arrays, self._n, len(self._ucode)
        idx = np.flatnonzero(self._in_scope(grid_ids) & (a["unit"][:n] >= 0))
        unit, stage = a["unit"][idx], a["stage"][idx]

        def per(mask: np.ndarray | None = None) -> np.ndarray:
            return np.bincount(unit if mask is None else unit[mask], minlength=U).astype(np.int64)

        out = {
            "open": per(), "pending": per(np.isin(stage, _PENDING_LIST)),
            "feedback": per(np.isin(stage, _FEEDBACK_LIST)),
            "overdue": per(a["overdue"][idx] & (a["clock"][idx] == _HANDLE_IX)),
            "rework": per(a["rework"][idx] > 0), "extension": per(a["ext"][idx] > 0),
        }
        mask = self._grid_mask(grid_ids)
        t, m = self._fact_rows()
        closed = self._today_on(mask) & self._day_in("clo") & (t["unit"] >= 0)
        out["closed_today"] = np.bincount(t["unit"][closed], minlength=U).astype(np.int64)
        on = m["on"] & (m["grid"] >= 0)
        on[on] = mask[m["grid"][on]]
        out["month_flag"] = np.bincount(m["unit"][on], minlength=U).astype(np.int64)
        out["month_ok"] = np.bincount(m["unit"][on & m["ok"]], minlength=U).astype(np.int64)
        return out

    def district_rows(self) -> list[DistrictRow]:
        """各区对比: one row per district (every region of level district, in code order) at the
        view's instant; definitions in :class:`~dashboard.figures.districts.DistrictRow`.

        Cases without a grid, or on a grid under no district, are in no row. Cost: bincounts
        over the open slots and today's fact mirror. Cached until the next tick (the trend's
        hours move with the instant).
        """
        with self._lock:
            key = ("districts",)
            if key not in self._cache:
                self._cache[key] = self._district_rows()
            return list(self._cache[key])

    def _district_rows(self) -> list[DistrictRow]:
        D = len(self._districts)
        if not D:
            return []
        a, n, gdist = self._arrays, self._n, self._gdist
        grid = a["grid"][:n]
        idx = np.flatnonzero(a["live"][:n] & (grid >= 0))
        d = gdist[grid[idx]]
        keep = d >= 0
        idx, d = idx[keep], d[keep]

        def per(mask: np.ndarray | None = None) -> list[int]:
            counts: list[int] = np.bincount(d if mask is None else d[mask], minlength=D).tolist()
            return counts

        opened, over, soon, urgent = per(), per(a["overdue"][idx]), per(a["soon"][idx]), per(a["urgent"][idx])
        placed = gdist >= 0
        new_hour = np.bincount(gdist[placed], weights=self._g["new_hour"][placed], minlength=D)
        # today's flow, over today's fact mirror
        lo, at = self._day_lo, self._at
        hour_us = HOUR // timedelta(microseconds=1)
        hours = (at - lo) // hour_us + 1
        t = self._fact_rows()[0]
        tg = t["grid"]
        td = np.full(tg.size, -1, dtype=np.int64)
        placed_t = tg >= 0
        td[placed_t] = gdist[tg[placed_t]]
        placed_t = td >= 0

        def day_per(rows: np.ndarray) -> list[int]:
            counts: list[int] = np.bincount(td[rows & placed_t], minlength=D).tolist()
            return counts

        closed_rows = self._day_in("clo")
        reported, closed = day_per(self._day_in("rep")), day_per(closed_rows)
        flagged, on_time = day_per(closed_rows & (t["ok"] >= 0)), day_per(closed_rows & (t["ok"] == 1))
        so_far = placed_t & (t["rep"] >= lo) & (t["rep"] <= at)
        buckets = td[so_far] * hours + (t["rep"][so_far] - lo) // hour_us
        hourly = np.bincount(buckets, minlength=D * hours).reshape(D, hours).tolist()
        elapsed = timedelta(microseconds=at - lo)
        rows = []
        for i, (code, name) in enumerate(self._districts):
            mean = hourly_mean(sum(hourly[i]), elapsed)
            nh = int(new_hour[i])
            rows.append(DistrictRow(
                code=code, name=name, open=opened[i], overdue=over[i], due_soon=soon[i], urgent=urgent[i],
                reported=reported[i], closed=closed[i], closed_on_time=on_time[i], closed_flagged=flagged[i],
                on_time_close_rate=on_time[i] / flagged[i] if flagged[i] else None,
                new_hour=nh, hourly_mean=mean, trend=trend_of(nh, mean), hourly=tuple(hourly[i])))
        return rows

    def unit_board(self, *, include_idle: bool = False) -> list[UnitRow]:
        """One row per unit, worst first.

        Order: 超期 descending; then the smoothed 按期处置率 ascending (see :class:`UnitRow`:
        a unit's month rate pulled toward the city's with the weight of PRIOR_CASES cases, so
        a unit with few handled cases cannot top or tail the board on a ratio alone); then
        load (待处置 + 已反馈) descending; then unit code.
        """
        with self._lock:
            key = ("units", include_idle)
            if key not in self._cache:
                self._cache[key] = self._unit_board(include_idle)
            return list(self._cache[key])

    def _unit_board(self, include_idle: bool) -> list[UnitRow]:
        return self._unit_rows({m: arr.tolist() for m, arr in self._u.items()}, include_idle)

    def _unit_rows(self, U: Mapping[str, list[int]], include_idle: bool) -> list[UnitRow]:
        """The board's rows from per-unit figures (the city's, or a region's); the smoothing
        prior is the rate of these figures' month totals (the city's, or the region's)."""
        total_flag = sum(U["month_flag"])
        city = sum(U["month_ok"]) / total_flag if total_flag else 1.0
        rows = []
        for i, code in enumerate(self._ucode):
            pending, feedback, overdue = U["pending"][i], U["feedback"][i], U["overdue"][i]
            flag, ok = U["month_flag"][i], U["month_ok"][i]
            busy = U["open"][i] or U["closed_today"][i] or flag
            if not busy and not include_idle:
                continue
            rate = ok / flag if flag else None
            smoothed = (ok + PRIOR_CASES * city) / (flag + PRIOR_CASES)
            rows.append(UnitRow(
                code=code, name=self._uname[i], pending=pending, feedback=feedback, overdue=overdue,
                closed_today=U["closed_today"][i], handled_month=flag, on_time_month=ok,
                on_time_rate=rate, smoothed_rate=smoothed, rework=U["rework"][i], extension=U["extension"][i],
                levels=unit_levels(pending, overdue, rate, smoothed, U["rework"][i], U["extension"][i], U["open"][i]),
            ))
        rows.sort(key=lambda r: (-r.overdue, r.smoothed_rate, -(r.pending + r.feedback), r.code))
        return rows


def reference_fingerprint(session: Session) -> str:
    """What a saved view depends on in SQL besides the cases: schema revision, grids, units, regions.

    Their counts and highest ids (a city import adds or replaces rows) and the Alembic
    revision, as a short hash. A snapshot taken under another fingerprint is not used.
    """
    revision: list[str] = []
    if inspect(session.connection()).has_table("alembic_version"):  # not there after a test's create_all
        revision = sorted(session.execute(text("SELECT version_num FROM alembic_version")).scalars())
    parts: list[Any] = [revision]
    for model in (Grid, Unit, Region):
        parts.append(session.execute(select(func.count(), func.max(model.id))).one()[:])
    return hashlib.blake2b(repr(parts).encode(), digest_size=10).hexdigest()
