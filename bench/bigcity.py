"""A synthetic megacity for the wall benchmark, built fast: 100,000 grids and 1,000,000 open cases.

    python bench/bigcity.py                          # 100k grids, 1M open cases, PostgreSQL
    python bench/bigcity.py --grids 20000 --cases 200000 --keep
    python bench/bigcity.py --sqlite /tmp/big.db --grids 5000 --cases 50000
    python bench/bigcity.py --smoke                  # tiny (seconds): checks it runs

``build(settings, grids, open_cases, seed)`` fills an *empty* database (the schema comes from
``dashboard.store.db.upgrade``) with:

- regions: 区 → 街道 → 社区 (by default 10 districts, ~130 streets, ~1,560 communities), each
  with a polygon (unions of its grid blocks), codes ``9902DD`` + 3 + 3 (``9902`` is no real
  GB/T 2260 prefix, like the demo city's ``9901``);
- unit grids: ~100 m squares (0.00104° × 0.0009°, ~10,000 m²) in WGS84 around lon 120.1, lat
  30.2, 15-digit codes = community code + sequence numbered west→east, north→south; area class
  A/B/C by distance from the centre; geodesic area and centroid stored like the importer does;
- ~300 处置单位 (plus one 城管执法局 per district as their parent department);
- the active classification mirrored into SQL (``sync_classification``);
- open cases over the grids with hot spots, every open stage (mostly 派遣), the stored stage
  clock (deadline from the limits table and working calendar, the way ``dashboard.store.casebook``
  computes it), on-time flags of finished clocks, and ``fold_state``/``max_key`` as the
  casebook writes them, so that a later event of such a case applies incrementally.

The cases have **no rows in case_events** (their history is synthetic): an event that sorts
*after* a case's ``max_key`` applies to the stored state like any live event; one that lands
inside the (absent) history makes the casebook re-fold from case_events, i.e. from nothing.

On PostgreSQL, grids and cases go in with ``COPY … FREEZE`` in one transaction; the secondary
indexes and constraints of ``cases`` are dropped before the COPY and rebuilt after it (a bulk
index build is much faster than a million index insertions); then ``VACUUM ANALYZE``.

``group_by_baseline(engine)`` times the SQL a query-per-refresh dashboard runs on every refresh
(open cases per grid, overdue per unit, the KPI counts), 5 runs each, median ms.

The script makes a fresh PostgreSQL schema (``--pg-url``, default ``benchkit.DEFAULT_PG_URL``,
the database created when missing), builds, prints the figures and the baseline, and
drops the schema unless ``--keep`` (then it prints the GRIDHALL_DATABASE_URL to use).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from pyproj import Geod
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.rules import classification as classification_mod  # noqa: E402
from dashboard.rules.geo import to_geojson  # noqa: E402
from dashboard.rules.lifecycle import EventType  # noqa: E402
from dashboard.rules.workcalendar import US_PER_MIN  # noqa: E402
from dashboard.settings import Settings, load_settings  # noqa: E402
from dashboard.store import db  # noqa: E402
from dashboard.store.models import Case, Grid, Region, Unit  # noqa: E402
from dashboard.store.reference import sync_classification, timing_for  # noqa: E402
from feeds.scenario import CLASS_MIX, OTHER_WEIGHT, SOURCES, WATER_CLASS  # noqa: E402

__all__ = ["BigCity", "build", "group_by_baseline", "OPEN_STAGE_SHARES"]

# -- the plan of the city ------------------------------------------------------------------
DISTRICT_PREFIX = "9902"  # not a real GB/T 2260 prefix (99 is no province)
CENTER_U = (120_100_000, 30_200_000)  # lon, lat in micro-degrees
DX_U, DY_U = 1040, 900  # one grid cell: 0.00104° lon × 0.0009° lat ≈ 100 m × 100 m at 30.2° N
COMMUNITY_SIDE = 8  # a community is a block of up to 8 × 8 grids (≈ 64 grids)
STREET_SLOTS = (4, 3)  # a street is up to 4 × 3 community blocks (≈ 12 communities)
VALID_FROM = "2026-01-01"
DISPOSAL_UNITS = 300

_DISTRICT_NAMES = ["清波区", "望江区", "云栖区", "梅城区", "湖墅区", "良渚区", "之江区", "半山区", "龙坞区", "潮鸣区"]
_STREET_A = "东西南北中上下前后新老大小长金银玉石青白红翠明光"
_STREET_B = "湖桥山塘溪港湾坝岭园林苑门坊亭井洲渚浦滩"
_COMMUNITY_A = ("翠柳桃梧紫金南东西北银桂丁海玉芙荷莲长松凤锦和幸光春朝晨新人建红友团"
                "育书文学天明江滨望清白湖月青双三五七九石枫梅杏樱兰竹安康怡瑞永嘉宏")
_COMMUNITY_B = "园苑里村庄坊湾港门桥"
_SPOTS = ["路口", "沿街", "小区门口", "公交站旁", "商铺前", "绿地旁"]
_LAND_USES = [("居住", 40), ("商业", 12), ("商住混合", 10), ("行政办公", 4), ("学校", 4), ("医院", 2),
              ("集贸市场", 2), ("交通枢纽", 1), ("公园绿地", 10), ("工业", 8), ("物流仓储", 4), ("在建工地", 3)]
_UNIT_KINDS = ["环卫所", "市政养护所", "园林绿化所", "城管执法中队", "排水管理所", "路灯管理所",
               "交警中队", "市场监管所"]

# Open stages, their shares among open cases (mostly 派遣), and the event that led to each.
OPEN_STAGE_SHARES: dict[str, float] = {
    "reported": 0.06, "verified": 0.02, "filed": 0.05, "dispatched": 0.60,
    "returned": 0.02, "handled": 0.13, "checked": 0.04, "suspended": 0.08,
}
_STAGES = list(OPEN_STAGE_SHARES)
_S = {name: i for i, name in enumerate(_STAGES)}
_LAST_EVENT = {
    "reported": EventType.REPORTED, "verified": EventType.VERIFIED, "filed": EventType.FILED,
    "dispatched": EventType.DISPATCHED, "returned": EventType.RETURNED, "handled": EventType.HANDLED,
    "checked": EventType.CHECKED_OK, "suspended": EventType.SUSPENDED,
}
_EVENT_RANK = {t: i for i, t in enumerate(EventType)}  # as dashboard.store.casebook.sort_key ranks them
_CLOCKS = ["verify", "file", "dispatch", "handle", "check", "close"]
_C = {name: i for i, name in enumerate(_CLOCKS)}
_URGENT_SHARE = 0.03
_MAX_AGE_S = 30 * 86400 - 600  # every case was reported within the last 30 days
_US = 1_000_000
_HOUR, _DAY = 3600, 86400
_NULL = "\\N"


@dataclass
class BigCity:
    """What :func:`build` made, and how long each step took (seconds)."""

    backend: str
    url: str
    grids: int
    districts: int
    streets: int
    communities: int
    units: int
    disposal_units: int
    classes: int
    open_cases: int
    by_stage: dict[str, int]
    urgent: int
    overdue: int  # stored deadline passed at ``now`` and not 挂账
    reported_today: int
    dispatched_with_unit: int
    max_cases_per_grid: int
    bounds: tuple[float, float, float, float]  # min lon, min lat, max lon, max lat
    center: tuple[float, float]
    now: datetime
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return self.timings.get("total", sum(self.timings.values()))


# -- helpers -------------------------------------------------------------------------------
def _split(total: int, parts: int) -> list[int]:
    """``total`` as ``parts`` sizes differing by at most one (larger ones first)."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _deg(u: int) -> str:
    return repr(u / 1e6)


