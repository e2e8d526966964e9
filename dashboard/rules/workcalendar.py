"""Working-time calendar: 工作时 / 工作日 arithmetic for stage deadlines.

A :class:`WorkCalendar` knows which days are working days (China's public holidays and 调休
make-up days from the ``chinese_calendar`` package, then the city's own override file) and
the working periods of a working day (local wall-clock times). It answers two questions:

* ``add(start, minutes)``: when will ``minutes`` working minutes have elapsed after ``start``?
* ``between(start, end)``: how many working minutes lie in ``[start, end)``?

and the same for whole arrays through *offsets*: the working minutes elapsed since a fixed
epoch. ``offsets`` is a non-decreasing piecewise-linear function of time (slope 1 inside a
working period, flat outside), so deadlines and remaining time of a million cases are a
``searchsorted`` away instead of a Python loop per case.

Semantics (see docs/lifecycle.md):

* Working time is ``[period start, period end)`` of each working day, the period boundaries
  being local wall-clock times in ``tz``. Elapsed working time is *real* time: on a DST switch
  day a period 01:00-04:00 lasts 2 h (spring) or 4 h (autumn). A boundary inside a skipped
  hour is read as PEP 495 does (``fold=0``: the offset from before the jump, so 02:30 on a
  spring-forward day is 03:30 summer time); a boundary inside a repeated hour means its first
  occurrence.
* Working day: local overrides first (they are "applied last", i.e. win), then, with
  ``use_national``, ``chinese_calendar.is_workday`` (weekends, public holidays and 调休 make-up
  days), else ``weekday not in weekend``. For years the package does not know, the weekend
  rule is used and a warning is logged once per year and process, when a computation first
  relies on such a year (unless the override file says it covers that year).
* ``add(start, 0)`` is ``start`` when ``start`` is inside working time, else the start of the
  next working period (the limit of ``add(start, m)`` as ``m`` → 0). For ``m > 0`` it is the
  first instant whose offset reaches ``offset(start) + m``; so a limit that runs out exactly at
  12:00 gives 12:00, not 14:00.
* Instants are kept as integer microseconds since the Unix epoch; offsets are integer
  microseconds of working time divided by 60,000,000, so ``between`` is exact to the
  microsecond and ``add`` rounds to the nearest microsecond.
"""

from __future__ import annotations

import logging
import math
import threading
import tomllib
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import chinese_calendar
import numpy as np

from dashboard.settings import ConfigError

if TYPE_CHECKING:
    from dashboard.settings import Settings

log = logging.getLogger(__name__)

US_PER_MIN = 60_000_000
_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_DAY = timedelta(days=1)

# The span the first table covers around today; wide enough that a dashboard never extends
# it in normal use (cases older than 2 years are archived), extended on demand otherwise.
_SPAN_BEFORE = timedelta(days=2 * 366)
_SPAN_AFTER = timedelta(days=2 * 366)
# Extensions add this much slack so that a stream of slightly-later instants does not
# rebuild the table each time.
_EXTEND_MARGIN = timedelta(days=366)
# A calendar with no working time at all (e.g. every weekday in `weekend`) would otherwise
# extend forever looking for the minutes to add; past this span we give up loudly.
_MAX_SPAN_DAYS = 400 * 366

# Years for which the "weekends only" fallback has been announced in this process. Shared by
# all calendars: from_settings may be called by every worker refresh and one line per year
# is enough to tell the operator to fill the override file.
_WARNED_YEARS: set[int] = set()
_WARN_LOCK = threading.Lock()


def _national_years() -> tuple[int, int]:
    """First and last year that the installed ``chinese_calendar`` has data for.

    The package checks the same range (min/max of its holiday table) before answering; reading
    it once lets the table builder avoid an exception per day outside it.
    """
    years = [d.year for d in chinese_calendar.holidays]
    return min(years), max(years)


_NATIONAL_FIRST, _NATIONAL_LAST = _national_years()


