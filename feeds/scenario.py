"""What a simulated city does: where problems appear, of which class, and how cases run.

Shared by the live simulator (``gridhall simulate``) and the demo history builder, so the
30 days of history and the live stream look like the same city. Figures follow the city
reports in the project's reference: ~95% of cases come from supervisors (天门), illegal
small ads and exposed rubbish are the most frequent events, and supervisors patrol by day.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.rules.classification import ClassEntry, Classification
from dashboard.rules.lifecycle import EventType, Stage
from dashboard.rules.vocab import PUBLIC_SOURCES, Source
from dashboard.store.models import Grid, Person, Region, Unit, person_grids

from .behaviour import Behaviour, Surge, poisson, timing_for
from .defaults import DAILY_CASES

WATER = "水域"  # land use of the grids that cover rivers and lakes

# (name pattern, relative weight, unit name keywords in order of preference).
# Weights are shares of all cases; the remainder is spread over every other class.
CLASS_MIX: list[tuple[str, float, tuple[str, ...]]] = [
    (r"小广告", 26.0, ("城管执法", "环卫")),
    (r"暴露垃圾", 14.0, ("环卫",)),
    (r"道路不洁|道路保洁", 6.0, ("环卫",)),
    (r"乱堆", 5.0, ("环卫", "城管执法")),
    (r"店外经营|出店经营", 6.0, ("城管执法",)),
    (r"占道经营|无照经营", 5.0, ("城管执法", "市场监管")),
    (r"非机动车乱停放", 5.0, ("交通警察", "城管执法")),
    (r"机动车乱停放", 4.0, ("交通警察",)),
    (r"积存垃圾", 3.0, ("环卫",)),
    (r"沿街晾挂", 2.0, ("街道",)),
    (r"(污水|雨水|上水|供水)井盖", 4.0, ("自来水", "市政")),
    (r"垃圾(箱|桶)|果皮箱", 3.0, ("环卫",)),
    (r"路灯", 2.0, ("市政", "供电")),
    (r"绿地|行道树", 2.5, ("园林",)),
    (r"施工|渣土|工地", 2.5, ("住建", "城管执法")),
]
OTHER_WEIGHT = 5.0  # share spread over classes the mix does not name

# Problems that happen on water happen in water grids, and only there.
WATER_CLASS = re.compile(r"水域|河道|水面|河湖|漂浮")

# Source channel shares (the rest after supervisors).
SOURCES: list[tuple[Source, float]] = [
    (Source.SUPERVISOR, 95.0),
    (Source.HOTLINE_12345, 2.0),
    (Source.HOTLINE_12319, 1.0),
    (Source.PUBLIC, 0.8),
    (Source.VIDEO_IOT, 0.6),
    (Source.MAYOR_MAILBOX, 0.3),
    (Source.HIGHER_REFERRAL, 0.3),
]

LAND_USE_WEIGHT = {"商业": 3.0, "交通枢纽": 5.0, "市场": 4.0, "集贸市场": 4.0, "居住": 1.2,
                   "学校": 1.5, "医院": 1.5, "公园绿地": 1.3, "工业": 0.6, "在建工地": 2.0,
                   WATER: 0.25}
AREA_CLASS_WEIGHT = {"A": 1.6, "B": 1.0, "C": 0.6}

# Channels whose reports a 受理员 (acceptor) registers: the hotlines, letters, the public and
# referrals. Supervisors report from their devices; cameras and sensors report by themselves.
ACCEPTED_SOURCES = PUBLIC_SOURCES
# Share of closed cases called back (回访): every citizen's report, a sample of the rest.
CALLBACK_SHARE = {"accepted": 0.8, "other": 0.15}
# Call-back answers (1–5) of a case handled smoothly and of one that was late or reworked.
SCORES_SMOOTH = [(5, 55.0), (4, 30.0), (3, 10.0), (2, 3.0), (1, 2.0)]
SCORES_ROUGH = [(5, 15.0), (4, 25.0), (3, 30.0), (2, 18.0), (1, 12.0)]
# The 12345 platform answers with the three levels (满意/基本满意/不满意), the others with scores.
LEVELS = {5: "satisfied", 4: "satisfied", 3: "basically_satisfied", 2: "dissatisfied", 1: "dissatisfied"}

# Hourly share of supervisor reports (patrol hours) and of public reports, local time.
SUPERVISOR_HOURS = [0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 1.0, 3.0, 6.0, 8.0, 8.5, 7.0,
                    3.0, 4.0, 7.5, 8.0, 7.5, 5.0, 2.0, 1.0, 0.6, 0.4, 0.2, 0.15]
PUBLIC_HOURS = [0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.5, 1.0, 2.0, 2.5, 2.5, 2.2,
                1.8, 1.8, 2.2, 2.3, 2.3, 2.2, 2.0, 2.0, 1.8, 1.4, 0.9, 0.5]


@dataclass(frozen=True)
class SimGrid:
    code: str
    community: str
    street: str
    district: str
    lon: float
    lat: float
    geometry: BaseGeometry  # shapely polygon
    weight: float
    water: bool = False
    land_use: str = ""


@dataclass
class CityModel:
    """The simulation's picture of the city, read from the database."""

    tz: ZoneInfo
    grids: list[SimGrid]
    grid_weights: list[float]
    units: dict[str, str]  # code -> name
    unit_district: dict[str, str | None]  # code -> district code
    supervisors_by_grid: dict[str, list[str]]
    staff: dict[str, list[str]]  # role -> codes
    classes: list[ClassEntry]
    class_weights: list[float]  # for land grids
    class_units: dict[tuple[str, str], tuple[str, ...]]  # (kind, code) -> unit keywords
    region_names: dict[str, str] = field(default_factory=dict)
    hotspots: list[str] = field(default_factory=list)
    water_class_weights: list[float] = field(default_factory=list)
    behaviour: Behaviour | None = None  # units, handling times, surges (feeds/behaviour.py)
    unit_region: dict[str, str | None] = field(default_factory=dict)  # code -> its region's code

    @classmethod
    def load(cls, session: Session, classification: Classification, tz: ZoneInfo, seed: int = 7) -> CityModel:
        rng = random.Random(seed)
        regions = {code: (name, level, parent) for code, name, level, parent in session.execute(
            select(Region.code, Region.name, Region.level, Region.parent_id)).all()}
        region_names = {code: name for code, (name, _, _) in regions.items()}
        rows = session.execute(
            select(Grid.code, Grid.centroid_lon, Grid.centroid_lat, Grid.geometry,
                   Grid.land_use, Grid.area_class).order_by(Grid.code)
        ).all()
        grids: list[SimGrid] = []
        weights: list[float] = []
        for code, lon, lat, geom, land_use, area_class in rows:
            w = LAND_USE_WEIGHT.get(land_use or "", 1.0) * AREA_CLASS_WEIGHT.get(area_class, 1.0)
            w *= rng.lognormvariate(0, 0.6)  # every block is a little different
            grids.append(SimGrid(code, code[:12], code[:9], code[:6], lon, lat,
                                 shape(json.loads(geom)), w, land_use == WATER, land_use or ""))
            weights.append(w)
        # A handful of persistent hot spots: markets, school gates, station squares.
        land = [i for i, g in enumerate(grids) if not g.water]
        hot = rng.sample(land, k=min(12, len(land))) if land else []
        for i in hot:
            weights[i] *= rng.uniform(8, 20)
        units = dict(session.execute(select(Unit.code, Unit.name)).all())
        unit_region = dict(session.execute(
            select(Unit.code, Region.code).join(Region, Unit.region_id == Region.id, isouter=True)
        ).all())
        unit_district = {u: (r[:6] if r else None) for u, r in unit_region.items()}
        sup_rows = session.execute(
            select(Grid.code, Person.code).join(person_grids, person_grids.c.grid_id == Grid.id)
            .join(Person, Person.id == person_grids.c.person_id)
        ).all()
        supervisors_by_grid: dict[str, list[str]] = {}
        for gcode, pcode in sup_rows:
            supervisors_by_grid.setdefault(gcode, []).append(pcode)
        staff: dict[str, list[str]] = {}
        for code, role in session.execute(select(Person.code, Person.role)).all():
            staff.setdefault(role, []).append(code)
        classes, class_weights, class_units = _class_mix(classification)
        is_water = [bool(WATER_CLASS.search(e.minor_name)) for e in classes]
        land_weights = [0.0 if wet else w for w, wet in zip(class_weights, is_water, strict=False)]
        # Every water class gets at least a little weight, whatever the mix says.
        water_weights = [max(w, 1.0) if wet else 0.0 for w, wet in zip(class_weights, is_water, strict=False)]
        if not any(water_weights):
            water_weights = land_weights  # a scheme without water classes: anything goes
        behaviour = Behaviour.for_city(units, grids, classes, tz, seed,
                                       _unit_loads(units, unit_district, grids, weights, classes,
                                                   land_weights, class_units))
        return cls(tz, grids, weights, units, unit_district, supervisors_by_grid, staff,
                   classes, land_weights, class_units, region_names,
                   [grids[i].code for i in hot], water_weights, behaviour, dict(unit_region))