def _block_polygon(x0: int, ytop: int, n: int, side: int, dx: int, dy: int) -> shapely.Polygon:
    """The cells 0..n-1 of a block ``side`` wide filled row by row from its north-west corner."""
    full, rem = divmod(n, side)
    parts = []
    if full:
        parts.append(shapely.box(x0 / 1e6, (ytop - full * dy) / 1e6, (x0 + side * dx) / 1e6, ytop / 1e6))
    if rem:
        parts.append(shapely.box(x0 / 1e6, (ytop - (full + 1) * dy) / 1e6, (x0 + rem * dx) / 1e6,
                                 (ytop - full * dy) / 1e6))
    return parts[0] if len(parts) == 1 else shapely.union_all(parts)


@dataclass
class _Plan:
    regions: list[dict[str, Any]]
    grid_codes: list[str]
    grid_comm: np.ndarray  # index into communities
    grid_col: np.ndarray
    grid_row: np.ndarray
    grid_area_class: np.ndarray  # 0 A, 1 B, 2 C
    comm_region_id: np.ndarray
    comm_street: np.ndarray
    comm_district: np.ndarray
    comm_names: list[str]
    n_districts: int
    n_streets: int
    x0_u: int
    ytop_u: int
    width: int
    height: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        cols, rows = self.grid_col, self.grid_row
        return ((self.x0_u + int(cols.min()) * DX_U) / 1e6, (self.ytop_u - (int(rows.max()) + 1) * DY_U) / 1e6,
                (self.x0_u + (int(cols.max()) + 1) * DX_U) / 1e6, (self.ytop_u - int(rows.min()) * DY_U) / 1e6)


