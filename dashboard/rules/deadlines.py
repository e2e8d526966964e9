"""Stage clocks, deadlines, overdue and on-time flags (docs/lifecycle.md). Pure functions, no I/O.

A case has at most one running clock, the one of the stage it waits for (the lifecycle keeps
which, since when, and its 挂账/延期 adjustments: :class:`dashboard.rules.lifecycle.CaseState`):

=========  ==========================================  =================================
clock      starts at                                   finished by
=========  ==========================================  =================================
verify 核实  上报 (not for a supervisor's own report)      核实, 立案, 不予立案
file 立案    上报 (supervisor) or 核实                      立案, 不予立案
dispatch 派遣 立案; restarted at a 回退                       派遣
handle 处置  派遣 (also a re-dispatch); restarted at 返工      处置反馈
check 核查   处置反馈                                     核查通过, 返工, 结案
close 结案   核查通过, or 自处理                              结案
=========  ==========================================  =================================

The deadline of a clock is its start plus the limit of the most specific row of the limits
table (:mod:`dashboard.rules.limits`), counted in working time (工作时/工作日, through the
:class:`~dashboard.rules.workcalendar.WorkCalendar`) or calendar time (自然时). For the 处置 clock a
deadline carried by a source event (``deadline_at``, e.g. a hotline's 办理时限) replaces the
table's (``source="source"``); only ``reported`` and ``updated`` set it
(:data:`dashboard.rules.lifecycle.SETS_SOURCE_DEADLINE`). Then, in time order: an approved 延期 sets the deadline to the
event's ``deadline_at`` when it carries one, else adds one more full limit (a 延期申请 or 驳回
changes nothing); a 挂账 that began
before the deadline moves it by the working (or, for a 自然时 clock, calendar) time between
挂账 and 挂账恢复; while a case is 挂账 its clock stands still (never overdue, never due soon,
remaining time frozen at the moment it stopped).

At an instant T a running clock is **overdue** when T is past its deadline; **remaining** is
the working (or calendar) minutes from T to the deadline, ≤ 0 once overdue; **due soon** when
not overdue and remaining < ``due_soon_ratio`` × the limit in force (the first limit plus
what approved 延期 added: :attr:`Clock.limit_minutes`). A clock finished at or before its
deadline is **on time**; a stage finished several times (re-dispatch, rework) is on time only
if every finish was.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from dashboard.rules.classification import Classification
from dashboard.rules.lifecycle import (
    FINISHES_CLOCK,
    CaseState,
    LifecycleEvent,
    Stage,
    as_datetime,
    fold_into,
)
from dashboard.rules.limits import STAGES, LimitRow, LimitTable, load_limits
from dashboard.rules.workcalendar import WorkCalendar

if TYPE_CHECKING:
    from dashboard.settings import Settings

log = logging.getLogger(__name__)

# Stored names of the on-time flags (columns of ``cases``) and their labels.
ON_TIME_COLUMNS: dict[str, str] = {stage: f"on_time_{stage}" for stage in STAGES}
ON_TIME_LABELS: dict[str, str] = {stage: f"按时{name}" for stage, name in STAGES.items()}
# Which lifecycle stage waits on which clock (for labels: the stage a case is in).
CLOCK_LABELS = STAGES
CALENDAR_UNIT = "calendar_hours"
_US = np.timedelta64(1, "us")
_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


@dataclass
class Timing:
    """Everything a deadline needs besides the case: limits, calendar, classes, grids."""

    limits: LimitTable
    calendar: WorkCalendar
    classification: Classification | None = None
    area_classes: Mapping[str, str] = field(default_factory=dict)  # grid code → A/B/C
    due_soon_ratio: float = 0.2
    _classes: dict[tuple[str, str], tuple[str | None, bool | None]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, classification: Classification | None = None) -> Timing:
        """A deployment's timing, all read from ``settings``: the one place it is put together.

        The classification scheme with the city's extension file (``Classification.from_settings``),
        the limits table (GRIDHALL_LIMITS_FILE or the scheme's default), the working calendar (time
        zone, working periods, holiday file) and the due-soon ratio. ``classification`` is for a
        caller that already holds the settings' scheme (the ingest's Reference checks codes against
        that same object). The grids' area classes are the store's to add
        (``dashboard.store.reference.timing_for``).

        Raises ClassificationError, LimitsError or HolidayFileError: one line naming the setting.
        """
        scheme = classification if classification is not None else Classification.from_settings(settings)
        return cls(
            limits=load_limits(scheme, settings.limits_file),
            calendar=WorkCalendar.from_settings(settings),
            classification=scheme,
            due_soon_ratio=settings.due_soon_ratio,
        )

    def row_for(self, clock: str, values: Mapping[str, Any]) -> LimitRow:
        kind = values.get("kind")
        minor = values.get("class_code")
        major, safety = None, None
        if kind and minor and self.classification is not None:
            key = (kind, minor)
            if key in self._classes:
                major, safety = self._classes[key]
            else:
                try:
                    entry = self.classification.get(kind, minor)
                except ValueError:
                    entry = None
                major, safety = self._classes[key] = (
                    (entry.major_code, entry.safety) if entry is not None else (None, None))
        return self.limits.lookup(
            clock, kind, major, minor, values.get("urgency") or "normal",
            self.area_classes.get(values.get("grid_code") or ""), safety,
        )


@dataclass(frozen=True)
class Clock:
    """The running clock of a case: when it started, its limit and its deadline."""

    stage: str  # verify / file / dispatch / handle / check / close
    started_at: datetime
    limit: float  # in ``unit``
    unit: str  # work_hours / work_days / calendar_hours
    # The due-soon window ℓ: the limit in force (the first limit plus what approved 延期 added),
    # in working minutes, or calendar minutes for calendar_hours.
    limit_minutes: float
    deadline_at: datetime
    source: str  # "table" or "source"
    paused_at: datetime | None = None
    row: LimitRow | None = None

    @property
    def working(self) -> bool:
        return self.unit != CALENDAR_UNIT

    @property
    def label(self) -> str:
        return CLOCK_LABELS[self.stage]


@dataclass(frozen=True)
class ClockStatus:
    """A clock seen at an instant."""

    at: datetime
    remaining_minutes: float  # in the clock's own measure (working or calendar minutes)
    overdue: bool
    overdue_work_minutes: float
    overdue_calendar_minutes: float
    due_soon: bool
    paused: bool


@dataclass
class CaseClocks:
    """One case as of an instant: its stage, running clock, status and on-time flags."""

    state: CaseState
    clock: Clock | None
    status: ClockStatus | None
    on_time: dict[str, bool]
    rejected: list[tuple[LifecycleEvent, str]] = field(default_factory=list)

    @property
    def stage(self) -> Stage | None:
        return self.state.stage


# -- one clock ------------------------------------------------------------------------------
def clock_for(state: CaseState, timing: Timing) -> Clock | None:
    """The deadline of the clock running in ``state`` (None when no clock runs, or its limit
    is 不限时 and no source deadline applies: such a clock is never overdue or judged)."""
    if state.clock is None or state.clock_started_at is None:
        return None
    cal = timing.calendar
    start = state.clock_started_at
    row = timing.row_for(state.clock, state.values)
    working = row.working
    given = state.values.get("deadline_at") if state.clock == "handle" else None
    by_days = False
    if given is not None:
        deadline = as_datetime(given).astimezone(cal.tz)
        source = "source"
        if working:
            minutes = max(cal.between(start, deadline), 0.0)
            unit = "work_hours"
        else:
            minutes = max((deadline - start).total_seconds() / 60, 0.0)
            unit = CALENDAR_UNIT
        limit = minutes / 60
    elif row.unlimited:
        return None
    else:
        source, unit, limit = "table", row.unit, row.limit
        # 工作日 are whole working days (docs/lifecycle.md); on a calendar whose days are all
        # alike that is exactly limit × minutes_per_day working minutes, the fast path.
        by_days = row.unit == "work_days" and not cal.uniform
        if by_days:
            deadline = cal.add_days(start, row.limit)
            minutes = cal.between(start, deadline)
        else:
            minutes = row.minutes(cal.minutes_per_day)
            deadline = _plus(cal, start, minutes, working)
    # The due-soon window ℓ: the limit in force, i.e. the first limit plus what each approved
    # 延期 added (a 挂账 moves the deadline but adds no time to use).
    window = minutes
    paused_at = None
    # In time order; at the same instant an extension before a 挂账 (the lifecycle's order).
    moves: list[tuple[datetime, int, Any]] = [(at, 0, given_at) for at, given_at in state.clock_extensions]
    # a pause always has its start (CaseState appends [at, None]); the test only narrows the type
    moves += [(s, 1, r) for s, r in state.clock_pauses if s is not None]
    if len(moves) > 1:
        moves.sort(key=lambda m: (m[0], m[1]))
    for at, what, arg in moves:
        if what == 0:  # approved extension
            before = deadline
            if arg is not None:
                deadline = as_datetime(arg).astimezone(cal.tz)
            elif by_days:
                deadline = cal.add_days(deadline, row.limit)
            elif minutes > 0:
                deadline = _plus(cal, deadline, minutes, working)
            added = cal.between(before, deadline) if working else (deadline - before).total_seconds() / 60
            window = max(window + added, 0.0)
        elif arg is None:  # suspended, not resumed: the clock stands still
            paused_at = at
        elif deadline > at:  # a pause that began before the deadline moves it
            stopped = cal.between(at, arg) if working else (arg - at).total_seconds() / 60
            if stopped > 0:
                deadline = _plus(cal, deadline, stopped, working)
    return Clock(state.clock, start, limit, unit, window, deadline, source, paused_at, row)


def safe_clock(state: CaseState, timing: Timing) -> Clock | None:
    """:func:`clock_for`, or None (logged) for instants the calendar cannot reach.

    A producer may send a legal but absurd time (year 1, year 9999); such a case gets no
    deadline rather than stopping the ingest.
    """
    try:
        return clock_for(state, timing)
    except (ValueError, OverflowError) as exc:
        log.warning("case %s: no deadline for its %s clock: %s", state.case_id, state.clock, exc)
        return None


def _plus(cal: WorkCalendar, start: datetime, minutes: float, working: bool) -> datetime:
    if working:
        return cal.add(start, minutes)
    return (start + timedelta(minutes=minutes)).astimezone(cal.tz)


def status_at(clock: Clock, at: datetime, calendar: WorkCalendar, due_soon_ratio: float) -> ClockStatus:
    """The clock at instant ``at`` (the scalar twin of :func:`evaluate_arrays`)."""
    paused = clock.paused_at is not None and clock.paused_at <= at
    t = clock.paused_at if paused and clock.paused_at is not None else at
    d = clock.deadline_at
    calendar_min = (d - t).total_seconds() / 60
    remaining = calendar.between(t, d) if clock.working else calendar_min
    overdue = not paused and t > d
    return ClockStatus(
        at=at,
        remaining_minutes=remaining,
        overdue=overdue,
        overdue_work_minutes=calendar.between(d, t) if overdue else 0.0,
        overdue_calendar_minutes=-calendar_min if overdue else 0.0,
        due_soon=not overdue and not paused and remaining < due_soon_ratio * clock.limit_minutes,
        paused=paused,
    )


# -- a history ------------------------------------------------------------------------------
class CaseTimer:
    """A case's fold with on-time flags: :meth:`apply` judges each clock an event finishes."""

    def __init__(self, state: CaseState, timing: Timing, on_time: Mapping[str, bool] | None = None,
                 clock: Clock | None = None) -> None:
        """``clock``: the running clock of ``state`` if known (e.g. as stored with it)."""
        self.state = state
        self.timing = timing
        self.on_time: dict[str, bool] = dict(on_time or {})
        self._clock: Clock | None = clock
        self._fresh = clock is not None

    def clock(self) -> Clock | None:
        """The running clock; None when none runs or it cannot be computed (see safe_clock)."""
        if not self._fresh:
            self._clock = safe_clock(self.state, self.timing)
            self._fresh = True
        return self._clock

    def _surely_on_time(self, at: datetime) -> bool:
        """Whether ``at`` is before the running clock's deadline, known without computing it.

        Working time never runs faster than the calendar, so a clock finished less calendar
        time after its start than its limit is on time. Only for a plain clock: no
        挂账/延期 and no source deadline (those can move the deadline either way), and a
        start inside the calendar's table (where the deadline is always computable; outside
        it :func:`safe_clock` may give none). The margin keeps µs rounding out of it.
        """
        state = self.state
        start = state.clock_started_at
        # (a started clock always has its stage: ``clock is None`` only narrows the type)
        if (start is None or state.clock is None or state.clock_pauses or state.clock_extensions
                or (state.clock == "handle" and state.values.get("deadline_at") is not None)):
            return False
        cal = self.timing.calendar
        table = cal._table
        start_us = (start - _UNIX) // _ONE_US
        if not table.lo_us <= start_us < table.hi_us:
            return False
        row = self.timing.row_for(state.clock, state.values)
        if row.unlimited or (row.unit == "work_days" and not cal.uniform):
            return False  # not judged at all / whole days of varying length: compute it
        elapsed = (at - start).total_seconds() / 60
        return elapsed < row.minutes(cal.minutes_per_day) - 0.001

    def apply(self, event: LifecycleEvent) -> None:
        """Apply one event (raises TransitionError, state unchanged, when illegal)."""
        judged: tuple[str, bool] | None = None
        if event.type in FINISHES_CLOCK and self.state.clock is not None and self.state.allows(event):
            if not self._fresh and self._surely_on_time(event.occurred_at):
                judged = (self.state.clock, True)
            else:
                clock = self.clock()
                if clock is not None:
                    judged = (clock.stage, event.occurred_at <= clock.deadline_at)
        self.state.apply(event)
        self._fresh = False
        if judged is not None:
            stage, ok = judged
            self.on_time[stage] = self.on_time.get(stage, True) and ok