def _to_us(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime (exact, no float)."""
    return (moment - _UNIX) // _ONE_US


def _from_us(us: int, tz: ZoneInfo) -> datetime:
    return (_UNIX + timedelta(microseconds=us)).astimezone(tz)


# -- override file -----------------------------------------------------------------------------


class HolidayFileError(ConfigError):
    """The override file (GRIDHALL_HOLIDAY_FILE) is missing or malformed."""


@dataclass(frozen=True)
class CalendarOverrides:
    """A city's own calendar adjustments, as read from its override file."""

    holidays: Mapping[date, str] = field(default_factory=dict)
    """Extra days off, with their names ("" when the entry has none)."""
    workdays: Mapping[date, str] = field(default_factory=dict)
    """Extra working days (调休 make-up days, or days the city works anyway)."""
    covers_years: frozenset[int] = frozenset()
    """Years whose national holidays the file supplies itself (silences the fallback warning)."""


_ENTRY_KEYS = {"date", "start", "end", "name"}
# A range longer than this is almost surely a typo (2026-01-01 .. 2027-01-01 for one day).
_MAX_RANGE_DAYS = 366


def _entry_day(value: object, where: str, key: str) -> date:
    # TOML has a date type; a quoted ISO date is accepted too because people write it that way.
    if isinstance(value, datetime):
        raise HolidayFileError(f"{where}: {key} must be a date, not a date-time ({value})")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise HolidayFileError(f"{where}: {key} must be a date like 2026-12-24, not {value!r}")


def _entry_days(entry: object, where: str) -> tuple[list[date], str, str]:
    """The days of one [[holiday]]/[[workday]] entry, its name, and how errors should name it."""
    if not isinstance(entry, dict):
        raise HolidayFileError(f"{where}: must be a table with date = … (or start/end)")
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        raise HolidayFileError(
            f"{where}: unknown key {unknown[0]!r} (allowed: date, start, end, name)"
        )
    name = entry.get("name", "")
    if not isinstance(name, str):
        raise HolidayFileError(f"{where}: name must be a string")
    if name:
        where = f"{where} ({name})"
    if "date" in entry:
        if "start" in entry or "end" in entry:
            raise HolidayFileError(f"{where}: give either date or start/end, not both")
        return [_entry_day(entry["date"], where, "date")], name, where
    if "start" not in entry or "end" not in entry:
        raise HolidayFileError(f"{where}: needs date = …, or both start = … and end = …")
    first = _entry_day(entry["start"], where, "start")
    last = _entry_day(entry["end"], where, "end")
    if last < first:
        raise HolidayFileError(f"{where}: end {last} is before start {first}")
    count = (last - first).days + 1
    if count > _MAX_RANGE_DAYS:
        raise HolidayFileError(f"{where}: {count} days from {first} to {last} (at most {_MAX_RANGE_DAYS})")
    return [first + timedelta(days=i) for i in range(count)], name, where


def load_overrides(path: Path | str) -> CalendarOverrides:
    """Read a holiday override file; :class:`HolidayFileError` names the file and the entry.

    Format (TOML)::

        covers_years = [2027]          # optional: the file lists these years' national days

        [[holiday]]
        date = 2026-12-24              # or start = 2026-12-24 and end = 2026-12-26 (inclusive)
        name = "城市纪念日"

        [[workday]]
        date = 2026-12-27
        name = "调休上班"
    """
    path = Path(path)
    label = f"GRIDHALL_HOLIDAY_FILE: {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HolidayFileError(f"{label}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HolidayFileError(f"{label}: cannot read: {exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise HolidayFileError(f"{label}: not valid TOML: {exc}") from None

    unknown = sorted(set(doc) - {"holiday", "workday", "covers_years"})
    if unknown:
        raise HolidayFileError(
            f"{label}: unknown key {unknown[0]!r} (allowed: [[holiday]], [[workday]], covers_years)"
        )
    years = doc.get("covers_years", [])
    if not isinstance(years, list) or not all(isinstance(y, int) and not isinstance(y, bool) for y in years):
        raise HolidayFileError(f"{label}: covers_years must be a list of years, e.g. [2027]")

    found: dict[str, dict[date, tuple[str, str]]] = {"holiday": {}, "workday": {}}
    for kind in ("holiday", "workday"):
        entries = doc.get(kind, [])
        if not isinstance(entries, list):
            raise HolidayFileError(f"{label}: {kind} must be an array of tables: [[{kind}]]")
        for number, entry in enumerate(entries, start=1):
            days, name, where = _entry_days(entry, f"{label}: {kind} #{number}")
            for day in days:
                # A date listed twice under the same kind is harmless (overlapping ranges).
                found[kind].setdefault(day, (name, where))
    clash = sorted(set(found["holiday"]) & set(found["workday"]))
    if clash:
        day = clash[0]
        raise HolidayFileError(
            f"{found['holiday'][day][1]} and {found['workday'][day][1].removeprefix(label + ': ')}"
            f" both contain {day}; a day is either off or working"
        )
    return CalendarOverrides(
        holidays={d: n for d, (n, _) in found["holiday"].items()},
        workdays={d: n for d, (n, _) in found["workday"].items()},
        covers_years=frozenset(years),
    )


# -- the calendar ------------------------------------------------------------------------------

MonthDay = tuple[int, int]  # (month, day) of a season's first or last day, every year


def _month_day(value: Sequence[int]) -> MonthDay:
    """``value`` as a (month, day) pair; a list from TOML is taken too, another length refused."""
    if len(value) != 2:
        raise ValueError(f"a season's day is (month, day), not {tuple(value)!r}")
    return int(value[0]), int(value[1])


@dataclass(frozen=True)
class Season:
    """Working periods for the days from ``first`` to ``last`` (inclusive) of every year.

    ``first`` after ``last`` wraps the year end (11-01 .. 03-31). E.g. 夏令作息 from 05-01 to
    09-30 with an afternoon from 14:30: ``Season((5, 1), (9, 30), ((510, 720), (870, 1080)))``.
    """

    first: MonthDay
    last: MonthDay
    periods: tuple[tuple[int, int], ...]

    def contains(self, day: date) -> bool:
        md = (day.month, day.day)
        if self.first <= self.last:
            return self.first <= md <= self.last
        return md >= self.first or md <= self.last

    def __str__(self) -> str:
        first, last = self.first, self.last
        return f"{first[0]:02d}-{first[1]:02d}..{last[0]:02d}-{last[1]:02d} {_show_periods(self.periods)}"


def _show_periods(periods: Sequence[tuple[int, int]]) -> str:
    return ",".join(f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in periods)


def _clean_periods(periods: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    clean: list[tuple[int, int]] = []
    previous_end = 0
    for pair in periods:
        start, end = (int(v) for v in pair)
        if not (0 <= start < end <= 1440) or start < previous_end:
            raise ValueError(
                f"working periods must be increasing, non-overlapping (start, end) minutes "
                f"within 0..1440, got {list(periods)!r}"
            )
        clean.append((start, end))
        previous_end = end
    if not clean:
        raise ValueError("at least one working period is needed")
    return tuple(clean)


def _season_days(season: Season) -> set[MonthDay]:
    days = set()
    day = date(2024, 1, 1)  # a leap year: 02-29 is a day too
    while day.year == 2024:
        if season.contains(day):
            days.add((day.month, day.day))
        day += _DAY
    return days


@dataclass(frozen=True)
class _Table:
    """Working periods of the days ``first..last`` as UTC microseconds, with cumulative sums.

    ``starts[i]``/``ends[i]`` bound the i-th working interval (abutting periods merged, empty
    ones dropped, so both are strictly increasing and ``ends[i] < starts[i+1]``);
    ``cum[i]`` is the working time (µs) from the epoch to ``starts[i]`` and ``cum_end[i]`` to
    ``ends[i]``. Immutable: an extension builds a new table and swaps the reference, so
    readers in other threads never see a half-built one.
    """

    first: date
    last: date
    lo_us: int  # local midnight starting `first`
    hi_us: int  # local midnight ending `last`
    starts: np.ndarray
    ends: np.ndarray
    cum: np.ndarray
    cum_end: np.ndarray
    # The same as Python lists: bisect on a list beats numpy's per-call overhead for the
    # scalar add()/between() path by an order of magnitude.
    starts_l: list[int]
    ends_l: list[int]
    cum_l: list[int]
    cum_end_l: list[int]
    # One entry per working day with working time: the offset (µs) at which the day's
    # working time begins and its length (µs, real time). A day's working time ends where
    # the next one's begins (offsets are flat between working periods). For 工作日.
    day_cum: np.ndarray
    day_len: np.ndarray
    day_cum_l: list[int]
    day_len_l: list[int]


class WorkCalendar:
    """Working days and periods of a city, with 工作时 arithmetic on instants and arrays."""

    tz: ZoneInfo

    def __init__(
        self,
        tz: ZoneInfo,
        periods: Sequence[tuple[int, int]] = ((510, 720), (840, 1080)),
        holidays: Iterable[date] = (),
        workdays: Iterable[date] = (),
        weekend: frozenset[int] = frozenset({5, 6}),
        use_national: bool = True,
        *,
        covers_years: Iterable[int] = (),
        names: Mapping[date, str] | None = None,
        seasons: Sequence[Season] = (),
    ) -> None:
        """Build the calendar and its first table (today ± 2 years).

        ``periods``: (start, end) minutes after local midnight, increasing, not overlapping,
        within 0..1440. ``holidays``/``workdays``: the city's extra days off / working days,
        applied after the national calendar. ``weekend``: weekday numbers (Monday = 0) that are
        off when the national calendar does not decide (``use_national=False`` or a year the
        package does not know). ``covers_years``: years the caller supplies holidays for
        itself (no fallback warning). ``names``: display names of override days.
        ``seasons``: periods for date ranges of every year (夏令/冬令作息); ``periods`` apply
        on the days no season contains. Two seasons may not share a day.
        """
        self.tz = tz
        self.periods: tuple[tuple[int, int], ...] = _clean_periods(periods)
        # a season read from TOML carries lists; a length other than 2 is refused here
        cleaned = [Season(_month_day(x.first), _month_day(x.last), _clean_periods(x.periods)) for x in seasons]
        taken: dict[MonthDay, Season] = {}
        for season in cleaned:
            for md in (season.first, season.last):
                try:
                    date(2024, *md)
                except ValueError:
                    raise ValueError(f"season {season}: {md[0]:02d}-{md[1]:02d} is not a day of the year") from None
            for md in sorted(_season_days(season)):
                if md in taken:
                    raise ValueError(f"seasons {taken[md]} and {season} both contain {md[0]:02d}-{md[1]:02d}")
                taken[md] = season
        self.seasons: tuple[Season, ...] = tuple(cleaned)
        self._season_of: dict[MonthDay, tuple[tuple[int, int], ...]] = {md: x.periods for md, x in taken.items()}
        self.holidays = frozenset(holidays)
        self.workdays = frozenset(workdays)
        both = sorted(self.holidays & self.workdays)
        if both:
            raise ValueError(f"{both[0]} is both an extra holiday and an extra working day")
        if not set(weekend) <= set(range(7)):
            raise ValueError(f"weekend holds weekday numbers 0 (Monday)..6, got {sorted(weekend)}")
        self.weekend = frozenset(weekend)
        self.use_national = use_national
        self.covers_years = frozenset(covers_years)
        self.names: Mapping[date, str] = dict(names or {})
        self._day_cache: dict[date, bool] = {}
        self._lock = threading.Lock()
        # Instants from which the fallback applies (local midnights around the package's
        # range); outside [_known_lo, _known_hi) a computation may rely on weekend-only days.
        self._known_lo = _to_us(datetime(_NATIONAL_FIRST, 1, 1, tzinfo=tz))
        self._known_hi = _to_us(datetime(_NATIONAL_LAST + 1, 1, 1, tzinfo=tz))

        today = datetime.now(tz).date()
        first, last = today - _SPAN_BEFORE, today + _SPAN_AFTER
        self._epoch_us = _to_us(datetime(first.year, first.month, first.day, tzinfo=tz))
        self._table = self._build(first, last)

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkCalendar:
        """The calendar of a deployment: its time zone, working periods and override file."""
        overrides = (
            load_overrides(settings.holiday_file) if settings.holiday_file else CalendarOverrides()
        )
        return cls(
            settings.tz,
            settings.working_period_minutes,
            holidays=overrides.holidays,
            workdays=overrides.workdays,
            covers_years=overrides.covers_years,
            names={**overrides.holidays, **overrides.workdays},
            seasons=[Season(first, last, tuple(periods)) for first, last, periods in settings.working_seasons],
        )

    # -- days ----------------------------------------------------------------------------------

    def periods_on(self, day: date) -> tuple[tuple[int, int], ...]:
        """The working periods of a local date (its season's, else the default ones)."""
        return self._season_of.get((day.month, day.day), self.periods)

    @property
    def uniform(self) -> bool:
        """Whether every working day has the same working time (no seasons, no DST).

        Then N 工作日 are exactly N × :attr:`minutes_per_day` working minutes.
        """
        cached = self.__dict__.get("_uniform")
        if cached is None:
            year = datetime.now(self.tz).year
            offsets = {datetime(year, m, 1, 12, tzinfo=self.tz).utcoffset() for m in range(1, 13)}
            cached = self.__dict__["_uniform"] = not self.seasons and len(offsets) == 1
        return cached

    @property
    def minutes_per_day(self) -> int:
        """Nominal working minutes of a working day with the default periods (450).

        With seasons (or DST) days differ in length, and a 工作日 is a whole working day
        (:meth:`add_days`); on a uniform calendar N 工作日 = N × minutes_per_day.
        """
        # Cached: the deadline of every folded case asks for it on the ingest's hot path.
        cached = self.__dict__.get("_minutes_per_day")
        if cached is None:
            cached = self.__dict__["_minutes_per_day"] = sum(end - start for start, end in self.periods)
        return cached

    @property
    def _shortest_day_minutes(self) -> int:
        cached = self.__dict__.get("_shortest")
        if cached is None:
            cached = self.__dict__["_shortest"] = min(
                sum(b - a for a, b in ps) for ps in (self.periods, *(x.periods for x in self.seasons)))
        return cached

    @property
    def _longest_day_us(self) -> int:
        """An upper bound of a working day's real length (µs): a DST fall-back adds an hour."""
        cached = self.__dict__.get("_longest_us")
        if cached is None:
            longest = max(sum(b - a for a, b in ps) for ps in (self.periods, *(x.periods for x in self.seasons)))
            cached = self.__dict__["_longest_us"] = (longest + 60) * US_PER_MIN
        return cached

    @property
    def epoch(self) -> datetime:
        """The instant whose offset is 0 (a local midnight two years before construction)."""
        return _from_us(self._epoch_us, self.tz)

    def _fallback_day(self, day: date) -> bool:
        return self.use_national and not (_NATIONAL_FIRST <= day.year <= _NATIONAL_LAST)

    def _decide(self, day: date) -> bool:
        # Overrides win over the national calendar ("applied last").
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        if self.use_national and _NATIONAL_FIRST <= day.year <= _NATIONAL_LAST:
            try:
                return bool(chinese_calendar.is_workday(day))
            except NotImplementedError:
                # A future package version may narrow its range; fall through to weekends.
                pass
        return day.weekday() not in self.weekend

    def _is_workday(self, day: date) -> bool:
        cached = self._day_cache.get(day)
        if cached is None:
            cached = self._day_cache[day] = self._decide(day)
        return cached

    def is_workday(self, day: date) -> bool:
        """Whether ``day`` (a local calendar date) is a working day."""
        if isinstance(day, datetime):
            # A datetime's date depends on the zone it is read in; make the caller say which.
            raise TypeError("is_workday takes a date; use moment.astimezone(calendar.tz).date()")
        if self._fallback_day(day):
            self._warn_fallback(day.year, day.year)
        return self._is_workday(day)

    def _warn_fallback(self, first_year: int, last_year: int) -> None:
        years = [
            y
            for y in range(first_year, last_year + 1)
            if not (_NATIONAL_FIRST <= y <= _NATIONAL_LAST) and y not in self.covers_years
        ]
        with _WARN_LOCK:
            new = [y for y in years if y not in _WARNED_YEARS]
            _WARNED_YEARS.update(new)
        if new:
            shown = str(new[0]) if len(new) == 1 else f"{new[0]}-{new[-1]}"
            log.warning(
                "chinese_calendar %s has no public holidays for %s (it knows %d-%d): counting "
                "Saturdays and Sundays as the only days off there. Add that year's holidays "
                "and 调休 working days to GRIDHALL_HOLIDAY_FILE (and covers_years = [%s]).",
                getattr(chinese_calendar, "__version__", "?"),
                shown,
                _NATIONAL_FIRST,
                _NATIONAL_LAST,
                ", ".join(map(str, new)),
            )

    def _check_fallback(self, lo_us: int, hi_us: int) -> None:
        """Warn (once per year) when instants in [lo_us, hi_us] fall outside the national data."""
        if not self.use_national or (self._known_lo <= lo_us and hi_us < self._known_hi):
            return
        lo_year = _from_us(lo_us, self.tz).year
        hi_year = _from_us(hi_us, self.tz).year
        self._warn_fallback(lo_year, hi_year)

    # -- tables --------------------------------------------------------------------------------

    def _build(self, first: date, last: date) -> _Table:
        """Working intervals of the days first..last (inclusive), cumulated from the epoch."""
        if (last - first).days > _MAX_SPAN_DAYS:
            raise ValueError(
                f"working calendar would span {first}..{last}; instants that far apart are "
                "almost surely bad data (or the calendar has no working time at all)"
            )
        tz = self.tz
        starts: list[int] = []
        ends: list[int] = []
        day_cum: list[int] = []
        day_len: list[int] = []
        total = 0  # working µs before the current interval, from the table's first day
        day = first
        while day <= last:
            if self._is_workday(day):
                midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
                day_start = total
                for lo, hi in self.periods_on(day):
                    # Aware + timedelta is wall-clock arithmetic with fold=0, and subtracting
                    # the UTC epoch applies the offset in force then: real elapsed time.
                    s = _to_us(midnight + timedelta(minutes=lo))
                    e = _to_us(midnight + timedelta(minutes=hi))
                    if starts:
                        # A boundary moved by a DST jump may fall before the previous one;
                        # clamping keeps the function monotone (the overlap counts once).
                        s = max(s, ends[-1])
                    e = max(e, s)
                    if e == s:
                        continue
                    total += e - s
                    if starts and s == ends[-1]:
                        ends[-1] = e  # abutting periods (e.g. 00:00-24:00 days) form one
                    else:
                        starts.append(s)
                        ends.append(e)
                if total > day_start:
                    day_cum.append(day_start)
                    day_len.append(total - day_start)
            day += _DAY
        lo_us = _to_us(datetime(first.year, first.month, first.day, tzinfo=tz))
        after = last + _DAY
        hi_us = _to_us(datetime(after.year, after.month, after.day, tzinfo=tz))

        s_arr = np.asarray(starts, dtype=np.int64)
        e_arr = np.asarray(ends, dtype=np.int64)
        lengths = e_arr - s_arr
        cum_end = np.cumsum(lengths)
        cum = cum_end - lengths
        # Offsets are relative to the fixed epoch, so that tables extended later give the
        # same offsets to the same instants (callers may keep offsets across extensions).
        shift = 0
        if len(s_arr):
            j = max(bisect_right(starts, self._epoch_us) - 1, 0)
            shift = int(cum[j]) + min(max(self._epoch_us - starts[j], 0), int(lengths[j]))
            cum -= shift
            cum_end -= shift
        d_cum = np.asarray(day_cum, dtype=np.int64) - shift
        d_len = np.asarray(day_len, dtype=np.int64)
        return _Table(
            first=first, last=last, lo_us=lo_us, hi_us=hi_us,
            starts=s_arr, ends=e_arr, cum=cum, cum_end=cum_end,
            starts_l=starts, ends_l=ends, cum_l=cum.tolist(), cum_end_l=cum_end.tolist(),
            day_cum=d_cum, day_len=d_len, day_cum_l=d_cum.tolist(), day_len_l=day_len,
        )

    def _extend(self, first: date, last: date) -> _Table:
        with self._lock:
            table = self._table
            if first >= table.first and last <= table.last:
                return table  # another thread got here first
            first = min(first, table.first)
            last = max(last, table.last)
            log.debug("extending working calendar to %s..%s", first, last)
            self._table = self._build(first, last)
            return self._table

    def _days_around(self, lo_us: int, hi_us: int) -> tuple[date, date]:
        try:
            lo_day = _from_us(lo_us, self.tz).date() - _EXTEND_MARGIN
            hi_day = _from_us(hi_us, self.tz).date() + _EXTEND_MARGIN
        except (OverflowError, ValueError):
            raise ValueError(
                f"instants out of the calendar's range: {lo_us} .. {hi_us} µs since 1970"
            ) from None
        return lo_day, hi_day

    def _table_for_instants(self, lo_us: int, hi_us: int) -> _Table:
        table = self._table
        if table.lo_us <= lo_us and hi_us < table.hi_us:
            return table
        lo_day, hi_day = self._days_around(lo_us, hi_us)
        return self._extend(min(lo_day, table.first), max(hi_day, table.last))

    def _table_for_values(self, lo_us: float, hi_us: float) -> _Table:
        """A table in which the first instants reaching offsets lo_us..hi_us (µs) are known."""
        table = self._table
        # 200 working days a year is below any real calendar (China has ~250), so one step
        # of this size almost always covers the missing minutes.
        per_year = 200 * self._shortest_day_minutes * US_PER_MIN
        while True:
            n = len(table.starts_l)
            below = n == 0 or lo_us <= table.cum_l[0]
            above = n == 0 or hi_us > table.cum_end_l[-1]
            if not (below or above):
                return table
            # Grow by the calendar time the missing minutes need, and at least double the
            # span: a calendar with no working time then reaches _MAX_SPAN_DAYS (and raises)
            # after a few rebuilds instead of hundreds.
            span = (table.last - table.first).days
            first, last = table.first, table.last
            try:
                if below:
                    gap = 0.0 if n == 0 else table.cum_l[0] - lo_us
                    first -= timedelta(days=max(366 * (1 + int(gap // per_year)), span))
                if above:
                    gap = 0.0 if n == 0 else hi_us - table.cum_end_l[-1]
                    last += timedelta(days=max(366 * (1 + int(gap // per_year)), span))
            except OverflowError:
                raise ValueError(
                    "offsets out of the calendar's range (or the calendar has no working time)"
                ) from None
            table = self._extend(first, last)

    # -- scalar arithmetic ---------------------------------------------------------------------

    @staticmethod
    def _offset_us(table: _Table, t: int) -> int:
        # Last interval starting at or before t; before the first one the offset is its cum.
        if not table.starts_l:
            return 0  # no working time anywhere in the table: nothing has elapsed
        j = max(bisect_right(table.starts_l, t) - 1, 0)
        return table.cum_l[j] + min(max(t - table.starts_l[j], 0), table.ends_l[j] - table.starts_l[j])

    @staticmethod
    def _instant_us(table: _Table, value_us: float) -> int:
        # First interval whose end offset reaches the value; the instant is inside it (or at
        # its end). Same float operations as from_offsets, so both agree to the microsecond.
        j = bisect_left(table.cum_end_l, value_us)
        return table.starts_l[j] + round(value_us - table.cum_l[j])

    def _aware_us(self, moment: datetime, name: str) -> int:
        if not isinstance(moment, datetime):
            raise TypeError(f"{name} must be a datetime, not {type(moment).__name__}")
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware, got {moment!r}")
        return _to_us(moment)

    def add(self, start: datetime, minutes: float) -> datetime:
        """The instant at which ``minutes`` working minutes have elapsed after ``start``.

        ``start`` is aware (any zone); the result is in the city's zone. Counting begins at
        ``start`` if it is inside working time, else at the next working period. With
        ``minutes == 0`` the result is ``start`` itself inside working time, else the start of
        the next working period. For ``minutes > 0`` the result is the first instant (to the
        microsecond) at which the working time reaches ``minutes``: a limit used up exactly at
        a period's end gives that end (12:00), not the next period's start.
        """
        t = self._aware_us(start, "start")
        minutes = float(minutes)
        if not math.isfinite(minutes) or minutes < 0:
            raise ValueError(f"minutes must be a finite number >= 0, got {minutes}")
        table = self._table
        # The common case, inlined (every folded case's deadline takes this path): start and
        # result inside the current table and inside the national calendar's years. Same
        # integer and float operations as the general path below, so the same result.
        if minutes * US_PER_MIN >= 0.5 and table.lo_us <= t < table.hi_us and table.starts_l:
            starts = table.starts_l
            j = bisect_right(starts, t) - 1
            if j < 0:
                j = 0
            off = table.cum_l[j] + min(max(t - starts[j], 0), table.ends_l[j] - starts[j])
            value_us = (off / US_PER_MIN + minutes) * US_PER_MIN
            if table.cum_l[0] < value_us <= table.cum_end_l[-1]:
                k = bisect_left(table.cum_end_l, value_us)
                result = starts[k] + round(value_us - table.cum_l[k])
                if not self.use_national or (self._known_lo <= t and result < self._known_hi):
                    return _from_us(result, self.tz)
        table = self._table_for_instants(t, t)
        # Less than half a microsecond rounds to "no time": treating it as 0 keeps add()
        # monotone in minutes, because offset/1e-300-style sums can round back onto the end
        # of the previous period (an instant before start).
        if minutes * US_PER_MIN < 0.5:
            j = bisect_right(table.starts_l, t) - 1
            if j >= 0 and t < table.ends_l[j]:
                result = t
            else:
                # The next interval may lie past the table (a long holiday at its end).
                nxt = self._offset_us(table, t) + 1
                table = self._table_for_values(nxt, nxt)
                result = table.starts_l[bisect_left(table.cum_end_l, nxt)]
        else:
            value = self._offset_us(table, t) / US_PER_MIN + minutes
            value_us = value * US_PER_MIN
            table = self._table_for_values(value_us, value_us)
            result = self._instant_us(table, value_us)
        self._check_fallback(t, result)
        return _from_us(result, self.tz)

    def _day_table(self, lo_us: int, days: float) -> _Table:
        """A table holding offset ``lo_us``'s working day and the ``days`` + 2 after it whole."""
        hi = lo_us + (math.floor(days) + 3) * self._longest_day_us
        return self._table_for_values(float(lo_us), float(hi))

    @staticmethod
    def _day_value_us(table: _Table, o: int, whole: int, frac: float) -> int:
        # The working day holding offset o (at a day's end: the next day, at its start), the
        # same position ``whole`` working days later, capped at that day's end, then the
        # fraction of that day. Integer µs for whole days, so the result is exact.
        k = bisect_right(table.day_cum_l, o) - 1
        target = k + whole
        begin, length = table.day_cum_l[target], table.day_len_l[target]
        return begin + min(o - table.day_cum_l[k], length) + round(frac * length)

    def add_days(self, start: datetime, days: float) -> datetime:
        """The deadline of a limit of ``days`` 工作日 from ``start`` (docs/lifecycle.md).

        A 工作日 is a whole working day, however long its periods are (夏令/冬令作息, DST):
        from a start ``p`` working minutes into its working day the deadline is ``p`` working
        minutes into the working day ``int(days)`` days later, or that day's end when it is
        shorter; a fraction adds that share of the day reached. A start outside working time
        counts from the next working day's start. On a :attr:`uniform` calendar this is
        exactly ``add(start, days * minutes_per_day)``.
        """
        t = self._aware_us(start, "start")
        days = float(days)
        if not math.isfinite(days) or days < 0:
            raise ValueError(f"days must be a finite number >= 0, got {days}")
        if days * self._shortest_day_minutes * US_PER_MIN < 0.5:
            return self.add(start, 0)
        table = self._table_for_instants(t, t)
        o = self._offset_us(table, t)
        table = self._day_table(o, days)
        o = self._offset_us(table, t)  # same value: the epoch does not move
        whole = math.floor(days)
        value = self._day_value_us(table, o, whole, days - whole)
        result = self._instant_us(table, value)
        self._check_fallback(t, result)
        return _from_us(result, self.tz)

    def day_offsets(self, offsets: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`add_days` on offsets: the deadline offset of ``days`` 工作日 from
        each start offset (minutes, as :meth:`offsets` gives them; :meth:`from_offsets` turns
        the result into instants). NaN stays NaN."""
        o_f = np.asarray(offsets, dtype=np.float64)
        d = np.broadcast_to(np.asarray(days, dtype=np.float64), o_f.shape)
        valid = np.isfinite(o_f) & np.isfinite(d)
        out = np.full(o_f.shape, np.nan)
        if not valid.any():
            return out
        o = np.rint(o_f[valid] * US_PER_MIN).astype(np.int64)
        dv = d[valid]
        hi = float(o.max()) + (float(np.floor(dv).max()) + 3) * self._longest_day_us
        table = self._table_for_values(float(o.min()), hi)
        whole = np.floor(dv).astype(np.int64)
        k = np.searchsorted(table.day_cum, o, side="right") - 1
        target = k + whole
        begin, length = table.day_cum[target], table.day_len[target]
        value = begin + np.minimum(o - table.day_cum[k], length) + np.rint((dv - whole) * length).astype(np.int64)
        out[valid] = value / US_PER_MIN
        return out

    def between(self, start: datetime, end: datetime) -> float:
        """Working minutes in ``[start, end)``; negative (minus ``[end, start)``) when end < start."""
        a = self._aware_us(start, "start")
        b = self._aware_us(end, "end")
        table = self._table_for_instants(min(a, b), max(a, b))
        self._check_fallback(min(a, b), max(a, b))
        # Difference of integer microseconds first, so the result is exact to the µs.
        return (self._offset_us(table, b) - self._offset_us(table, a)) / US_PER_MIN

    # -- vectorised ----------------------------------------------------------------------------

    @staticmethod
    def _as_us(times: np.ndarray) -> np.ndarray:
        arr = np.asarray(times)
        if arr.dtype.kind != "M":
            raise TypeError(f"expected datetime64 values (UTC, naive), got dtype {arr.dtype}")
        return arr.astype("datetime64[us]").view(np.int64)

    def offsets(self, times: np.ndarray) -> np.ndarray:
        """Working minutes since :attr:`epoch` of each instant (``datetime64``, naive UTC).

        Non-decreasing in time; NaT gives NaN. ``offsets(b) - offsets(a)`` equals
        ``between(a, b)``. The table is extended first when the instants lie outside it.
        """
        shape = np.shape(times)
        t = self._as_us(times).ravel()
        nat = np.isnat(t.view("datetime64[us]"))
        if nat.any():
            valid = t[~nat]
            if not valid.size:
                return np.full(shape, np.nan)
            t = np.where(nat, valid.min(), t)
        if not t.size:
            return np.empty(shape, dtype=np.float64)
        lo, hi = int(t.min()), int(t.max())
        table = self._table_for_instants(lo, hi)
        self._check_fallback(lo, hi)
        if not table.starts.size:
            return np.where(nat, np.nan, 0.0).reshape(shape)  # no working time in the table
        j = np.searchsorted(table.starts, t, side="right") - 1
        np.maximum(j, 0, out=j)
        start = table.starts[j]
        inside = np.clip(t - start, 0, table.ends[j] - start)
        out: np.ndarray = (table.cum[j] + inside) / US_PER_MIN
        if nat.any():
            out[nat] = np.nan
        return out.reshape(shape)

    def from_offsets(self, offsets: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`offsets`: the first instant whose offset reaches each value.

        Returns ``datetime64[us]`` (naive UTC); NaN and ±inf give NaT. For a value reached at
        the end of a working period that end is returned (12:00, not 14:00), matching
        :meth:`add` for positive minutes.
        """
        shape = np.shape(offsets)
        v = np.asarray(offsets, dtype=np.float64).ravel()
        finite = np.isfinite(v)
        all_finite = bool(finite.all())
        if not all_finite:
            if not finite.any():
                return np.full(shape, np.datetime64("NaT"), dtype="datetime64[us]")
            v = np.where(finite, v, v[finite].min())
        if not v.size:
            return np.empty(shape, dtype="datetime64[us]")
        v_us = v * US_PER_MIN
        table = self._table_for_values(float(v_us.min()), float(v_us.max()))
        j = np.searchsorted(table.cum_end, v_us, side="left")
        out = table.starts[j] + np.rint(v_us - table.cum[j]).astype(np.int64)
        self._check_fallback(int(out.min()), int(out.max()))
        result: np.ndarray = out.view("datetime64[us]")
        if not all_finite:
            result[~finite] = np.datetime64("NaT")
        return result.reshape(shape)

    def __repr__(self) -> str:
        spans = _show_periods(self.periods) + "".join(f"; {x}" for x in self.seasons)
        return (
            f"WorkCalendar({self.tz.key}, {spans}, national={self.use_national}, "
            f"+{len(self.holidays)} holidays, +{len(self.workdays)} workdays)"
        )


def as_utc64(moment: datetime) -> np.datetime64:
    """An aware datetime as the naive-UTC ``datetime64[us]`` that :meth:`WorkCalendar.offsets` takes."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"moment must be timezone-aware, got {moment!r}")
    return np.datetime64(_to_us(moment), "us")


__all__ = [
    "CalendarOverrides",
    "HolidayFileError",
    "Season",
    "WorkCalendar",
    "as_utc64",
    "load_overrides",
]