def _unit_loads(units: dict[str, str], unit_district: dict[str, str | None], grids: list[SimGrid],
                grid_weights: list[float], classes: list[ClassEntry], class_weights: list[float],
                class_units: dict[tuple[str, str], tuple[str, ...]]) -> dict[str, float]:
    """Each unit's expected share of the cases, following :meth:`Planner._unit_for`'s choice."""
    district_share: dict[str, float] = {}
    for g, w in zip(grids, grid_weights, strict=True):
        district_share[g.district] = district_share.get(g.district, 0.0) + w
    total_grid = sum(district_share.values()) or 1.0
    total_class = sum(class_weights) or 1.0
    loads = dict.fromkeys(units, 0.0)
    for entry, cw in zip(classes, class_weights, strict=True):
        keys = class_units.get((entry.kind.value, entry.minor_code), ("城管执法",))
        for district, dw in district_share.items():
            pick = unit_choices(units, unit_district, keys, district)
            for c in pick:
                loads[c] += cw / total_class * dw / total_grid / len(pick)
    return loads


def unit_choices(units: dict[str, str], unit_district: dict[str, str | None], keys: Iterable[str],
                 district: str) -> list[str]:
    """The units a case of ``district`` may be dispatched to: for the first keyword any unit
    has, the district's own units with it, else the city's (no district). Never another
    district's unit — a 区 bureau does not work in its neighbour's district. Empty: no unit
    has any keyword (the street office handles it, 属地兜底)."""
    for key in keys:
        named = [c for c, n in units.items() if key in n]
        pick = ([c for c in named if unit_district.get(c) == district]
                or [c for c in named if unit_district.get(c) is None])
        if pick:
            return pick
    return []


