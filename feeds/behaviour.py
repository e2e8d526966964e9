"""How the simulated city's work goes: units that differ, classes' handling times, surges.

The planner (``feeds/scenario.py``) asks this model how long a 处置 takes, whether the 核查
passes and whether a unit asks for 延期; the arrivals ask it which surges are on. Every
figure is a field of a frozen dataclass below (its docstring is the documentation), and
every draw comes from a seed, so the same seed gives the same city. docs/simulator.md
explains the model and its figures in plain words.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, ClassVar
from zoneinfo import ZoneInfo

from dashboard.rules.classgroups import GROUP_PATTERNS, OTHER_COMPONENT_GROUP, OTHER_EVENT_GROUP, class_group
from dashboard.rules.classification import ClassEntry

if TYPE_CHECKING:
    from .scenario import SimGrid


@dataclass(frozen=True)
class ClassTiming:
    """Hands-on 处置 time of a class group: lognormal, ``median_minutes`` and ``sigma``.

    ``pattern`` is matched against the 小类 name; the first matching group wins. The time is
    the unit's work on the case once it gets to it; the wait in the unit's queue comes on top
    (:class:`UnitProfile`).
    """

    group: str
    pattern: str
    median_minutes: float
    sigma: float

    def draw(self, rng: random.Random) -> float:
        return rng.lognormvariate(math.log(self.median_minutes), self.sigma)


# Plausible figures for a mid-sized city (minutes of a unit's work): a street crew removes an
# ad or a rubbish pile within hours, a vendor comes back (so 占道 takes a second visit), a
# broken cover needs a part, a street lamp or a tree needs a contractor and days.
CLASS_TIMINGS: tuple[ClassTiming, ...] = tuple(
    ClassTiming(group, GROUP_PATTERNS[group], median, sigma) for group, median, sigma in (
        ("小广告", 150, 0.7),
        ("垃圾与保洁", 120, 0.6),
        ("乱堆乱放", 300, 0.8),
        ("占道与店外经营", 200, 0.8),
        ("乱停放", 90, 0.6),
        ("沿街晾挂", 240, 0.7),
        ("井盖与雨水口", 200, 0.6),
        ("垃圾箱", 480, 0.8),
        ("路灯", 1200, 0.7),
        ("绿化", 960, 0.8),
        ("施工渣土", 720, 0.9),
    ))
OTHER_EVENT = ClassTiming(OTHER_EVENT_GROUP, "", 240, 0.8)
OTHER_COMPONENT = ClassTiming(OTHER_COMPONENT_GROUP, "", 720, 0.9)


def timing_for(entry: ClassEntry) -> ClassTiming:
    """The handling-time group of a class (its group in ``dashboard/rules/classgroups.py``)."""
    group = class_group(entry)
    return next((t for t in CLASS_TIMINGS if t.group == group),
                OTHER_EVENT if group == OTHER_EVENT_GROUP else OTHER_COMPONENT)


@dataclass(frozen=True)
class UnitProfile:
    """How one 处置单位 works.

    - ``speed``: factor on the class's hands-on time (1 = typical, 2 = twice as slow);
    - ``crew``: cases it works on at once. A case dispatched to it while ``backlog`` of its
      cases are open waits: its time is multiplied by ``1 + backlog / crew`` (at most
      :attr:`Behaviour.max_queue_factor`) — a queue, so a unit with a small crew for its load
      falls behind exactly when it is busiest;
    - ``rework_rate``: chance that a 核查 finds its 处置 not done (返工, back to 处置);
    - ``extension_rate``: chance that it asks for a 延期 (approved; the work then takes longer).
    """

    code: str
    kind: str  # typical / slow / overloaded: what the seed made of it, for the doc and tests
    speed: float
    crew: float
    rework_rate: float
    extension_rate: float


@dataclass(frozen=True)
class Surge:
    """An injected surge: from ``start`` to ``end`` the ``classes`` of ``group`` are reported
    ``multiplier`` times as often as usual in ``grids`` (all of them in street ``street``), and
    at least ``min_extra_per_hour`` more cases an hour than usual (at the default 300 cases a
    day; scaled with the city's rate): a flood brings 积水 cases to streets that have almost
    none in dry weather, where a multiple of "almost none" would be nothing.

    A later bench scores surge detection against these (:meth:`Behaviour.surges`).
    """

    name: str  # 暴雨 / 集市
    start: datetime
    end: datetime
    street: str
    grids: tuple[str, ...]
    group: str  # the class group's name, e.g. 井盖与雨水口
    classes: tuple[tuple[str, str], ...]  # (kind, 小类 code)
    multiplier: float
    min_extra_per_hour: float = 0.0

    def active(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True)
class SurgeRule:
    """When and how strong one kind of surge happens.

    A rainstorm: on a day with probability ``chance_per_day``, starting at a local hour drawn
    from ``hours``, lasting ``duration_hours`` (lo, hi), over ``streets`` places of the
    matching kind. A market day (``weekdays`` set): every such weekday, fixed hours.
    """

    name: str
    group: str
    # "low_lying" (riverside grids of a street), "market" (a market street's grids) or a key of Behaviour.places
    places: str
    pattern: str  # 小类 names of the surging classes
    multiplier: tuple[float, float]
    min_extra_per_hour: float
    duration_hours: tuple[float, float]
    hours: tuple[int, int]  # local start hour range (inclusive)
    chance_per_day: float = 1.0
    weekdays: tuple[int, ...] = ()  # 0 = Monday; empty: any day, by chance
    streets: int = 1


RAINSTORM = SurgeRule("暴雨", "井盖与雨水口", "low_lying", r"雨水|污水|积水|箅子", multiplier=(6.0, 10.0),
                      min_extra_per_hour=3.0, duration_hours=(3.0, 5.0), hours=(13, 17), chance_per_day=0.12,
                      streets=2)
MARKET_DAY = SurgeRule("集市", "占道与店外经营", "market", r"占道经营|无照经营", multiplier=(4.0, 6.0),
                       min_extra_per_hour=2.0, duration_hours=(4.0, 4.0), hours=(7, 7), weekdays=(5,), streets=2)


@dataclass(frozen=True)
class Behaviour:
    """The simulated city's work model, drawn from ``seed`` for one city's units and grids.

    Defaults give, over a month of the demo city, 按期结案率 about 90 % and units graded
    from A to D (tests/test_behaviour.py keeps it so).
    """

    seed: int
    units: dict[str, UnitProfile]
    tz: ZoneInfo
    low_lying: dict[str, tuple[str, ...]]  # street -> its riverside grids (rainstorm places)
    market_streets: dict[str, tuple[str, ...]]  # street -> its land grids (market-day places)
    classes: Sequence[ClassEntry] = ()
    max_queue_factor: float = 10.0
    rules: tuple[SurgeRule, ...] = (RAINSTORM, MARKET_DAY)
    # More named place sets (street -> its grids) for rules of one's own, e.g. a bench's surges of busy streets
    places: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    _surge_cache: dict[date, tuple[Surge, ...]] = field(default_factory=dict, compare=False, repr=False)

    WELL_STAFFED: ClassVar[int] = 3

    @classmethod
    def for_city(cls, units: Iterable[str], grids: Sequence[SimGrid], classes: Sequence[ClassEntry],
                 tz: ZoneInfo, seed: int = 7, loads: dict[str, float] | None = None) -> Behaviour:
        """Draw unit profiles and surge places for a city (same seed, same city).

        ``loads`` (a unit's expected share of the cases) puts slow and overloaded units among
        the busy ones too: a city whose only slow units get three cases a month would grade
        every unit that matters A.
        """
        rng = random.Random(f"behaviour-{seed}")
        load = loads or {}
        codes = sorted(units, key=lambda c: (-load.get(c, 0.0), c))
        # The busiest units are well staffed (WELL_STAFFED of them: they carry most of the
        # city's cases, so the city's 按期结案率 stays near what real cities report); the kinds
        # of the rest are dealt in rounds down the list by load: every round of four has a
        # slow, an overloaded and two typical units, in a seeded order.
        kinds: list[str] = ["typical"] * cls.WELL_STAFFED
        while len(kinds) < len(codes):
            deal = ["slow", "overloaded", "typical", "typical"]
            rng.shuffle(deal)
            kinds += deal
        profiles: dict[str, UnitProfile] = {}
        for code, kind in zip(codes, kinds, strict=False):
            if kind == "slow":
                profiles[code] = UnitProfile(code, kind, rng.uniform(3.0, 6.0), rng.uniform(20, 40),
                                             rng.uniform(0.08, 0.15), rng.uniform(0.05, 0.10))
            elif kind == "overloaded":
                profiles[code] = UnitProfile(code, kind, rng.uniform(1.0, 1.3), rng.uniform(1, 2),
                                             rng.uniform(0.06, 0.12), rng.uniform(0.04, 0.08))
            else:
                profiles[code] = UnitProfile(code, kind, rng.uniform(0.5, 0.8), rng.uniform(25, 50),
                                             rng.uniform(0.02, 0.05), rng.uniform(0.01, 0.03))
        return cls(seed, profiles, tz, _low_lying(grids), _market_streets(grids), tuple(classes))

    def unit(self, code: str | None) -> UnitProfile:
        """The profile of a unit (an unknown unit works typically)."""
        if code and code in self.units:
            return self.units[code]
        return UnitProfile(code or "", "typical", 1.0, 30.0, 0.04, 0.02)

    def handling_minutes(self, rng: random.Random, entry: ClassEntry, unit: str | None, backlog: int) -> float:
        """Minutes from 派遣 to 处置 done: class time × unit speed × queue factor."""
        profile = self.unit(unit)
        queue = min(1.0 + backlog / profile.crew, self.max_queue_factor)
        return timing_for(entry).draw(rng) * profile.speed * queue

    # -- surges ----------------------------------------------------------------------------
    def surges(self, start: datetime, end: datetime) -> list[Surge]:
        """Every injected surge overlapping [start, end), by start time.

        Drawn per local day from the seed alone, so any window of the same city and seed lists
        the same surges, whatever the simulation that ran.
        """
        first = start.astimezone(self.tz).date() - timedelta(days=1)
        last = end.astimezone(self.tz).date()
        out: list[Surge] = []
        day = first
        while day <= last:
            out += [s for s in self._day_surges(day) if s.start < end and s.end > start]
            day += timedelta(days=1)
        return sorted(out, key=lambda s: (s.start, s.name, s.street))

    def _day_surges(self, day: date) -> tuple[Surge, ...]:
        cached = self._surge_cache.get(day)
        if cached is not None:
            return cached
        rng = random.Random(f"surges-{self.seed}-{day.isoformat()}")
        surges: list[Surge] = []
        for rule in self.rules:
            places = (self.low_lying if rule.places == "low_lying" else self.market_streets
                      if rule.places == "market" else self.places.get(rule.places, {}))
            if rule.weekdays:
                if day.weekday() not in rule.weekdays:
                    continue
            elif rng.random() >= rule.chance_per_day:
                continue
            classes = tuple((e.kind.value, e.minor_code) for e in self.classes
                            if re.search(rule.pattern, e.minor_name))
            streets = sorted(places)
            if not classes or not streets:
                continue
            if rule.weekdays:  # a market is held in the same streets every week
                chosen = random.Random(f"markets-{self.seed}").sample(streets, k=min(rule.streets, len(streets)))
            else:
                chosen = rng.sample(streets, k=min(rule.streets, len(streets)))
            hour = rng.randint(*rule.hours)
            begin = datetime.combine(day, time(hour), self.tz) + timedelta(minutes=rng.choice((0, 15, 30, 45)))
            hours = rng.uniform(*rule.duration_hours)
            multiplier = round(rng.uniform(*rule.multiplier), 1)
            for street in sorted(chosen):
                surges.append(Surge(rule.name, begin, begin + timedelta(hours=hours), street,
                                    places[street], rule.group, classes, multiplier, rule.min_extra_per_hour))
        result = tuple(surges)
        self._surge_cache[day] = result
        return result


def _low_lying(grids: Sequence[SimGrid]) -> dict[str, tuple[str, ...]]:
    """Land grids within ~250 m of the river: where a rainstorm floods first, per street."""
    water = [(g.lon, g.lat) for g in grids if g.water]
    if not water:
        return {}
    out: dict[str, list[str]] = {}
    for g in grids:
        if g.water:
            continue
        k = math.cos(math.radians(g.lat))
        near = min(math.hypot((g.lon - x) * k, g.lat - y) for x, y in water) * 111_000
        if near <= 250:
            out.setdefault(g.street, []).append(g.code)
    return {s: tuple(codes) for s, codes in out.items() if len(codes) >= 3}


def _market_streets(grids: Sequence[SimGrid]) -> dict[str, tuple[str, ...]]:
    """Streets with a 集贸市场 grid: their land grids (vendors spread along the streets)."""
    markets = {g.street for g in grids if g.land_use in ("集贸市场", "市场")}
    out: dict[str, list[str]] = {}
    for g in grids:
        if g.street in markets and not g.water:
            out.setdefault(g.street, []).append(g.code)
    return {s: tuple(codes) for s, codes in out.items()}


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw: Knuth's method for the small rates of one tick, normal beyond 50."""
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(rng.gauss(lam, lam ** 0.5)))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