def fold_timer(case_id: str, events: Iterable[LifecycleEvent], timing: Timing
               ) -> tuple[CaseTimer, list[tuple[LifecycleEvent, str]]]:
    """:func:`dashboard.rules.lifecycle.fold` with a :class:`CaseTimer`: state, flags, clock."""
    timer = CaseTimer(CaseState(case_id=case_id), timing)
    return timer, fold_into(timer.apply, events)


def timed_fold(case_id: str, events: Iterable[LifecycleEvent], timing: Timing
               ) -> tuple[CaseState, list[tuple[LifecycleEvent, str]], dict[str, bool]]:
    """:func:`dashboard.rules.lifecycle.fold` plus the on-time flags of the finished clocks."""
    timer, rejected = fold_timer(case_id, events, timing)
    return timer.state, rejected, timer.on_time


def evaluate(case_id: str, events: Iterable[LifecycleEvent], as_of: datetime, timing: Timing) -> CaseClocks:
    """A case as of ``as_of``: only events with ``occurred_at`` ≤ ``as_of`` count."""
    upto = [e for e in events if e.occurred_at <= as_of]
    timer, rejected = fold_timer(case_id, upto, timing)
    clock = timer.clock()
    status = status_at(clock, as_of, timing.calendar, timing.due_soon_ratio) if clock else None
    return CaseClocks(timer.state, clock, status, timer.on_time, rejected)