def _class_mix(
    classification: Classification,
) -> tuple[list[ClassEntry], list[float], dict[tuple[str, str], tuple[str, ...]]]:
    entries = list(classification)
    weights = [0.0] * len(entries)
    units: dict[tuple[str, str], tuple[str, ...]] = {}
    named = set()
    for pattern, share, unit_keys in CLASS_MIX:
        matches = [i for i, e in enumerate(entries)
                   if re.search(pattern, e.minor_name) and i not in named]
        # Prefer events over component anomalies for event-like names, components for parts.
        for i in matches:
            weights[i] += share / len(matches)
            units[(entries[i].kind.value, entries[i].minor_code)] = unit_keys
            named.add(i)
    rest = [i for i in range(len(entries)) if i not in named]
    for i in rest:
        weights[i] = OTHER_WEIGHT / max(1, len(rest))
    return entries, weights, units


@dataclass(frozen=True)
class PlannedEvent:
    """An event a simulated case will emit at ``at``."""

    at: datetime
    type: EventType
    fields: dict[str, Any]  # the event's payload fields, JSON values


def _working(at: datetime, tz: ZoneInfo, rng: random.Random, speedup: float = 1.0) -> datetime:
    """Handling work happens by day: push night-time actions to the next morning.

    A sped-up city (``--speedup``) works around the clock: compressing handling into
    minutes while still waiting for the morning would leave a night-time demo frozen.
    """
    if speedup > 1:
        return at
    local = at.astimezone(tz)
    if local.hour >= 22 or local.hour < 7:
        morning = local.replace(hour=7, minute=30, second=0, microsecond=0)
        if local.hour >= 22:
            morning += timedelta(days=1)
        return (morning + timedelta(minutes=rng.uniform(0, 90))).astimezone(at.tzinfo)
    return at