def _plan(n_grids: int, n_districts: int, rng: np.random.Generator) -> _Plan:
    side = COMMUNITY_SIDE
    scols, srows = STREET_SLOTS
    n_comm = max(1, math.ceil(n_grids / side**2))
    n_street = max(1, math.ceil(n_comm / (scols * srows)))
    n_dist = max(1, min(n_districts, n_street, 99))
    grids_per_comm = _split(n_grids, n_comm)
    comms_per_street = _split(n_comm, n_street)
    streets_per_dist = _split(n_street, n_dist)
    if max(grids_per_comm) > 999 or max(comms_per_street) > 999 or max(streets_per_dist) > 999:
        raise ValueError("too many regions for 3-digit codes")
    sw, sh = scols * side, srows * side  # street block in cells
    spd = max(streets_per_dist)
    dc = max(1, math.ceil(math.sqrt(spd * sh / sw)))
    dr = math.ceil(spd / dc)
    dw, dh = dc * sw, dr * sh  # district block in cells
    nx = max(1, math.ceil(math.sqrt(n_dist * dh / dw)))
    ny = math.ceil(n_dist / nx)
    width, height = nx * dw, ny * dh
    x0_u = CENTER_U[0] - (width * DX_U) // 2
    ytop_u = CENTER_U[1] + (height * DY_U) // 2

    regions: list[dict[str, Any]] = []
    comm_rows: list[dict[str, Any]] = []
    cols: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    comm_of: list[np.ndarray] = []
    codes: list[str] = []
    comm_street: list[int] = []
    comm_district: list[int] = []
    comm_names: list[str] = []
    district_rows: list[dict[str, Any]] = []
    street_rows: list[dict[str, Any]] = []
    street_index = 0
    comm_index = 0
    for d in range(n_dist):
        dcode = f"{DISTRICT_PREFIX}{d + 1:02d}"
        dname = _DISTRICT_NAMES[d] if d < len(_DISTRICT_NAMES) else f"第{d + 1}区"
        dcol, drow = (d % nx) * dw, (d // nx) * dh
        drow_: dict[str, Any] = {"code": dcode, "name": dname, "level": "district", "parent": None, "polys": []}
        district_rows.append(drow_)
        for s in range(streets_per_dist[d]):
            scode = f"{dcode}{s + 1:03d}"
            sname = (_STREET_A[street_index % len(_STREET_A)]
                     + _STREET_B[(street_index // len(_STREET_A)) % len(_STREET_B)] + "街道")
            scol, srow = dcol + (s % dc) * sw, drow + (s // dc) * sh
            srow_: dict[str, Any] = {"code": scode, "name": sname, "level": "street", "parent": dcode, "polys": []}
            street_rows.append(srow_)
            for c in range(comms_per_street[street_index]):
                ccode = f"{scode}{c + 1:03d}"
                cname = (_COMMUNITY_A[comm_index % len(_COMMUNITY_A)]
                         + _COMMUNITY_B[(comm_index // len(_COMMUNITY_A)) % len(_COMMUNITY_B)] + "社区")
                ccol, crow = scol + (c % scols) * side, srow + (c // scols) * side
                n = grids_per_comm[comm_index]
                k = np.arange(n)
                cols.append(ccol + k % side)
                rows.append(crow + k // side)
                comm_of.append(np.full(n, comm_index, dtype=np.int32))
                codes.extend(f"{ccode}{i:03d}" for i in range(1, n + 1))
                poly = _block_polygon(x0_u + ccol * DX_U, ytop_u - crow * DY_U, n, side, DX_U, DY_U)
                comm_rows.append({"code": ccode, "name": cname, "level": "community", "parent": scode,
                                  "geom": poly})
                srow_["polys"].append(poly)
                comm_street.append(street_index)
                comm_district.append(d)
                comm_names.append(cname)
                comm_index += 1
            street_index += 1

    for r in street_rows:
        r["geom"] = shapely.union_all(r.pop("polys"))
    by_code = {r["code"]: r for r in district_rows}
    for r in street_rows:
        by_code[r["parent"]]["polys"].append(r["geom"])
    for r in district_rows:
        r["geom"] = shapely.union_all(r.pop("polys"))
    regions = district_rows + street_rows + comm_rows
    ids = {r["code"]: i for i, r in enumerate(regions, start=1)}
    for r in regions:
        r["id"] = ids[r["code"]]
        r["parent_id"] = ids[r["parent"]] if r["parent"] else None

    grid_col = np.concatenate(cols).astype(np.int32)
    grid_row = np.concatenate(rows).astype(np.int32)
    # 管理等级 by distance from the middle of the city: A core, B, C outskirts.
    cx, cy = width / 2, height / 2
    dist = np.hypot((grid_col + 0.5 - cx) / cx, (grid_row + 0.5 - cy) / cy) / math.sqrt(2)
    area_class = np.where(dist < 0.18, 0, np.where(dist < 0.5, 1, 2)).astype(np.int8)
    first_comm = len(district_rows) + len(street_rows) + 1
    return _Plan(
        regions=regions, grid_codes=codes, grid_comm=np.concatenate(comm_of), grid_col=grid_col,
        grid_row=grid_row, grid_area_class=area_class,
        comm_region_id=np.arange(first_comm, first_comm + comm_index, dtype=np.int64),
        comm_street=np.array(comm_street, dtype=np.int32), comm_district=np.array(comm_district, dtype=np.int32),
        comm_names=comm_names, n_districts=n_dist, n_streets=street_index, x0_u=x0_u, ytop_u=ytop_u,
        width=width, height=height,
    )


def _units(plan: _Plan, n_disposal: int) -> tuple[list[dict[str, Any]], list[np.ndarray], list[np.ndarray]]:
    """One 城管执法局 per district and ``n_disposal`` 处置单位 spread over the districts.

    Returns the unit rows, and per district the ids of its disposal units and their weights
    (a few units get most of the work, as in real cities).
    """
    districts = [r for r in plan.regions if r["level"] == "district"]
    streets_of: dict[str, list[dict[str, Any]]] = {}
    for r in plan.regions:
        if r["level"] == "street":
            streets_of.setdefault(r["parent"], []).append(r)
    rows: list[dict[str, Any]] = []
    ids: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    per = _split(max(n_disposal, len(districts)), len(districts))
    uid = 0
    for d, region in enumerate(districts):
        uid += 1
        head = uid
        rows.append({"id": head, "code": f"DW{region['code']}01", "name": f"{region['name']}城管执法局",
                     "kind": "department", "region_id": region["id"], "parent_id": None})
        mine = []
        streets = streets_of.get(region["code"], [region])
        for k in range(per[d]):
            uid += 1
            street = streets[k % len(streets)]
            kind = _UNIT_KINDS[k % len(_UNIT_KINDS)]
            rows.append({"id": uid, "code": f"DW{region['code']}{k + 100:03d}",
                         "name": f"{street['name'][:-2]}{kind}", "kind": "disposal",
                         "region_id": street["id"], "parent_id": head})
            mine.append(uid)
        ids.append(np.array(mine, dtype=np.int64))
        w = 1.0 / np.arange(1, len(mine) + 1) ** 0.8
        weights.append(w / w.sum())
    return rows, ids, weights


def _class_weights(classification: classification_mod.Classification) -> tuple[list[Any], np.ndarray]:
    """Every class of the scheme with the simulator's case mix (no water classes: no water grids)."""
    import re

    entries = list(classification)
    w = np.zeros(len(entries))
    named: set[int] = set()
    for pattern, share, _units in CLASS_MIX:
        hits = [i for i, e in enumerate(entries) if re.search(pattern, e.minor_name) and i not in named]
        for i in hits:
            w[i] += share / len(hits)
            named.add(i)
    rest = [i for i in range(len(entries)) if i not in named]
    for i in rest:
        w[i] = OTHER_WEIGHT / max(1, len(rest))
    for i, e in enumerate(entries):
        if WATER_CLASS.search(e.minor_name):
            w[i] = 0.0
    if not w.sum():
        w[:] = 1.0
    return entries, w / w.sum()


# -- the cases -----------------------------------------------------------------------------
def _exp(rng: np.random.Generator, mean_s: float, n: int) -> np.ndarray:
    return np.maximum(rng.exponential(mean_s, n), 1.0)


class _Deadlines:
    """Stage deadlines the way dashboard.rules.deadlines.clock_for computes them (table source), vectorised."""

    def __init__(self, timing: Any, entries: list[Any]) -> None:
        self.timing = timing
        self.entries = entries
        self.cal = timing.calendar
        self._cache: dict[int, tuple[float, bool, str]] = {}

    def _row(self, key: int) -> tuple[float, bool, str]:
        got = self._cache.get(key)
        if got is None:
            rest, area = divmod(key, 3)
            rest, urgent = divmod(rest, 2)
            clock, cls = divmod(rest, len(self.entries))
            e = self.entries[cls]
            row = self.timing.limits.lookup(_CLOCKS[clock], e.kind.value, e.major_code, e.minor_code,
                                            "urgent" if urgent else "normal", "ABC"[area])
            got = self._cache[key] = (row.minutes(self.cal.minutes_per_day), row.working, row.unit)
        return got

    def __call__(self, clock: np.ndarray, cls: np.ndarray, urgent: np.ndarray, area: np.ndarray,
                 start_us: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(deadline µs, limit minutes, unit index into _UNITS) for clocks started at ``start_us``."""
        keys = ((clock.astype(np.int64) * len(self.entries) + cls) * 2 + urgent) * 3 + area
        uniq, inverse = np.unique(keys, return_inverse=True)
        table = [self._row(int(k)) for k in uniq]
        minutes = np.array([t[0] for t in table])[inverse]
        working = np.array([t[1] for t in table], dtype=bool)[inverse]
        unit = np.array([_UNITS.index(t[2]) for t in table], dtype=np.int8)[inverse]
        deadline = start_us + np.rint(minutes * US_PER_MIN).astype(np.int64)  # 自然时
        if working.any():
            starts = start_us[working].view("datetime64[us]")
            due = self.cal.from_offsets(self.cal.offsets(starts) + minutes[working])
            deadline[working] = due.view(np.int64)
        return deadline, minutes, unit


_UNITS = ["work_hours", "work_days", "calendar_hours"]


@dataclass
class _Cases:
    n: int
    grid: np.ndarray
    stage: np.ndarray
    cls: np.ndarray
    urgent: np.ndarray
    source: np.ndarray
    unit: np.ndarray  # unit id or 0
    lon_u: np.ndarray
    lat_u: np.ndarray
    spot: np.ndarray
    times: dict[str, np.ndarray]  # µs since epoch (naive UTC), NAT_US when absent
    last_us: np.ndarray
    clock: np.ndarray
    clock_start: np.ndarray
    deadline: np.ndarray
    limit_minutes: np.ndarray
    limit_unit: np.ndarray
    paused: np.ndarray
    on_time: dict[str, np.ndarray]  # -1 NULL, 0 false, 1 true
    events: np.ndarray  # number of events in the synthetic history


NAT_US = np.iinfo(np.int64).min  # numpy's NaT as int64


def _grid_weights(plan: _Plan, rng: np.random.Generator) -> np.ndarray:
    """Cases per grid: a lognormal background plus hot spots (markets, stations, sites)."""
    n = len(plan.grid_codes)
    w = rng.lognormal(0.0, 0.9, n)
    n_hot = max(3, n // 2500)
    centres = rng.integers(0, n, n_hot)
    x, y = plan.grid_col.astype(np.float64), plan.grid_row.astype(np.float64)
    for c in centres:
        sigma = rng.uniform(1.5, 6.0)
        peak = rng.uniform(8, 40)
        d2 = (x - x[c]) ** 2 + (y - y[c]) ** 2
        near = d2 < (4 * sigma) ** 2
        w[near] += peak * np.exp(-d2[near] / (2 * sigma**2))
    weights: np.ndarray = w / w.sum()
    return weights


def _cases(plan: _Plan, n: int, rng: np.random.Generator, entries: list[Any], class_p: np.ndarray,
           unit_ids: list[np.ndarray], unit_w: list[np.ndarray], deadlines: _Deadlines, now_us: int) -> _Cases:
    grid = rng.choice(len(plan.grid_codes), size=n, p=_grid_weights(plan, rng))
    stage = rng.choice(len(_STAGES), size=n, p=np.array(list(OPEN_STAGE_SHARES.values())))
    cls = rng.choice(len(entries), size=n, p=class_p).astype(np.int32)
    urgent = (rng.random(n) < _URGENT_SHARE).astype(np.int8)
    src_names = [s.value for s, _ in SOURCES]
    src_p = np.array([w for _, w in SOURCES], dtype=np.float64)
    source = rng.choice(len(src_names), size=n, p=src_p / src_p.sum()).astype(np.int8)
    sup = src_names.index("supervisor")
    # 核实 only happens to reports that do not come from a supervisor.
    verified = stage == _S["verified"]
    source[verified & (source == sup)] = (sup + 1) % len(src_names)
    nonsup = source != sup

    st = stage
    at = lambda *names: np.isin(st, [_S[x] for x in names])  # noqa: E731
    r_ver = nonsup & ~(st == _S["reported"])
    r_fil = at("filed", "dispatched", "returned", "handled", "checked", "suspended")
    r_dis = at("dispatched", "returned", "handled", "checked", "suspended")
    r_ret = st == _S["returned"]
    r_han = at("handled", "checked")
    r_chk = st == _S["checked"]
    r_sus = st == _S["suspended"]

    # Seconds before now of the last event: desk steps are quick, 处置 takes days.
    age = np.empty(n)
    desk = at("reported", "verified", "filed", "returned")
    age[desk] = _exp(rng, 2.5 * _HOUR, int(desk.sum()))
    for name, mean in (("handled", 5 * _HOUR), ("checked", 3 * _HOUR), ("suspended", 3 * _DAY)):
        m = st == _S[name]
        age[m] = _exp(rng, mean, int(m.sum()))
    m = st == _S["dispatched"]
    k = int(m.sum())
    age[m] = np.where(rng.random(k) < 0.75, _exp(rng, 1.3 * _DAY, k), rng.uniform(60, 28 * _DAY, k))

    # Walk the history backwards from the last event (seconds before now).
    back = {name: np.full(n, np.nan) for name in ("rep", "ver", "fil", "dis", "ret", "han", "chk", "sus")}
    last_name = {"reported": "rep", "verified": "ver", "filed": "fil", "dispatched": "dis", "returned": "ret",
                 "handled": "han", "checked": "chk", "suspended": "sus"}
    for sname, key in last_name.items():
        m = st == _S[sname]
        back[key][m] = age[m]
    back["han"][r_chk] = back["chk"][r_chk] + _exp(rng, 3 * _HOUR, int(r_chk.sum()))
    back["dis"][r_han] = back["han"][r_han] + _exp(rng, 1.2 * _DAY, int(r_han.sum()))
    back["dis"][r_sus] = back["sus"][r_sus] + _exp(rng, 1.0 * _DAY, int(r_sus.sum()))
    back["dis"][r_ret] = back["ret"][r_ret] + _exp(rng, 4 * _HOUR, int(r_ret.sum()))
    back["fil"][r_dis] = back["dis"][r_dis] + _exp(rng, 30 * 60, int(r_dis.sum()))
    m = r_fil & nonsup
    back["ver"][m] = back["fil"][m] + _exp(rng, 40 * 60, int(m.sum()))
    m = r_fil & ~nonsup
    back["rep"][m] = back["fil"][m] + _exp(rng, 30 * 60, int(m.sum()))
    back["rep"][r_ver] = back["ver"][r_ver] + _exp(rng, 40 * 60, int(r_ver.sum()))
    # Everything reported within the last 30 days: squeeze the older histories.
    scale = np.minimum(1.0, _MAX_AGE_S / back["rep"])
    times: dict[str, np.ndarray] = {}
    for key, secs in back.items():
        missing = np.isnan(secs)
        us = now_us - np.rint(np.where(missing, 0.0, secs * scale)).astype(np.int64) * _US  # whole seconds
        times[key] = np.where(missing, NAT_US, us)
    last_us = np.choose(st, [times[last_name[s]] for s in _STAGES])

    # The running clock of each stage, and when it started.
    clock_of = {"reported": None, "verified": "file", "filed": "dispatch", "dispatched": "handle",
                "returned": "dispatch", "handled": "check", "checked": "close", "suspended": "handle"}
    clock = np.empty(n, dtype=np.int8)
    for sname, cname in clock_of.items():
        clock[st == _S[sname]] = _C[cname] if cname else 0
    m = (st == _S["reported"]) & ~nonsup
    clock[m] = _C["file"]  # a supervisor's own report skips 核实
    m = (st == _S["reported"]) & nonsup
    clock[m] = _C["verify"]
    start_key = {"reported": "rep", "verified": "ver", "filed": "fil", "dispatched": "dis", "returned": "ret",
                 "handled": "han", "checked": "chk", "suspended": "dis"}
    clock_start = np.choose(st, [times[start_key[s]] for s in _STAGES])

    # Units: every case that went through 派遣 has one, from its district.
    district = plan.comm_district[plan.grid_comm[grid]]
    unit = np.zeros(n, dtype=np.int64)
    for d in range(plan.n_districts):
        m = r_dis & (district == d)
        k = int(m.sum())
        if k and len(unit_ids[d]):
            unit[m] = rng.choice(unit_ids[d], size=k, p=unit_w[d])

    area = plan.grid_area_class[grid].astype(np.int64)
    deadline, minutes, lunit = deadlines(clock, cls, urgent, area, clock_start)

    # On-time flags of the clocks already finished (judged against their own deadlines).
    on_time = {c: np.full(n, -1, dtype=np.int8) for c in _CLOCKS}

    def judge(name: str, mask: np.ndarray, start: np.ndarray, finish: np.ndarray) -> None:
        if not mask.any():
            return
        c = np.full(int(mask.sum()), _C[name], dtype=np.int8)
        due, _, _ = deadlines(c, cls[mask], urgent[mask], area[mask], start[mask])
        on_time[name][mask] = (finish[mask] <= due).astype(np.int8)

    judge("verify", r_ver, times["rep"], times["ver"])
    judge("file", r_fil, np.where(nonsup, times["ver"], times["rep"]), times["fil"])
    judge("dispatch", r_dis, times["fil"], times["dis"])
    judge("handle", r_han, times["dis"], times["han"])
    judge("check", r_chk, times["han"], times["chk"])

    events = 1 + r_ver.astype(np.int8) + r_fil + r_dis + r_ret + r_han + r_chk + r_sus
    # A point inside the grid, 6 decimals.
    col, row = plan.grid_col[grid].astype(np.int64), plan.grid_row[grid].astype(np.int64)
    lon_u = plan.x0_u + col * DX_U + rng.integers(1, DX_U, n)
    lat_u = plan.ytop_u - row * DY_U - rng.integers(1, DY_U, n)
    return _Cases(
        n=n, grid=grid, stage=stage, cls=cls, urgent=urgent, source=source, unit=unit, lon_u=lon_u, lat_u=lat_u,
        spot=rng.integers(0, len(_SPOTS), n), times=times, last_us=last_us, clock=clock, clock_start=clock_start,
        deadline=deadline, limit_minutes=minutes, limit_unit=lunit,
        paused=np.where(r_sus, times["sus"], NAT_US), on_time=on_time, events=events,
    )


# COPY column order: per-row values first, then the categorical ones (one precomputed segment
# per combination), then fold_state. Every column of ``cases`` but none twice.
CASE_COLUMNS = (
    "id", "case_id", "number", "grid_id", "lon", "lat", "address", "description", "unit_id",
    "reported_at", "verified_at", "filed_at", "dispatched_at", "handled_at", "checked_at", "last_event_at",
    "clock_started_at", "deadline_at", "paused_at", "max_key", "kind", "class_code",
    "source", "urgency", "stage", "rework_count", "return_count", "extension_count", "closed_at", "clock_stage",
    "deadline_source", "limit_minutes", "limit_unit", "on_time_verify", "on_time_file", "on_time_dispatch",
    "on_time_handle", "on_time_check", "on_time_close", "fold_state",
)
_TS_COLUMNS = frozenset(c for c in CASE_COLUMNS if c.endswith("_at"))
_BOOL_COLUMNS = frozenset(c for c in CASE_COLUMNS if c.startswith("on_time_"))
GRID_COLUMNS = ("id", "code", "community_id", "geometry", "area_m2", "area_class", "land_use",
                "centroid_lon", "centroid_lat", "valid_from", "valid_to")


class _CaseText:
    """Case rows as COPY text lines, built with one f-string per row.

    The columns that take few values (stage, source, urgency, clock, limit, on-time flags) are
    formatted once per distinct combination; timestamps come from per-day and per-second
    string tables. That keeps the Python cost near 3 µs a row for ~800-byte rows.
    """

    def __init__(self, cs: _Cases, plan: _Plan, entries: list[Any], unit_codes: dict[int, str]) -> None:
        self.cs, self.plan = cs, plan
        src_names = [s.value for s, _ in SOURCES]
        self.cls_seg = [f"{e.kind.value}\t{e.minor_code}" for e in entries]
        self.cls_json = [f'"kind":"{e.kind.value}","class_code":"{e.minor_code}"' for e in entries]
        self.minor = [e.minor_name for e in entries]
        n_units = max(unit_codes, default=0) + 1
        self.unit_sql = [_NULL] + [str(u) for u in range(1, n_units)]
        self.unit_json = [""] + [f',"unit_code":"{unit_codes.get(u, "")}"' for u in range(1, n_units)]
        self.address = [name + spot for name in plan.comm_names for spot in _SPOTS]

        # One segment per combination of the categorical columns.
        lim_vals, lim_idx = np.unique(cs.limit_minutes, return_inverse=True)
        key = cs.stage.astype(np.int64)
        for arr, size in ((cs.source, len(src_names)), (cs.urgent, 2), (cs.clock, len(_CLOCKS)),
                          (cs.limit_unit, len(_UNITS)), (lim_idx, len(lim_vals))):
            key = key * size + arr
        for c in _CLOCKS:
            key = key * 3 + (cs.on_time[c] + 1)
        _, first, self.combo = np.unique(key, return_index=True, return_inverse=True)
        flag = {-1: _NULL, 0: "f", 1: "t"}
        self.combos: list[tuple[str, str, str, str, str]] = []
        for i in first.tolist():
            stage = _STAGES[cs.stage[i]]
            source = src_names[cs.source[i]]
            urgency = "urgent" if cs.urgent[i] else "normal"
            clock = _CLOCKS[cs.clock[i]]
            flags = "\t".join(flag[int(cs.on_time[c][i])] for c in _CLOCKS)
            seg = (f"{source}\t{urgency}\t{stage}\t0\t{1 if stage == 'returned' else 0}\t0\t{_NULL}\t{clock}\t"
                   f"table\t{float(cs.limit_minutes[i])!r}\t{_UNITS[cs.limit_unit[i]]}\t{flags}")
            json_ = f'"source":"{source}","urgency":"{urgency}"'
            rank = f"|{_EVENT_RANK[_LAST_EVENT[stage]]:02d}|"
            sbs = '"dispatched"' if stage == "suspended" else "null"
            self.combos.append((seg, json_, rank, sbs, clock))

        # Timestamps: day prefix + time of day; NULL is one more entry of each table.
        stamps = [cs.last_us, cs.clock_start, cs.deadline, cs.paused, *cs.times.values()]
        valid = np.concatenate([a[a != NAT_US] for a in stamps])
        self.day0 = int(valid.min() // (86400 * _US))
        last_day = int(valid.max() // (86400 * _US))
        epoch = np.datetime64(0, "D")
        self.days = [str(epoch + np.timedelta64(d, "D")) + "T" for d in range(self.day0, last_day + 1)] + [_NULL]
        self.secs = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)] + [""]
        self.secs_us = [f"{s}.000000" for s in self.secs[:-1]] + [""]

    def _stamps(self, us: np.ndarray, micro: bool = False) -> list[str]:
        """ISO text of µs instants (NAT_US → NULL); ``micro``: always with 6 decimals (sort keys)."""
        nat = us == NAT_US
        if (us[~nat] % _US).any():  # sub-second instants: the general (slower) way
            s = np.datetime_as_string(us.view("datetime64[us]"), unit="us").astype(object)
            s[nat] = _NULL
            texts: list[str] = s.tolist()
            return texts
        sec = np.where(nat, 0, us // _US)
        day = np.where(nat, len(self.days) - 1, sec // 86400 - self.day0).tolist()
        tod = np.where(nat, 86400, sec % 86400).tolist()
        days, secs = self.days, (self.secs_us if micro else self.secs)
        return [days[d] + secs[t] for d, t in zip(day, tod, strict=False)]

    def text(self, lo: int, hi: int) -> str:
        cs, plan = self.cs, self.plan
        sl = slice(lo, hi)
        ids = range(lo + 1, hi + 1)
        grid = cs.grid[sl]
        grid_codes = plan.grid_codes
        gcode = [grid_codes[g] for g in grid.tolist()]
        address = self.address
        addr = [address[a] for a in (plan.grid_comm[grid].astype(np.int64) * len(_SPOTS) + cs.spot[sl]).tolist()]
        minor = self.minor
        desc = [f"发现{minor[c]}，请尽快处置。" for c in cs.cls[sl].tolist()]
        lon = [f"{v // 1_000_000}.{v % 1_000_000:06d}" for v in cs.lon_u[sl].tolist()]
        lat = [f"{v // 1_000_000}.{v % 1_000_000:06d}" for v in cs.lat_u[sl].tolist()]
        t = cs.times
        rep, ver, fil, dis, han, chk = (self._stamps(t[k][sl]) for k in ("rep", "ver", "fil", "dis", "han", "chk"))
        last = self._stamps(cs.last_us[sl])
        last_key = self._stamps(cs.last_us[sl], micro=True)
        start = self._stamps(cs.clock_start[sl])
        deadline = self._stamps(cs.deadline[sl])
        paused = self._stamps(cs.paused[sl])
        pauses = [f'[["{p}+00:00",null]]' if p != _NULL else "[]" for p in paused]
        cls = cs.cls[sl].tolist()
        unit = cs.unit[sl].tolist()
        combos = self.combos
        cls_seg, cls_json, unit_sql, unit_json = self.cls_seg, self.cls_json, self.unit_sql, self.unit_json
        out = []
        gids = (grid + 1).tolist()  # grid ids are 1..n in plan order
        for (i, g, gc, lo_, la, a, d, c, u, r1, r2, r3, r4, r5, r6, le, lk, st, dl, pa, ps, b, nev) in zip(
                ids, gids, gcode, lon, lat, addr, desc, cls, unit, rep, ver, fil, dis, han, chk, last, last_key,
                start, deadline, paused, pauses, self.combo[sl].tolist(), cs.events[sl].tolist(), strict=False):
            seg, bj, rank, sbs, clock = combos[b]
            out.append(
                f"{i}\tBC{i:08d}\tDS{i:08d}\t{g}\t{lo_}\t{la}\t{a}\t{d}\t{unit_sql[u]}\t"
                f"{r1}\t{r2}\t{r3}\t{r4}\t{r5}\t{r6}\t{le}\t{st}\t{dl}\t{pa}\t{lk}{rank}BC{i:08d}:{nev}\t"
                f"{cls_seg[c]}\t{seg}\t"
                f'{{"stage_before_suspension":{sbs},"values":{{"number":"DS{i:08d}",{bj},{cls_json[c]},'
                f'"grid_code":"{gc}","lon":{lo_},"lat":{la},"address":"{a}","description":"{d}"{unit_json[u]}}},'
                f'"skipped":0,"clock":{{"stage":"{clock}","started_at":"{st}+00:00","pauses":{ps},'
                f'"extensions":[]}}}}\n'
            )
        return "".join(out)

    def rows(self, lo: int, hi: int) -> list[tuple[Any, ...]]:
        """The same rows as Python values for SQLite (as SQLAlchemy would have written them)."""
        conv = []
        for name in CASE_COLUMNS:
            if name in _TS_COLUMNS:
                conv.append(lambda v: None if v == _NULL else v.replace("T", " ") + (".000000" if len(v) == 19 else ""))
            elif name in _BOOL_COLUMNS:
                conv.append(lambda v: None if v == _NULL else int(v == "t"))
            else:
                conv.append(lambda v: None if v == _NULL else v)
        return [tuple(f(v) for f, v in zip(conv, line.split("\t"), strict=False))
                for line in self.text(lo, hi).splitlines()]


def _grid_columns(plan: _Plan, sqlite: bool, rng: np.random.Generator) -> list[list[Any]]:
    n = len(plan.grid_codes)
    geod = Geod(ellps="WGS84")
    xs = [_deg(plan.x0_u + c * DX_U) for c in range(plan.width + 1)]
    ys = [_deg(plan.ytop_u - r * DY_U) for r in range(plan.height + 1)]
    area_by_row = []
    for r in range(plan.height):
        top, bottom = (plan.ytop_u - r * DY_U) / 1e6, (plan.ytop_u - (r + 1) * DY_U) / 1e6
        a, _ = geod.polygon_area_perimeter([0.0, DX_U / 1e6, DX_U / 1e6, 0.0], [bottom, bottom, top, top])
        area_by_row.append(round(abs(a), 1))
    cols, rows = plan.grid_col.tolist(), plan.grid_row.tolist()
    geometry = [
        f'{{"type":"Polygon","coordinates":[[[{xs[c]},{ys[r + 1]}],[{xs[c + 1]},{ys[r + 1]}],'
        f'[{xs[c + 1]},{ys[r]}],[{xs[c]},{ys[r]}],[{xs[c]},{ys[r + 1]}]]]}}'
        for c, r in zip(cols, rows, strict=False)
    ]
    clon = np.round((plan.x0_u + (plan.grid_col + 0.5) * DX_U) / 1e6, 7)
    clat = np.round((plan.ytop_u - (plan.grid_row + 0.5) * DY_U) / 1e6, 7)
    names = [u for u, _ in _LAND_USES]
    p = np.array([w for _, w in _LAND_USES], dtype=np.float64)
    land = rng.choice(len(names), size=n, p=p / p.sum()).tolist()
    ids = list(range(1, n + 1))
    comm_ids = plan.comm_region_id[plan.grid_comm].tolist()
    area = [area_by_row[r] for r in rows]
    area_class = ["ABC"[a] for a in plan.grid_area_class.tolist()]
    land_use = [names[i] for i in land]
    if sqlite:
        return [ids, plan.grid_codes, comm_ids, geometry, area, area_class, land_use, clon.tolist(),
                clat.tolist(), [VALID_FROM] * n, [None] * n]
    return [[str(i) for i in ids], plan.grid_codes, [str(c) for c in comm_ids], geometry,
            [repr(a) for a in area], area_class, land_use, clon.astype(str).tolist(), clat.astype(str).tolist(),
            [VALID_FROM] * n, [_NULL] * n]


# -- writing -------------------------------------------------------------------------------
def _copy(raw: Any, table: str, columns: tuple[str, ...], texts: Any, freeze: bool) -> None:
    """COPY text (an iterable of UTF-8 bytes, whole lines) into ``table``."""
    opts = " WITH (FREEZE)" if freeze else ""
    with raw.cursor() as cur:
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN{opts}") as copy:
            for data in texts:
                copy.write(data)


def _produce(queue: Any, case_text: _CaseText, spans: list[tuple[int, int]]) -> None:
    for lo, hi in spans:
        queue.put(case_text.text(lo, hi).encode())
    queue.put(None)


def _texts(case_text: _CaseText, spans: list[tuple[int, int]]) -> Any:
    """The COPY text of every span, formatted in a forked process while this one sends.

    Formatting (Python) and parsing (the PostgreSQL backend) then run on two cores instead of
    taking turns. Falls back to formatting in-process where fork is not available.
    """
    import multiprocessing as mp

    if "fork" not in mp.get_all_start_methods():
        yield from (case_text.text(lo, hi).encode() for lo, hi in spans)
        return
    ctx = mp.get_context("fork")
    queue = ctx.Queue(maxsize=3)
    proc = ctx.Process(target=_produce, args=(queue, case_text, spans), daemon=True)
    proc.start()
    try:
        while (data := queue.get(timeout=600)) is not None:
            yield data
    finally:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.terminate()


def _secondary_ddl(conn: Any, table: str) -> tuple[list[str], list[str]]:
    """(drop statements, re-create statements) of a table's indexes and unique/foreign keys."""
    cons = conn.execute(text(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = CAST(:t AS regclass) AND contype IN ('u', 'f')"), {"t": table}).all()
    idx = conn.execute(text(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = CAST(:t AS regclass) AND NOT x.indisprimary "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"), {"t": table}).all()
    # Foreign keys of other tables that point at this one (alerts → cases.case_id) hold its unique
    # keys: dropped first, made again last.
    refs = conn.execute(text(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE confrelid = CAST(:t AS regclass) AND conrelid <> confrelid AND contype = 'f'"), {"t": table}).all()
    drops = [f'ALTER TABLE {other} DROP CONSTRAINT "{n}"' for other, n, _ in refs]
    drops += [f'ALTER TABLE {table} DROP CONSTRAINT "{n}"' for n, _ in cons] + [f'DROP INDEX "{n}"' for n, _ in idx]
    # Indexes first (unique constraints build their own), foreign keys last (one validating join each).
    creates = [d for _, d in idx] + [f'ALTER TABLE {table} ADD CONSTRAINT "{n}" {d}' for n, d in cons
                                      if not d.startswith("FOREIGN")]
    creates += [f'ALTER TABLE {table} ADD CONSTRAINT "{n}" {d}' for n, d in cons if d.startswith("FOREIGN")]
    creates += [f'ALTER TABLE {other} ADD CONSTRAINT "{n}" {d}' for other, n, d in refs]
    return drops, creates


def build(settings: Settings, grids: int = 100_000, open_cases: int = 1_000_000, seed: int = 1,
          *, districts: int = 10, disposal_units: int = DISPOSAL_UNITS, now: datetime | None = None,
          chunk: int = 50_000, progress: Callable[[str], None] | None = None) -> BigCity:
    """Build the megacity into the (empty) database of ``settings``; migrates it to head first."""
    say = progress or (lambda _msg: None)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    mark = time.perf_counter()

    def step(name: str) -> None:
        nonlocal mark
        t = time.perf_counter()
        timings[name] = t - mark
        mark = t
        say(f"{name}: {timings[name]:.2f}s")

    now = now or datetime.now(UTC)
    now_us = int((now - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
    now_us -= now_us % _US
    rng = np.random.default_rng(seed)

    db.upgrade(settings)
    engine = db.make_engine(settings)
    backend = engine.dialect.name
    sqlite = backend == "sqlite"
    with engine.connect() as conn:
        for model in (Region, Grid, Unit, Case):
            if conn.execute(select(func.count()).select_from(model)).scalar_one():
                raise RuntimeError(f"build() needs an empty database: {model.__tablename__} has rows "
                                   f"({settings.effective_database_url})")
    step("schema")

    timing = timing_for(settings)
    scheme = timing.classification
    assert scheme is not None  # Timing.from_settings always sets it
    entries, class_p = _class_weights(scheme)
    plan = _plan(grids, districts, rng)
    unit_rows, unit_ids, unit_w = _units(plan, disposal_units)
    unit_codes = {r["id"]: r["code"] for r in unit_rows}
    grid_cols = _grid_columns(plan, sqlite, rng)
    step("plan")

    deadlines = _Deadlines(timing, entries)
    cs = _cases(plan, open_cases, rng, entries, class_p, unit_ids, unit_w, deadlines, now_us)
    case_text = _CaseText(cs, plan, entries, unit_codes)
    step("cases_generate")

    region_rows = [{"id": r["id"], "code": r["code"], "name": r["name"], "level": r["level"],
                    "parent_id": r["parent_id"], "geometry": to_geojson(r["geom"])} for r in plan.regions]
    with engine.begin() as conn:
        if not sqlite:
            conn.execute(text("SET LOCAL synchronous_commit = off"))
            conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
            # COPY … FREEZE needs the tables truncated in this transaction (they are empty).
            conn.execute(text("TRUNCATE grids, cases CASCADE"))
        for level in ("district", "street", "community"):
            conn.execute(insert(Region.__table__), [r for r in region_rows if r["level"] == level])
        conn.execute(insert(Unit.__table__), [r for r in unit_rows if r["parent_id"] is None])
        conn.execute(insert(Unit.__table__), [r for r in unit_rows if r["parent_id"] is not None])
        with Session(bind=conn) as session:
            sync_classification(session, scheme)
            session.flush()
        step("regions_units_classes")

        spans = [(lo, min(lo + chunk, cs.n)) for lo in range(0, cs.n, chunk)]
        if sqlite:
            marks = ", ".join("?" * len(GRID_COLUMNS))
            conn.exec_driver_sql(f"INSERT INTO grids ({', '.join(GRID_COLUMNS)}) VALUES ({marks})",
                                 list(zip(*grid_cols, strict=False)))
            step("grids_write")
            marks = ", ".join("?" * len(CASE_COLUMNS))
            for lo, hi in spans:
                conn.exec_driver_sql(f"INSERT INTO cases ({', '.join(CASE_COLUMNS)}) VALUES ({marks})",
                                     case_text.rows(lo, hi))
            step("cases_write")
        else:
            raw = conn.connection.driver_connection
            _copy(raw, "grids", GRID_COLUMNS,
                  [("\n".join(map("\t".join, zip(*grid_cols, strict=False))) + "\n").encode()], freeze=True)
            step("grids_write")
            drops, creates = _secondary_ddl(conn, "cases")
            for ddl in drops:
                conn.execute(text(ddl))
            _copy(raw, "cases", CASE_COLUMNS, _texts(case_text, spans), freeze=True)
            step("cases_write")
            for ddl in creates:
                conn.execute(text(ddl))
            for table in ("regions", "units", "grids", "cases", "classification"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT max(id) FROM {table}))"))
            step("cases_indexes")
    if sqlite:
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    else:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("cases", "grids", "regions", "units", "classification"):
                conn.execute(text(f"VACUUM (ANALYZE) {table}"))
    step("analyze")
    engine.dispose()
    timings["total"] = time.perf_counter() - t_all

    today_start = datetime.combine(now.astimezone(settings.tz).date(), datetime.min.time(), tzinfo=settings.tz)
    today_us = int((today_start - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
    overdue = int(((cs.deadline < now_us) & (cs.paused == NAT_US)).sum())
    per_grid = np.bincount(cs.grid, minlength=len(plan.grid_codes))
    levels = [r["level"] for r in plan.regions]
    return BigCity(
        backend=backend, url=settings.effective_database_url, grids=len(plan.grid_codes),
        districts=levels.count("district"), streets=levels.count("street"), communities=levels.count("community"),
        units=len(unit_rows), disposal_units=sum(1 for r in unit_rows if r["kind"] == "disposal"),
        classes=len(scheme), open_cases=cs.n,
        by_stage={s: int((cs.stage == i).sum()) for i, s in enumerate(_STAGES)},
        urgent=int(cs.urgent.sum()), overdue=overdue,
        reported_today=int((cs.times["rep"] >= today_us).sum()),
        dispatched_with_unit=int((cs.unit > 0).sum()), max_cases_per_grid=int(per_grid.max()) if cs.n else 0,
        bounds=plan.bounds, center=(CENTER_U[0] / 1e6, CENTER_U[1] / 1e6), now=now, timings=timings,
    )


# -- the query-per-refresh baseline --------------------------------------------------------
def group_by_baseline(engine: Engine, *, tz: ZoneInfo | None = None, now: datetime | None = None,
                      repeat: int = 5) -> dict[str, dict[str, Any]]:
    """Median ms of what a dashboard that re-queries SQL on every refresh would run.

    ``open_per_grid`` (GROUP BY grid_id over the open stages: the heatmap), ``overdue_per_unit``
    (stored deadline passed, not 挂账, GROUP BY unit_id: the unit ranking), and the KPI counts:
    ``kpi_today`` (dashboard.store.queries.today_counts), ``open_by_stage`` (dashboard.store.queries), and
    ``overdue_total``. ``per_refresh`` is the sum of the medians.
    """
    from dashboard.store import queries

    tz = tz or ZoneInfo("Asia/Shanghai")
    now = now or datetime.now(UTC)
    open_values = [s.value for s in queries.OPEN_STAGES]
    overdue = (Case.stage.in_(open_values), Case.deadline_at < now, Case.paused_at.is_(None))

    def open_per_grid(s: Session) -> int:
        return len(s.execute(select(Case.grid_id, func.count()).where(Case.stage.in_(open_values))
                             .group_by(Case.grid_id)).all())

    def overdue_per_unit(s: Session) -> int:
        return len(s.execute(select(Case.unit_id, func.count()).where(*overdue)
                             .group_by(Case.unit_id)).all())

    def kpi_today(s: Session) -> int:
        queries.today_counts(s, tz, now)
        return 1

    def open_by_stage(s: Session) -> int:
        return len(queries.open_by_stage(s))

    def overdue_total(s: Session) -> int:
        return int(s.execute(select(func.count()).select_from(Case).where(*overdue)).scalar_one())

    out: dict[str, dict[str, Any]] = {}
    with Session(engine) as session:
        for name, fn in (("open_per_grid", open_per_grid), ("overdue_per_unit", overdue_per_unit),
                         ("kpi_today", kpi_today), ("open_by_stage", open_by_stage),
                         ("overdue_total", overdue_total)):
            runs, rows = [], 0
            for _ in range(repeat):
                t0 = time.perf_counter()
                rows = fn(session)
                runs.append((time.perf_counter() - t0) * 1000)
                session.rollback()  # a fresh snapshot per run, as separate refreshes have
            out[name] = {"median_ms": statistics.median(runs), "runs_ms": runs, "rows": rows}
    out["per_refresh"] = {"median_ms": sum(v["median_ms"] for v in out.values()), "runs_ms": [], "rows": 0}
    return out


# -- script --------------------------------------------------------------------------------
def _print_city(city: BigCity) -> None:
    print(f"backend {city.backend}: {city.grids:,} grids in {city.districts} districts / {city.streets} streets / "
          f"{city.communities:,} communities; {city.units} units ({city.disposal_units} 处置单位); "
          f"{city.classes} classes")
    b = city.bounds
    print(f"bounds lon {b[0]:.5f}..{b[2]:.5f}, lat {b[1]:.5f}..{b[3]:.5f} (centre {city.center})")
    print(f"open cases {city.open_cases:,}: " + ", ".join(f"{k} {v:,}" for k, v in city.by_stage.items()))
    print(f"  urgent {city.urgent:,}, overdue now {city.overdue:,} ({city.overdue / max(city.open_cases, 1):.0%}), "
          f"reported today {city.reported_today:,}, with a unit {city.dispatched_with_unit:,}, "
          f"max per grid {city.max_cases_per_grid:,}")
    print("build steps: " + ", ".join(f"{k} {v:.2f}s" for k, v in city.timings.items() if k != "total"))
    print(f"build total: {city.total_s:.1f}s")


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import benchkit

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    benchkit.add_megacity(parser, seed=1)
    parser.add_argument("--sqlite", type=Path, help="build into this SQLite file instead (must not exist)")
    parser.add_argument("--keep", action="store_true", help="keep the schema and print its URL")
    parser.add_argument("--no-baseline", action="store_true")
    benchkit.add_smoke(parser, grids=400, cases=4000)
    args = benchkit.parse(parser)

    schema = admin = None
    if args.sqlite:
        if args.sqlite.exists():
            parser.error(f"{args.sqlite} exists")
        url = f"sqlite:///{args.sqlite.resolve()}"
    else:
        admin, schema, url = benchkit.pg_schema(args.pg_url, "gh_bigcity")
    settings = load_settings(database_url=url)
    keep = args.keep or bool(args.sqlite)
    try:
        city = build(settings, args.grids, args.cases, args.seed, progress=lambda m: print("  " + m, flush=True))
        _print_city(city)
        engine = db.make_engine(settings)
        from dashboard.figures.overdue import overdue_stored

        with Session(engine) as session:
            t0 = time.perf_counter()
            rows = overdue_stored(session, timing_for(settings),
                                  datetime.now(UTC))
            t1 = time.perf_counter()
        n_over = sum(1 for r in rows if r.overdue)
        print(f"overdue_stored: {n_over:,} overdue + {len(rows) - n_over:,} due soon in {t1 - t0:.2f}s "
              f"(load_stored of every open case into Python + vectorised evaluation)")
        figures: dict[str, float | int] = {"grids": city.grids, "open_cases": city.open_cases,
                                           "build_s": city.total_s, "overdue_stored_s": t1 - t0}
        if not args.no_baseline:
            base = group_by_baseline(engine, tz=settings.tz)
            print("query-per-refresh baseline (median of 5, ms):")
            for name, r in base.items():
                what = "overdue cases" if name == "overdue_total" else "rows"
                rows_ = f"  ({r['rows']:,} {what})" if r["rows"] else ""
                print(f"  {name:<17}: {r['median_ms']:>9.1f}{rows_}")
            figures["group_by_per_refresh_ms"] = base["per_refresh"]["median_ms"]
        engine.dispose()
        if keep:
            print(f"\nkept. GRIDHALL_DATABASE_URL='{url}'")
        benchkit.result(**figures)
    finally:
        benchkit.release_schema(admin, schema, args.keep)


if __name__ == "__main__":
    main()
