"""Surge alerts (突增预警): a place's usual count per hour of the week, and the surge test.

Pure arithmetic on arrivals (time, grid, street, class group); docs/foresight.md says it in
plain words. Two parts:

- :class:`Baseline` learns, from the last ``history_weeks`` of a place's own cases, how many
  cases of a class group it usually gets at each hour of the week (168 hours). A thin history
  is shrunk toward the place's own overall rate spread over the week like the city's cases of
  that group (empirical Bayes, Gamma–Poisson): rate at hour h has a Gamma prior with mean
  ``m_h = place's weekly rate × city's share of hour h`` worth ``prior_weeks`` weeks of data,
  updated with the ``n_h`` weeks of hour h the history holds. The count of a window is then
  negative binomial (a Poisson whose rate is uncertain) — wider than Poisson, so a quiet place
  with two stray cases is not "improbable".
- :func:`find_surges` counts the last ``windows_minutes`` (15, 30 and 60 minutes) per grid ×
  group and street × group and flags a count ``x`` whose chance under the baseline, P(X ≥ x), is below ``threshold``
  (``busy_threshold`` in the shortest window of a place that usually gets ``busy_usual`` cases there),
  when it is also at least ``min_cases`` and at least ``min_ratio`` × the usual count.
  :class:`SurgeBook` turns the findings of successive evaluations into surges: one per place ×
  group while it lasts (until ``quiet_minutes`` pass without a finding).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from dashboard.rules.vocab import LabelledEnum

HOURS_OF_WEEK = 168


class PlaceLevel(LabelledEnum):
    """Where a surge is counted."""

    GRID = "grid", "单元网格"
    STREET = "street", "街道"


@dataclass(frozen=True)
class SurgeSettings:
    """The detector's knobs (``GRIDHALL_SURGE_*``, docs/configuration.md)."""

    windows_minutes: tuple[int, ...] = (15, 30, 60)
    step_minutes: int = 5
    threshold: float = 2e-5
    min_cases: int = 3
    min_ratio: float = 3.0
    history_weeks: int = 4
    prior_weeks: float = 8.0
    quiet_minutes: int = 60
    # A busy place (usually ≥ busy_usual cases of the group in the shortest window) is held to
    # busy_threshold there instead: few places are busy, so it costs few false alarms, and it is
    # where a strong surge must be seen within the shortest window (docs/foresight.md).
    busy_usual: float = 2.0
    busy_threshold: float = 1e-4

    @property
    def window(self) -> timedelta:
        """The longest window: how far back an evaluation looks."""
        return timedelta(minutes=max(self.windows_minutes))


@dataclass(frozen=True)
class Arrival:
    """One new case as the detector sees it."""

    at: datetime
    grid: str  # grid code ("" when 未定位: counted for the street only)
    street: str  # street code or name ("" when unknown)
    group: str  # class group (dashboard/rules/classgroups.py)
    case_id: str = ""  # the store's case (its alert goes on the latest case of a surge)


Key = tuple[PlaceLevel, str, str]  # (level, place, group)


def keys_of(a: Arrival) -> list[Key]:
    """The places × group an arrival counts for: its grid and its street."""
    out: list[Key] = []
    if a.grid:
        out.append((PlaceLevel.GRID, a.grid, a.group))
    if a.street:
        out.append((PlaceLevel.STREET, a.street, a.group))
    return out


def hour_of_week(at: datetime, tz: ZoneInfo) -> int:
    """0 = Monday 00:00–01:00 local, 167 = Sunday 23:00–24:00."""
    local = at.astimezone(tz)
    return local.weekday() * 24 + local.hour