# -- many open cases at once ------------------------------------------------------------------
@dataclass(frozen=True)
class ArrayStatus:
    """:class:`ClockStatus` of many clocks (same fields, as arrays)."""

    remaining_minutes: np.ndarray
    overdue: np.ndarray
    overdue_work_minutes: np.ndarray
    overdue_calendar_minutes: np.ndarray
    due_soon: np.ndarray
    paused: np.ndarray


def to_utc64(values: Sequence[datetime | None]) -> np.ndarray:
    """Aware datetimes (None → NaT) as naive-UTC ``datetime64[us]``."""
    out = np.empty(len(values), dtype="datetime64[us]")
    for i, v in enumerate(values):
        out[i] = np.datetime64("NaT") if v is None else np.datetime64(
            v.astimezone(UTC).replace(tzinfo=None), "us")
    return out


def due_soon_mask(remaining_minutes: np.ndarray, limit_minutes: np.ndarray, overdue: np.ndarray,
                  paused: np.ndarray, due_soon_ratio: float) -> np.ndarray:
    """临期 of many clocks: not overdue, not 挂账, and less than ``due_soon_ratio`` × the limit in
    force remaining. The one vectorised formula: :func:`evaluate_arrays` and the live view's tick
    both call it (:func:`status_at` is its scalar twin)."""
    soon: np.ndarray = ~overdue & ~paused & (remaining_minutes < due_soon_ratio * limit_minutes)
    return soon