class Planner:
    """Draws new cases and plans their path through the closed loop."""

    def __init__(self, city: CityModel, rng: random.Random, speedup: float = 1.0) -> None:
        self.city = city
        self.rng = rng
        self.speedup = speedup
        self.behaviour = city.behaviour or Behaviour.for_city(city.units, city.grids, city.classes, city.tz)
        # unit -> planned 处置-done times of its open cases: the queue a new case joins
        self._open: dict[str, list[datetime]] = {}
        self._grid_index = {g.code: i for i, g in enumerate(city.grids)}
        self._class_index = {(e.kind.value, e.minor_code): i for i, e in enumerate(city.classes)}
        self._cums: dict[str, list[float]] = {}  # cumulative weights of the city's draws

    def backlog(self, unit: str | None, at: datetime) -> int:
        """Cases dispatched to ``unit`` (by this planner) still waiting for 处置 at ``at``."""
        heap = self._open.get(unit or "")
        while heap and heap[0] <= at:
            heapq.heappop(heap)
        return len(heap) if heap else 0

    def _queue(self, unit: str | None, done: datetime) -> None:
        if unit:
            heapq.heappush(self._open.setdefault(unit, []), done)

    # -- surges ----------------------------------------------------------------------------
    def usual_rate(self, surge: Surge, at: datetime, daily_cases: float) -> float:
        """Cases per hour of the surge's classes in its grids at ``at``, without the surge."""
        city = self.city
        grid_share = sum(city.grid_weights[self._grid_index[g]] for g in surge.grids
                         if g in self._grid_index) / (sum(city.grid_weights) or 1.0)
        class_share = sum(city.class_weights[self._class_index[c]] for c in surge.classes
                          if c in self._class_index) / (sum(city.class_weights) or 1.0)
        return self.hourly_rate(at, daily_cases) * grid_share * class_share

    def extra_rate(self, surge: Surge, at: datetime, daily_cases: float) -> float:
        """Extra cases per hour the surge brings at ``at``: (multiplier − 1) × usual, or its floor."""
        floor = surge.min_extra_per_hour * daily_cases / DAILY_CASES
        return max((surge.multiplier - 1) * self.usual_rate(surge, at, daily_cases), floor)

    def surge_arrivals(self, start: datetime, end: datetime, daily_cases: float) -> list[tuple[datetime, Surge]]:
        """The extra cases the surges bring in [start, end): (time, surge), by time."""
        out: list[tuple[datetime, Surge]] = []
        for surge in self.behaviour.surges(start, end):
            lo, hi = max(start, surge.start), min(end, surge.end)
            hours = (hi - lo).total_seconds() / 3600
            extra = self.extra_rate(surge, lo, daily_cases) * hours * self.speedup
            out += [(lo + (hi - lo) * self.rng.random(), surge) for _ in range(poisson(self.rng, extra))]
        return sorted(out, key=lambda pair: pair[0])

    # -- arrivals ---------------------------------------------------------------------
    def hourly_rate(self, at: datetime, daily_cases: float) -> float:
        """Expected new cases per hour at ``at`` (local rhythm, weekday/weekend)."""
        local = at.astimezone(self.city.tz)
        weekend = local.weekday() >= 5
        sup = SUPERVISOR_HOURS[local.hour] / sum(SUPERVISOR_HOURS) * (0.55 if weekend else 1.0)
        pub = PUBLIC_HOURS[local.hour] / sum(PUBLIC_HOURS) * (1.1 if weekend else 1.0)
        return daily_cases * (0.95 * sup + 0.05 * pub)

    def hour_arrivals(self, hour_start: datetime, hour_end: datetime,
                      daily_cases: float) -> list[tuple[datetime, Surge | None]]:
        """New cases' times in [hour_start, hour_end) (within one hour), by time: the usual ones
        (None) and the surges' extra ones. The history builder and the benches draw from here."""
        rng = self.rng
        span = (hour_end - hour_start).total_seconds() / 3600
        n = poisson(rng, self.hourly_rate(hour_start, daily_cases) * span)
        arrivals: list[tuple[datetime, Surge | None]] = [
            (hour_start + (hour_end - hour_start) * rng.random(), None) for _ in range(n)]
        arrivals += self.surge_arrivals(hour_start, hour_end, daily_cases)
        return sorted(arrivals, key=lambda pair: pair[0])

    def place_and_class(self, surge: Surge | None = None) -> tuple[SimGrid, ClassEntry]:
        """Where a new case is and what it is (one of ``surge``'s grids and classes)."""
        rng, city = self.rng, self.city
        if surge is not None:
            grids = [city.grids[self._grid_index[g]] for g in surge.grids]
            grid = rng.choices(grids, weights=[g.weight for g in grids])[0]
            entries = [city.classes[self._class_index[c]] for c in surge.classes]
            entry = rng.choices(entries, weights=[city.class_weights[self._class_index[c]] + 0.01
                                                   for c in surge.classes])[0]
        else:
            # cum_weights, summed once: the same draws as weights= (random.choices sums them so), in O(log n)
            grid = rng.choices(city.grids, cum_weights=self._cum("grids", city.grid_weights))[0]
            weights = city.water_class_weights if grid.water else city.class_weights
            entry = rng.choices(city.classes, cum_weights=self._cum("water" if grid.water else "land", weights))[0]
        return grid, entry

    def _cum(self, name: str, weights: list[float]) -> list[float]:
        cum = self._cums.get(name)
        if cum is None:
            cum = self._cums[name] = list(itertools.accumulate(weights))
        return cum

    def new_case(self, case_id: str, number: str, at: datetime, surge: Surge | None = None) -> list[PlannedEvent]:
        """A fresh case reported at ``at``, with its whole planned future (one of ``surge``'s)."""
        rng, city = self.rng, self.city
        grid, entry = self.place_and_class(surge)
        source = rng.choices([s for s, _ in SOURCES], weights=[w for _, w in SOURCES])[0]
        lon, lat = self._point_in(grid)
        supervisors = city.supervisors_by_grid.get(grid.code) or city.staff.get("supervisor", ["system"])
        if source is Source.SUPERVISOR:
            actor = rng.choice(supervisors)
        elif source in ACCEPTED_SOURCES and city.staff.get("acceptor"):
            actor = rng.choice(city.staff["acceptor"])  # the 受理员 who registered it
        else:
            actor = source.value
        street = city.region_names.get(grid.street, "")
        community = city.region_names.get(grid.community, "")
        spots = ["河段", "沿河步道旁", "桥下水面"] if grid.water else [
            "路口", "沿街", "小区门口", "公交站旁", "商铺前", "绿地旁"]
        address = f"{street}{community}{rng.choice(spots)}"
        fields = {
            "number": number,
            "source": source.value,
            "kind": entry.kind.value,
            "class_code": entry.minor_code,
            "grid_code": grid.code,
            "lon": round(lon, 6),
            "lat": round(lat, 6),
            "address": address,
            "description": f"{address}发现{entry.minor_name}，请尽快处置。",
            "urgency": "urgent" if rng.random() < 0.03 else "normal",
            "actor": actor,
        }
        plan = [PlannedEvent(at, EventType.REPORTED, fields)]
        plan += self.plan_from(Stage.REPORTED, at, entry, grid, source)
        return plan

    def _point_in(self, grid: SimGrid) -> tuple[float, float]:
        minx, miny, maxx, maxy = grid.geometry.bounds
        for _ in range(50):
            x, y = self.rng.uniform(minx, maxx), self.rng.uniform(miny, maxy)
            if grid.geometry.contains(Point(x, y)):
                return x, y
        return grid.lon, grid.lat

    # -- the path through the loop -------------------------------------------------------
    def _minutes(self, lo: float, hi: float) -> timedelta:
        return timedelta(minutes=self.rng.uniform(lo, hi) / self.speedup)

    def _unit_for(self, entry: ClassEntry, grid: SimGrid) -> str | None:
        keys = self.city.class_units.get((entry.kind.value, entry.minor_code), ("城管执法",))
        units = self.city.units
        pick = unit_choices(units, self.city.unit_district, keys, grid.district)
        if pick:
            return self.rng.choice(pick)
        # 属地兜底: what no department owns goes to the street office of the grid's street.
        office = [c for c in units if self.city.unit_region.get(c) == grid.street]
        return self.rng.choice(office or list(units)) if units else None

    def plan_from(self, stage: Stage, at: datetime, entry: ClassEntry, grid: SimGrid,
                  source: Source, unit: str | None = None) -> list[PlannedEvent]:
        """Plan the remaining events of a case that stands at ``stage`` at time ``at``."""
        rng, tz = self.rng, self.city.tz
        staff = self.city.staff
        plan: list[PlannedEvent] = []
        t = at
        rough = False  # late or reworked: the call-back will be answered worse

        def add(kind: EventType, **fields: object) -> None:
            plan.append(PlannedEvent(t, kind, {k: v for k, v in fields.items() if v is not None}))

        def pick(role: str) -> str | None:
            return rng.choice(staff[role]) if staff.get(role) else None

        if stage is Stage.REPORTED:
            if source is not Source.SUPERVISOR:
                t += self._minutes(10, 50) if rng.random() > 0.02 else self._minutes(60, 180)
                t = _working(t, tz, rng, self.speedup)
                if rng.random() < 0.06:
                    add(EventType.REJECTED, actor=pick("shift_lead"))
                    return plan
                add(EventType.VERIFIED, actor=rng.choice(self.city.supervisors_by_grid.get(grid.code) or ["system"]))
            elif rng.random() < 0.03:
                t += self._minutes(5, 30)
                add(EventType.SELF_HANDLED, actor=pick("supervisor"))
                t += self._minutes(10, 60)
                add(EventType.CLOSED, actor=pick("shift_lead"))
                plan += self._callback(t, source, rough=False)
                return plan
            stage = Stage.VERIFIED
        if stage is Stage.VERIFIED:
            t += self._minutes(3, 20) if rng.random() > 0.01 else self._minutes(30, 90)
            add(EventType.FILED, actor=pick("shift_lead"))
            stage = Stage.FILED
        if stage in (Stage.FILED, Stage.RETURNED):
            t += self._minutes(3, 20) if rng.random() > 0.01 else self._minutes(30, 90)
            unit = self._unit_for(entry, grid)
            add(EventType.DISPATCHED, unit_code=unit, actor=pick("dispatcher"))
            if rng.random() < 0.025:
                t += self._minutes(20, 180)
                add(EventType.RETURNED, actor=unit)
                t += self._minutes(10, 60)
                unit = self._unit_for(entry, grid)
                add(EventType.DISPATCHED, unit_code=unit, actor=pick("dispatcher"))
            stage = Stage.DISPATCHED
        if stage in (Stage.DISPATCHED, Stage.SUSPENDED):
            if stage is Stage.DISPATCHED and rng.random() < 0.01:
                t += self._minutes(60, 600)
                add(EventType.SUSPENDED, actor=pick("dispatcher"))
                stage = Stage.SUSPENDED
            if stage is Stage.SUSPENDED:
                # 挂账: long or seasonal work parked outside the time limit; most come back
                # within days or weeks, the rest stay in the 问题库.
                if rng.random() < 0.4:
                    return plan
                t += self._minutes(1 * 1440, 20 * 1440)
                t = _working(t, tz, rng, self.speedup)
                add(EventType.RESUMED, actor=pick("dispatcher"))
            behaviour = self.behaviour
            profile = behaviour.unit(unit)
            work = behaviour.handling_minutes(rng, entry, unit, self.backlog(unit, t))
            rough = work > 3 * timing_for(entry).median_minutes  # slow enough for the caller to feel it
            if rng.random() < profile.extension_rate:
                t += self._minutes(30, 240)
                add(EventType.EXTENSION_REQUESTED, actor=unit)
                t += self._minutes(10, 90)
                add(EventType.EXTENSION_APPROVED, actor=pick("shift_lead"))
                work *= 1.5
            t += timedelta(minutes=work / self.speedup)
            t = _working(t, tz, rng, self.speedup)
            self._queue(unit, t)
            add(EventType.HANDLED, actor=unit)
            stage = Stage.HANDLED
        if stage is Stage.HANDLED:
            t += self._check_delay()
            t = _working(t, tz, rng, self.speedup)
            reworks = 0
            while reworks < 2 and rng.random() < self.behaviour.unit(unit).rework_rate:
                # 返工: the 核查 finds it not done; back to the same unit, a shorter second go
                rough = True
                reworks += 1
                add(EventType.REWORK, actor=pick("supervisor"))
                t += timedelta(minutes=0.5 * self.behaviour.handling_minutes(rng, entry, unit, self.backlog(unit, t))
                               / self.speedup)
                t = _working(t, tz, rng, self.speedup)
                self._queue(unit, t)
                add(EventType.HANDLED, actor=unit)
                t += self._check_delay()
                t = _working(t, tz, rng, self.speedup)
            add(EventType.CHECKED_OK, actor=rng.choice(self.city.supervisors_by_grid.get(grid.code) or ["system"]))
            stage = Stage.CHECKED
        if stage is Stage.CHECKED:
            t += self._minutes(3, 30)
            add(EventType.CLOSED, actor=pick("shift_lead"))
            plan += self._callback(t, source, rough)
        return plan

    def _check_delay(self) -> timedelta:
        """From 处置 done to the supervisor's 核查: mostly within the hour, a tail beyond."""
        return self._minutes(10, 45) if self.rng.random() > 0.015 else self._minutes(60, 180)

    def _callback(self, closed_at: datetime, source: Source, rough: bool) -> list[PlannedEvent]:
        """The call-back (回访评价) of a case closed at ``closed_at``, if it gets one.

        A day or three after 结案, in office hours, by a 受理员; a late or reworked case is
        answered worse, so the demo's 社会评价 follows its units' work.
        """
        rng = self.rng
        share = CALLBACK_SHARE["accepted" if source in ACCEPTED_SOURCES else "other"]
        if rng.random() >= share:
            return []
        table = SCORES_ROUGH if rough else SCORES_SMOOTH
        score = rng.choices([s for s, _ in table], weights=[w for _, w in table])[0]
        answer: int | str = LEVELS[score] if source is Source.HOTLINE_12345 else score
        at = _working(closed_at + self._minutes(18 * 60, 72 * 60), self.city.tz, rng, self.speedup)
        acceptors = self.city.staff.get("acceptor")
        fields: dict[str, Any] = {"satisfaction": answer}
        if acceptors:
            fields["actor"] = rng.choice(acceptors)
        return [PlannedEvent(at, EventType.RATED, fields)]