def _hour_floor(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


@dataclass
class Baseline:
    """What each place usually gets, per class group and hour of the week (see the module doc)."""

    tz: ZoneInfo
    settings: SurgeSettings
    exposure: np.ndarray  # per hour of week: how many such hours the history holds
    counts: dict[Key, np.ndarray]  # per key: cases per hour of week over the history
    profile: dict[str, np.ndarray]  # per group: the city's share of each hour of week (sums to 1)
    weeks: float
    excluded: dict[Key, np.ndarray] = field(default_factory=dict)  # per key: hours of past surges left out
    _all_profile: np.ndarray = field(repr=False, default_factory=lambda: np.full(HOURS_OF_WEEK, 1 / HOURS_OF_WEEK))

    PRIOR_CASES = 0.5  # a place never seen gets half a case per history: small, never zero
    PROFILE_PSEUDO = 20.0  # a group's profile is shrunk toward all cases' profile by this many cases

    @classmethod
    def learn(cls, arrivals: Iterable[Arrival], start: datetime, end: datetime, tz: ZoneInfo,
              settings: SurgeSettings, past: Iterable[tuple[Key, datetime, datetime]] = ()) -> Baseline:
        """Learn from the arrivals in [start, end) (whole hours; others are ignored).

        ``past`` lists earlier surges (key, from, to): a place's cases of the group during its own
        surge are not learnt as usual, nor those hours counted — else a weekly market, or a
        rainstorm last week, would teach the baseline that a surge is what this hour gets.
        """
        start, end = _hour_floor(start), _hour_floor(end)
        skip: dict[Key, list[tuple[datetime, datetime]]] = {}
        for key, lo, hi in past:
            lo, hi = max(lo, start), min(hi, end)
            if lo < hi:
                skip.setdefault(key, []).append((lo, hi))
        exposure = np.zeros(HOURS_OF_WEEK)
        first = hour_of_week(start, tz)
        hours = int((end - start).total_seconds() // 3600)
        # Whole weeks add one to every hour; the remainder runs on from the first hour.
        exposure += hours // HOURS_OF_WEEK
        for i in range(hours % HOURS_OF_WEEK):
            exposure[(first + i) % HOURS_OF_WEEK] += 1
        counts: dict[Key, np.ndarray] = {}
        by_group: dict[str, np.ndarray] = {}
        every = np.zeros(HOURS_OF_WEEK)
        for a in arrivals:
            if not start <= a.at < end:
                continue
            h = hour_of_week(a.at, tz)
            keys = [k for k in keys_of(a) if not (k in skip and any(lo <= a.at < hi for lo, hi in skip[k]))]
            if len(keys) == len(keys_of(a)):  # a case of a past surge teaches the city's profile nothing either
                every[h] += 1
                by_group.setdefault(a.group, np.zeros(HOURS_OF_WEEK))[h] += 1
            for key in keys:
                arr = counts.get(key)
                if arr is None:
                    arr = counts[key] = np.zeros(HOURS_OF_WEEK)
                arr[h] += 1
        safe = np.maximum(exposure, 1.0)
        rate_all = (every + 0.5) / safe
        all_profile = rate_all / rate_all.sum()
        profile = {}
        for group, arr in by_group.items():
            rate = (arr + cls.PROFILE_PSEUDO * all_profile) / safe
            profile[group] = rate / rate.sum()
        excluded = {key: _hours_by_hour_of_week(spans, tz) for key, spans in skip.items()}
        return cls(tz, settings, exposure, counts, profile, hours / HOURS_OF_WEEK, excluded, all_profile)

    def expected(self, key: Key, start: datetime, end: datetime) -> tuple[float, float]:
        """(mean, shape) of the negative binomial count of ``key`` in [start, end)."""
        c = self.counts.get(key)
        gone = self.excluded.get(key)
        total = float(c.sum()) if c is not None else 0.0
        seen = self.weeks - (float(gone.sum()) / HOURS_OF_WEEK if gone is not None else 0.0)
        weekly = (total + self.PRIOR_CASES) / max(seen, 1e-9)
        share = self.profile.get(key[2], self._all_profile)
        k = self.settings.prior_weeks
        mean = spread = 0.0
        t = start
        while t < end:
            nxt = min(_hour_floor(t) + timedelta(hours=1), end)
            d = (nxt - t).total_seconds() / 3600
            h = hour_of_week(t, self.tz)
            a = k * weekly * share[h] + (c[h] if c is not None else 0.0)  # Gamma shape
            # Gamma rate: hours of that hour of the week seen (less past surges'), plus the prior's
            b = k + self.exposure[h] - (gone[h] if gone is not None else 0.0)
            mean += d * a / b
            spread += d * d * a / (b * b)
            t = nxt
        return mean, (mean * mean / spread if spread > 0 else math.inf)


def _hours_by_hour_of_week(spans: list[tuple[datetime, datetime]], tz: ZoneInfo) -> np.ndarray:
    out = np.zeros(HOURS_OF_WEEK)
    for lo, hi in spans:
        t = lo
        while t < hi:
            nxt = min(_hour_floor(t) + timedelta(hours=1), hi)
            out[hour_of_week(t, tz)] += (nxt - t).total_seconds() / 3600
            t = nxt
    return out


def tail(x: int, mean: float, shape: float) -> float:
    """P(X ≥ x) for X negative binomial with ``mean`` and ``shape`` (Poisson when shape is infinite)."""
    if x <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    if math.isinf(shape):
        log_pmf = [-mean + j * math.log(mean) - math.lgamma(j + 1) for j in range(x)]
    else:
        p = shape / (shape + mean)
        lp, lq = math.log(p), math.log1p(-p)
        base = shape * lp - math.lgamma(shape)
        log_pmf = [base + math.lgamma(j + shape) - math.lgamma(j + 1) + j * lq for j in range(x)]
    below = sum(math.exp(v) for v in log_pmf)
    return max(0.0, 1.0 - below) if below < 0.999 else _upper(x, mean, shape)


def _upper(x: int, mean: float, shape: float) -> float:
    """P(X ≥ x) summed from x upward (exact where 1 − cdf would lose every digit)."""
    total, j = 0.0, x
    while True:
        if math.isinf(shape):
            v = -mean + j * math.log(mean) - math.lgamma(j + 1)
        else:
            p = shape / (shape + mean)
            v = shape * math.log(p) - math.lgamma(shape) + math.lgamma(j + shape) - math.lgamma(j + 1) \
                + j * math.log1p(-p)
        term = math.exp(v)
        total += term
        if term < total * 1e-12 or j > x + 10_000:
            return total
        j += 1


@dataclass(frozen=True)
class SurgeFinding:
    """One place × group whose last window is improbable: ``observed`` cases, usually ``expected``."""

    level: PlaceLevel
    place: str
    group: str
    observed: int
    expected: float
    chance: float  # P(X ≥ observed) under the baseline
    start: datetime
    end: datetime

    @property
    def key(self) -> Key:
        return (self.level, self.place, self.group)


def surge_text(observed: int, expected: float) -> str:
    """What a wall prints next to a surge: ``12 件 / 通常 1.5 件`` (``通常 <0.1 件``: almost never)."""
    usual = "<0.1" if expected < 0.05 else f"{expected:.1f}" if expected < 10 else f"{expected:.0f}"
    return f"{observed} 件 / 通常 {usual} 件"


def find_surges(baseline: Baseline, recent: Iterable[Arrival], now: datetime) -> list[SurgeFinding]:
    """The surges of the windows ending at ``now``, per grid × group and street × group.

    Each window of ``windows_minutes`` is tested (a short one sees a sharp surge early, a long
    one a slow one); a place × group is found once, with its most improbable window. The
    threshold is shared by the windows (Bonferroni: each is tested at threshold / windows),
    except in the shortest window of a busy place × group (usually at least ``busy_usual``
    cases there), tested at ``busy_threshold``: the false-alarm budget is spent unevenly, a
    little more of it where a few places get enough cases in a short window to show a surge
    early, far less on the thousands of near-empty grids.
    """
    s = baseline.settings
    arrivals = list(recent)
    level = s.threshold / len(s.windows_minutes)
    busy_level = max(level, s.busy_threshold)
    shortest = min(s.windows_minutes)
    best: dict[Key, SurgeFinding] = {}
    for minutes in sorted(s.windows_minutes):
        start = now - timedelta(minutes=minutes)
        counted: Counter[Key] = Counter()
        for a in arrivals:
            if start <= a.at < now:
                counted.update(keys_of(a))
        for key, x in counted.items():
            if x < s.min_cases:
                continue
            mean, shape = baseline.expected(key, start, now)
            if x < s.min_ratio * mean:
                continue
            chance = tail(x, mean, shape)
            bar = busy_level if minutes == shortest and mean >= s.busy_usual else level
            if chance < bar and (key not in best or chance < best[key].chance):
                best[key] = SurgeFinding(key[0], key[1], key[2], x, mean, chance, start, now)
    return sorted(best.values(), key=lambda f: (f.chance, f.level.value, f.place, f.group))


@dataclass
class OpenSurge:
    """A surge under way: first and latest finding, and the strongest window seen."""

    first: SurgeFinding
    last_seen: datetime
    peak: SurgeFinding


@dataclass
class SurgeBook:
    """The surges under way, fed one evaluation at a time: each place × group is raised once while it lasts."""

    settings: SurgeSettings
    open: dict[Key, OpenSurge] = field(default_factory=dict)
    # every surge it raised, in order: the past a baseline leaves out
    seen: list[OpenSurge] = field(default_factory=list)

    def update(self, now: datetime, findings: Iterable[SurgeFinding]) -> tuple[list[OpenSurge], list[OpenSurge]]:
        """Record an evaluation; returns (surges that started now, surges that ended now)."""
        started: list[OpenSurge] = []
        for f in findings:
            known = self.open.get(f.key)
            if known is None:
                self.open[f.key] = known = OpenSurge(f, now, f)
                started.append(known)
                self.seen.append(known)
            known.last_seen = now
            if f.chance < known.peak.chance:
                known.peak = f
        quiet = timedelta(minutes=self.settings.quiet_minutes)
        ended = [o for o in self.open.values() if now - o.last_seen >= quiet]
        for o in ended:
            del self.open[o.first.key]
        return started, ended