def evaluate_arrays(
    calendar: WorkCalendar,
    at: datetime | np.datetime64,
    deadline: np.ndarray,
    limit_minutes: np.ndarray,
    working: np.ndarray,
    paused_at: np.ndarray | None = None,
    due_soon_ratio: float = 0.2,
) -> ArrayStatus:
    """Overdue/remaining/due-soon of many clocks at instant ``at``, without a Python loop.

    ``deadline`` and ``paused_at`` are naive-UTC ``datetime64`` (``paused_at`` NaT for a running
    clock), ``limit_minutes`` the stored limit, ``working`` False for 自然时 clocks. What the
    live view does every tick for all open cases; equal to :func:`status_at` case by case.
    """
    if isinstance(at, datetime):
        at64 = np.datetime64(at.astimezone(UTC).replace(tzinfo=None), "us")
    else:
        at64 = at.astype("datetime64[us]")
    d = np.asarray(deadline, dtype="datetime64[us]")
    n = d.shape[0]
    working = np.asarray(working, dtype=bool)
    limit_minutes = np.asarray(limit_minutes, dtype=np.float64)
    if paused_at is None:
        paused = np.zeros(n, dtype=bool)
        t = np.full(n, at64)
    else:
        p = np.asarray(paused_at, dtype="datetime64[us]")
        paused = ~np.isnat(p) & (p <= at64)
        t = np.where(paused, p, at64)
    off_t = calendar.offsets(t) if paused.any() else np.full(n, calendar.offsets(np.array([at64]))[0])
    off_d = calendar.offsets(d)
    calendar_min = (d - t) / _US / 60_000_000
    remaining = np.where(working, off_d - off_t, calendar_min)
    overdue = ~paused & (t > d)
    return ArrayStatus(
        remaining_minutes=remaining,
        overdue=overdue,
        overdue_work_minutes=np.where(overdue, off_t - off_d, 0.0),
        overdue_calendar_minutes=np.where(overdue, -calendar_min, 0.0),
        due_soon=due_soon_mask(remaining, limit_minutes, overdue, paused, due_soon_ratio),
        paused=paused,
    )


def hmm(minutes: float) -> str:
    """Minutes as h:mm (rounded down to the minute; negative values keep their sign).

    Float noise below a microsecond is ignored first, so 89.9999999999 shows as 1:30.
    """
    total = int(round(abs(minutes), 6) // 1)
    sign = "-" if minutes < 0 and total else ""
    return f"{sign}{total // 60}:{total % 60:02d}"
