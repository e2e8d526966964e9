"""The shift leaders' drill-down (/explore): a selection of the city and its figures, in SQL.

Domain only (no Dash, no Flask). The page's whole state is a
:class:`dashboard.figures.selection.Selection`, parsed from and written back to the URL's query
string, so a link reproduces the view. Every function
takes ``(session, scope, timing, now, selection)`` and filters by the caller's region scope
(``dashboard.store.scope``) on the server: a region, grid or case outside the scope is refused
exactly like an unknown one (:class:`dashboard.figures.scoped.OutOfScope`, "未找到或无权查看").

Which cases a selection holds (docs/explore.md):

- the **place** — the city (or the user's own district/street), a district, street, community
  or one grid (``region``); cases without a grid belong only to the city;
- the **time window** (``window``): the cases *active* in it — reported in it, finished
  (结案/不予立案/作废) in it, or still open now, whenever they were reported (a shift lead must
  see last month's overdue case too);
- the filters: 部件/事件, 大类, 小类, source, stage (or 在办), 处置单位, and one of 超期 / 临期 /
  急件 (judged *now*, with the stored clocks: :func:`dashboard.figures.scoped.overdue_condition` and
  the working-time evaluator of ``scoped.stored_clocks``).

The trends ignore the window (they are the last 7 days and 24 hours) but keep every other
filter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, and_, case, false, func, or_, select, true
from sqlalchemy.orm import Session, aliased

from dashboard.figures.overdue import class_names
from dashboard.figures.scoped import OutOfScope, overdue_condition, stored_clocks
from dashboard.figures.selection import DEFAULT_RANKING, REGION_CODE, Selection
from dashboard.rules.deadlines import Timing
from dashboard.rules.lifecycle import Stage
from dashboard.rules.vocab import UNLOCATED, Kind, Source, Urgency
from dashboard.store.models import Case, Grid, Region, Unit
from dashboard.store.queries import OPEN_STAGES, unlocated_condition
from dashboard.store.scope import CITY_NAME, Scope, ScopeError, get_scope, grid_id_condition

NOT_FOUND = "未找到或无权查看"
_OPEN = [s.value for s in OPEN_STAGES]
# Finished stages (closed_at is stamped by each of them).
_DONE = [Stage.CLOSED.value, Stage.REJECTED.value, Stage.VOIDED.value]

# -- caps (docs/explore.md) -----------------------------------------------------------------
TABLE_CAP = 2000  # case rows sent to the page's table; the title says "显示 N / 共 M"
EXPORT_CAP = 100_000  # rows of one CSV/XLSX export; X-Total-Count says how many matched
MAP_POLYGON_CAP = 2500  # grids drawn as polygons; above that, grid centroids as clustered points
MAP_POINT_CAP = 5000  # points sent to the map (grid centroids or cases); "显示 N / 共 M"
MAP_CLUSTER_FROM = 300  # point layers cluster from this many points on
HOT_GRIDS = 10  # rows of the hot-grid list
UNLOCATED_CAP = 200  # rows of the 待定位 list; its title says "显示 N / 共 M"

_WINDOW_SPAN = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30),
                "90d": timedelta(days=90)}
LEVEL_LABELS = {"city": "市", "district": "区", "street": "街道", "community": "社区", "grid": "网格"}
# The region level ranked under each place level (the children of the place).
CHILD_KIND = {"city": "district", "district": "street", "street": "community", "community": "grid"}



# -- the place ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Crumb:
    level: str  # city / district / street / community / grid
    level_label: str
    code: str | None  # None: the city
    name: str


@dataclass(frozen=True)
class Place:
    """Where the selection is: its level, code, name and the path down from the scope's root."""

    level: str
    code: str | None
    name: str
    crumbs: tuple[Crumb, ...]
    grid_id: int | None = None  # at grid level
    inner: Scope | None = field(default=None, repr=False)  # at region level: the region as a scope

    def condition(self) -> ColumnElement[bool]:
        """Condition on ``Case`` rows for the place (the user's scope is applied apart)."""
        if self.grid_id is not None:
            return Case.grid_id == self.grid_id
        if self.inner is not None:
            return grid_id_condition(self.inner, Case.grid_id)
        return true()

    def grid_condition(self) -> ColumnElement[bool]:
        """Condition on ``Grid`` rows for the place."""
        if self.grid_id is not None:
            return Grid.id == self.grid_id
        if self.inner is not None:
            return grid_id_condition(self.inner, Grid.id)
        return true()


def _chain(session: Session, region_id: int) -> list[Region]:
    out: list[Region] = []
    r = session.get(Region, region_id)
    while r is not None and len(out) < 4:
        out.append(r)
        r = r.parent
    return list(reversed(out))


def place(session: Session, scope: Scope, timing: Timing, now: datetime, selection: Selection) -> Place:
    """The selection's place inside ``scope``; raises OutOfScope for one outside it or unknown."""
    root_level = scope.level if not scope.is_city else "city"
    root_name = scope.name if not scope.is_city else CITY_NAME
    root = Crumb(root_level, LEVEL_LABELS.get(root_level, ""), scope.code, root_name)
    code = selection.region
    if code is None or code == scope.code:
        if scope.is_city:
            return Place("city", None, CITY_NAME, (root,))
        return Place(scope.level, scope.code, scope.name, (root,), inner=scope)
    if not REGION_CODE.fullmatch(code) or not scope.allows(code):
        raise OutOfScope(code)
    grid = None
    if len(code) in (14, 15):
        grid = session.scalars(select(Grid).where(Grid.code == code)).first()
        if grid is None:
            raise OutOfScope(code)
        region_id = grid.community_id
    else:
        found = session.scalar(select(Region.id).where(Region.code == code))
        if found is None:
            raise OutOfScope(code)
        region_id = found
    chain = [r for r in _chain(session, region_id) if scope.allows_region_id(r.id)]
    crumbs = [root] + [Crumb(r.level, LEVEL_LABELS.get(r.level, ""), r.code, r.name)
                       for r in chain if r.code != scope.code]
    if grid is not None:
        crumbs.append(Crumb("grid", "网格", grid.code, grid.code))
        return Place("grid", grid.code, grid.code, tuple(crumbs), grid_id=grid.id)
    try:
        inner = get_scope(session, region_id)
    except ScopeError:
        raise OutOfScope(code) from None
    return Place(inner.level, inner.code, inner.name, tuple(crumbs), inner=inner)


# -- 综合考评 of the place -----------------------------------------------------------------------
def current_month(now: datetime, tz: Any) -> str:
    """The month (YYYY-MM) ``now`` falls in, in the city's zone: the panel's default."""
    return f"{now.astimezone(tz):%Y-%m}"


def ranking_target(session: Session, scope: Scope, timing: Timing, now: datetime,
                   selection: Selection) -> tuple[Scope | None, str, Place]:
    """(the scope to evaluate in, the object kind, the place) of the selection's ranking.

    The scope is the place as a region scope: it lies inside the user's scope (``place``
    refuses any other), so it is the place intersected with the user's scope. None at grid
    level (a grid has no children and is no region scope). Raises OutOfScope like ``place``.
    """
    p = place(session, scope, timing, now, selection)
    ranking = selection.ranking or DEFAULT_RANKING
    kind = CHILD_KIND.get(p.level, "grid") if ranking == DEFAULT_RANKING else ranking
    if p.level == "grid":
        return None, kind, p
    return (scope if p.level == "city" else p.inner), kind, p


# -- the case condition -------------------------------------------------------------------------
def window_start(timing: Timing, now: datetime, window: str) -> datetime | None:
    """The start of the time window (None: all time)."""
    if window == "today":
        tz = timing.calendar.tz
        return datetime.combine(now.astimezone(tz).date(), time.min, tzinfo=tz).astimezone(UTC)
    span = _WINDOW_SPAN.get(window)
    return None if span is None else now - span


def _class_codes(timing: Timing, kind: str, major: str) -> list[str]:
    if timing.classification is None:
        return []
    return sorted(e.minor_code for e in timing.classification if e.kind.value == kind and e.major_code == major)


def filter_condition(session: Session, scope: Scope, timing: Timing, now: datetime, selection: Selection,
                     *, the_place: Place | None = None, with_window: bool = True,
                     with_due_soon: bool = True) -> ColumnElement[bool]:
    """The ``WHERE`` condition of the selection's cases: scope, place, window and filters.

    Raises OutOfScope for a place outside the scope. ``with_window=False`` leaves the time
    window out (the trends); ``with_due_soon=False`` leaves a 临期 flag out (used to find them).
    """
    from dashboard.store.scope import case_condition

    p = the_place or place(session, scope, timing, now, selection)
    parts: list[ColumnElement[bool]] = [case_condition(scope), p.condition()]
    start = window_start(timing, now, selection.window) if with_window else None
    if start is not None:
        parts.append(or_(Case.reported_at >= start, and_(Case.stage.in_(_DONE), Case.closed_at >= start),
                         Case.stage.in_(_OPEN)))
    if selection.kind:
        parts.append(Case.kind == selection.kind)
    if selection.major and selection.kind:
        codes = _class_codes(timing, selection.kind, selection.major)
        parts.append(Case.class_code.in_(codes) if codes else false())
    if selection.minor:
        parts.append(Case.class_code == selection.minor)
    if selection.source:
        parts.append(Case.source == selection.source)
    if selection.stage == "open":
        parts.append(Case.stage.in_(_OPEN))
    elif selection.stage:
        parts.append(Case.stage == selection.stage)
    if selection.unit:
        parts.append(Case.unit_id.in_(select(Unit.id).where(Unit.code == selection.unit)))
    if selection.flag == "overdue":
        parts.append(overdue_condition(now))
    elif selection.flag == "urgent":
        parts.append(Case.urgency == Urgency.URGENT.value)
    elif selection.flag == "due_soon" and with_due_soon:
        base = and_(*parts)
        c = stored_clocks(session, scope, timing, now, base)
        ids = [c.ids[i] for i in np.flatnonzero(c.due_soon).tolist()]
        parts.append(Case.id.in_(ids) if ids else false())
    return and_(*parts)


def _count(session: Session, where: ColumnElement[bool]) -> int:
    return int(session.scalar(select(func.count()).select_from(Case).where(where)) or 0)


def _tally(condition: ColumnElement[bool]) -> Any:
    return func.count(case((condition, 1)))


# -- KPIs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExploreKpis:
    total: int  # cases of the selection (active in the window)
    reported: int  # 上报 in the window
    closed: int  # 结案 in the window
    open: int  # 在办 now
    overdue: int  # 超期 now
    due_soon: int  # 临期 now
    urgent: int  # 急件 among the open ones
    on_time_close_rate: float | None  # 按期结案率 of the 结案 in the window (None: none judged)


def kpis(session: Session, scope: Scope, timing: Timing, now: datetime, selection: Selection) -> ExploreKpis:
    where = filter_condition(session, scope, timing, now, selection)
    start = window_start(timing, now, selection.window)
    in_window = (lambda col: col >= start) if start is not None else (lambda col: col.is_not(None))
    closed_cond = and_(Case.stage == Stage.CLOSED.value, in_window(Case.closed_at))
    row = session.execute(select(
        func.count(),
        _tally(in_window(Case.reported_at)),
        _tally(closed_cond),
        _tally(Case.stage.in_(_OPEN)),
        _tally(overdue_condition(now)),
        _tally(and_(Case.stage.in_(_OPEN), Case.urgency == Urgency.URGENT.value)),
        _tally(and_(closed_cond, Case.on_time_close.is_not(None))),
        _tally(and_(closed_cond, Case.on_time_close.is_(True))),
    ).select_from(Case).where(where)).one()
    total, reported, closed, open_, over, urgent, flagged, ok = (int(v or 0) for v in row)
    soon = int(np.count_nonzero(stored_clocks(session, scope, timing, now, where).due_soon))
    return ExploreKpis(total, reported, closed, open_, over, soon, urgent, ok / flagged if flagged else None)


# -- children of the place ----------------------------------------------------------------------
@dataclass(frozen=True)
class ChildRow:
    level: str
    code: str
    name: str
    total: int
    open: int
    overdue: int


def children(session: Session, scope: Scope, timing: Timing, now: datetime, selection: Selection) -> list[ChildRow]:
    """The regions (or grids) one level below the place, each with the selection's counts.

    Children with no case are listed too (zeros), by code; a grid has no children.
    """
    p = place(session, scope, timing, now, selection)
    if p.level == "grid":
        return []
    where = filter_condition(session, scope, timing, now, selection, the_place=p)
    comm, street = aliased(Region), aliased(Region)
    if p.level == "community":
        kids = session.execute(select(Grid.id, Grid.code, Grid.code).where(p.grid_condition())
                               .order_by(Grid.code)).all()
        key: Any = Grid.id
        level = "grid"
    else:
        level = {"city": "district", "district": "street", "street": "community"}[p.level]
        parent_cond: ColumnElement[bool]
        if p.level == "city":
            parent_cond = Region.parent_id.is_(None)
        else:
            assert p.inner is not None, "a place above grid level carries its region as a scope"
            parent_cond = Region.parent_id == p.inner.region_id
        in_scope = Region.id.in_(sorted(scope.region_ids)) if not scope.is_city else true()
        kids = session.execute(select(Region.id, Region.code, Region.name).where(
            Region.level == level, parent_cond, in_scope).order_by(Region.code)).all()
        key = {"community": comm.id, "street": street.id, "district": street.parent_id}[level]
    figures: dict[int, tuple[int, int, int]] = {}
    if kids:
        stmt = (select(key, func.count(), _tally(Case.stage.in_(_OPEN)), _tally(overdue_condition(now)))
                .select_from(Case).join(Grid, Grid.id == Case.grid_id)
                .join(comm, comm.id == Grid.community_id).join(street, street.id == comm.parent_id)
                .where(where).group_by(key))
        for k, n, o, ov in session.execute(stmt):
            figures[k] = (int(n), int(o or 0), int(ov or 0))
    return [ChildRow(level, code, name, *figures.get(i, (0, 0, 0))) for i, code, name in kids]


# -- class breakdown ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassCount:
    kind: str
    code: str  # major code (by major) or minor code (by minor)
    name: str
    count: int


def class_breakdown(session: Session, scope: Scope, timing: Timing, now: datetime,
                    selection: Selection) -> tuple[str, list[ClassCount]]:
    """("major" | "minor", counts): by 大类, or by 小类 once a 大类 or 小类 is chosen; largest first."""
    where = filter_condition(session, scope, timing, now, selection)
    rows = session.execute(select(Case.kind, Case.class_code, func.count()).where(where)
                           .group_by(Case.kind, Case.class_code)).all()
    by_minor = bool(selection.major or selection.minor)
    out: dict[tuple[str, str], list[Any]] = {}
    for kind, code, n in rows:
        kind = kind or ""
        major_name, minor_name = class_names(timing, kind, code)
        entry = timing.classification.get(kind, code) if (timing.classification is not None and kind in Kind.labels()
                                                          and code) else None
        if by_minor:
            key, name = (kind, code or ""), minor_name or "未分类"
        elif entry is not None:
            key, name = (kind, entry.major_code), major_name
        else:
            key, name = (kind, ""), "未分类"
        item = out.setdefault(key, [name, 0])
        item[1] += int(n)
    result = [ClassCount(k, c, name, n) for (k, c), (name, n) in out.items()]
    result.sort(key=lambda r: (-r.count, r.kind, r.code))
    return ("minor" if by_minor else "major"), result


# -- trends ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrendPoint:
    start: datetime  # local time
    label: str
    reported: int
    closed: int


@dataclass(frozen=True)
class Trends:
    days: tuple[TrendPoint, ...]  # the last 7 local days, today last
    hours: tuple[TrendPoint, ...]  # the last 24 whole hours, the current hour last


def trend_buckets(timing: Timing, now: datetime) -> tuple[list[datetime], list[datetime]]:
    """Bucket starts (UTC, aware): 7 local days ending today, 24 hours ending this hour; each
    list is followed by its end bound."""
    tz = timing.calendar.tz
    today = now.astimezone(tz).date()
    days = [datetime.combine(today - timedelta(days=6 - i), time.min, tzinfo=tz).astimezone(UTC)
            for i in range(8)]
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = [hour - timedelta(hours=23 - i) for i in range(25)]
    return days, hours


def trends(session: Session, scope: Scope, timing: Timing, now: datetime, selection: Selection) -> Trends:
    """上报 and 结案 per local day (7 days) and per hour (24 h) of the selection, window aside."""
    where = filter_condition(session, scope, timing, now, selection, with_window=False)
    days, hours = trend_buckets(timing, now)
    tz = timing.calendar.tz

    def counts(column: Any, extra: ColumnElement[bool]) -> tuple[list[int], list[int]]:
        lo = min(days[0], hours[0])
        tallies = ([_tally(and_(column >= days[i], column < days[i + 1])) for i in range(7)]
                   + [_tally(and_(column >= hours[i], column < hours[i + 1])) for i in range(24)])
        row = session.execute(select(*tallies).select_from(Case).where(
            where, extra, column >= lo, column < max(days[-1], hours[-1]))).one()
        values = [int(v or 0) for v in row]
        return values[:7], values[7:]

    rd, rh = counts(Case.reported_at, true())
    cd, ch = counts(Case.closed_at, Case.stage == Stage.CLOSED.value)
    day_pts = tuple(TrendPoint(days[i].astimezone(tz), days[i].astimezone(tz).strftime("%m-%d"), rd[i], cd[i])
                    for i in range(7))
    hour_pts = tuple(TrendPoint(hours[i].astimezone(tz), hours[i].astimezone(tz).strftime("%H时"), rh[i], ch[i])
                     for i in range(24))
    return Trends(day_pts, hour_pts)


# -- map ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MapData:
    """What the map draws: grid polygons, grid centroids or case points (GeoJSON), and honesty.

    ``shown`` of ``total`` items are in ``geojson``; ``clustered`` when the layer clusters.
    """

    mode: str  # "grids" (polygons), "grid_points" (centroids), "cases" (case points)
    geojson: dict[str, Any]
    outline: dict[str, Any] | None  # the grid's own polygon at grid level
    shown: int
    total: int
    clustered: bool
    max_value: int
    bounds: list[list[float]] | None  # [[south, west], [north, east]]


def grid_values(session: Session, scope: Scope, timing: Timing, now: datetime, selection: Selection,
                *, the_place: Place | None = None) -> dict[int, tuple[int, int]]:
    """Grid id → (cases of the selection, overdue among them), for grids with any case."""
    where = filter_condition(session, scope, timing, now, selection, the_place=the_place)
    return {gid: (int(n), int(ov or 0)) for gid, n, ov in session.execute(
        select(Case.grid_id, func.count(), _tally(overdue_condition(now))).where(where, Case.grid_id.is_not(None))
        .group_by(Case.grid_id))}


def _bounds(lons: Iterable[float], lats: Iterable[float]) -> list[list[float]] | None:
    lons, lats = list(lons), list(lats)
    if not lons:
        return None
    return [[min(lats), min(lons)], [max(lats), max(lons)]]


def map_data(session: Session, scope: Scope, timing: Timing, now: datetime, selection: Selection) -> MapData:
    """Grids of the place coloured by the selection's cases, or at grid level its case points."""
    import json

    p = place(session, scope, timing, now, selection)
    if p.level == "grid":
        where = filter_condition(session, scope, timing, now, selection, the_place=p)
        g = session.get(Grid, p.grid_id)
        outline = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": json.loads(g.geometry), "properties": {"code": g.code}}]} if g else None
        located = and_(where, Case.lon.is_not(None), Case.lat.is_not(None))
        total = _count(session, located)
        case_rows = session.execute(select(Case.case_id, Case.lon, Case.lat, Case.stage, Case.urgency,
                                           overdue_condition(now)).where(located)
                                    .order_by(Case.reported_at.desc(), Case.case_id).limit(MAP_POINT_CAP)).all()
        feats = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [r[1], r[2]]},
                  "properties": {"case": r[0], "stage": Stage(r[3]).label if r[3] in Stage.labels() else "",
                                 "overdue": bool(r[5]), "urgent": r[4] == Urgency.URGENT.value}} for r in case_rows]
        # ``located`` keeps only rows with both coordinates; the ``is not None`` tells the type
        lons = [r[1] for r in case_rows if r[1] is not None]
        lats = [r[2] for r in case_rows if r[2] is not None]
        bounds = _bounds([g.centroid_lon - 0.0008, g.centroid_lon + 0.0008] + lons,
                         [g.centroid_lat - 0.0008, g.centroid_lat + 0.0008] + lats) if g else None
        return MapData("cases", {"type": "FeatureCollection", "features": feats}, outline, len(feats), total,
                       len(feats) > MAP_CLUSTER_FROM, 1, bounds)
    values = grid_values(session, scope, timing, now, selection, the_place=p)
    gwhere = and_(p.grid_condition(), grid_id_condition(scope, Grid.id))
    n_grids = int(session.scalar(select(func.count()).select_from(Grid).where(gwhere)) or 0)
    max_value = max((v[0] for v in values.values()), default=0)
    if n_grids <= MAP_POLYGON_CAP:
        grid_rows = session.execute(select(Grid.id, Grid.code, Grid.geometry, Grid.centroid_lon, Grid.centroid_lat)
                                    .where(gwhere).order_by(Grid.code)).all()
        feats = [{"type": "Feature", "geometry": json.loads(r[2]),
                  "properties": {"code": r[1], "value": values.get(r[0], (0, 0))[0],
                                 "overdue": values.get(r[0], (0, 0))[1]}} for r in grid_rows]
        return MapData("grids", {"type": "FeatureCollection", "features": feats}, None, len(feats), n_grids,
                       False, max_value, _bounds([r[3] for r in grid_rows], [r[4] for r in grid_rows]))
    # Too many polygons for a browser: the grids with cases, as centroids, clustered.
    busy = sorted(values.items(), key=lambda kv: (-kv[1][0], kv[0]))
    pick = dict(busy[:MAP_POINT_CAP])
    point_rows = sorted(session.execute(select(Grid.id, Grid.code, Grid.centroid_lon, Grid.centroid_lat)
                                        .where(Grid.id.in_(list(pick)) if pick else false())).all(),
                        key=lambda r: r[1])
    feats = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [r[2], r[3]]},
              "properties": {"code": r[1], "value": pick[r[0]][0], "overdue": pick[r[0]][1]}} for r in point_rows]
    return MapData("grid_points", {"type": "FeatureCollection", "features": feats}, None, len(feats), len(values),
                   True, max_value, _bounds([r[2] for r in point_rows], [r[3] for r in point_rows]))


# -- hot grids ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class HotGrid:
    code: str
    place: str  # community / street
    total: int
    overdue: int


def hot_grids(session: Session, scope: Scope, timing: Timing, now: datetime, selection: Selection,
              limit: int = HOT_GRIDS) -> list[HotGrid]:
    """The grids with the most overdue, then most cases of the selection (ties by code)."""
    values = grid_values(session, scope, timing, now, selection)
    top = sorted(values.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0]))
    named = (select(Grid.id, Grid.code, Region.name).join(Region, Region.id == Grid.community_id)
             .where(Grid.id.in_([gid for gid, _ in top])))
    rows = session.execute(named if top else select(Grid.id).where(false())).all()
    names = {r[0]: (r[1], r[2]) for r in rows}
    out = [HotGrid(names[gid][0], names[gid][1] or "", n, ov) for gid, (n, ov) in top if gid in names]
    out.sort(key=lambda h: (-h.overdue, -h.total, h.code))
    return out[:limit]


# -- the case table -----------------------------------------------------------------------------
COLUMNS: tuple[tuple[str, str], ...] = (  # (field, header): the table's and the exports' columns
    ("case_id", "案件标识"),
    ("number", "案件编号"),
    ("status", "状态"),
    ("stage", "当前阶段"),
    ("kind", "类别"),
    ("major", "大类"),
    ("minor", "小类"),
    ("source", "来源"),
    ("urgency", "紧急程度"),
    ("district", "区"),
    ("street", "街道"),
    ("community", "社区"),
    ("grid", "网格"),
    ("unit", "处置单位"),
    ("reported_at", "上报时间"),
    ("deadline_at", "当前时限"),
    ("closed_at", "办结时间"),
    ("address", "地址"),
    ("description", "问题描述"),
)


@dataclass(frozen=True)
class CaseTable:
    total: int
    rows: tuple[dict[str, Any], ...]  # one dict per case, keys of COLUMNS (text, "" for none)
    cap: int

    @property
    def shown(self) -> int:
        return len(self.rows)


def _local(value: datetime | None, tz: Any) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value is not None else ""


def case_table(session: Session, scope: Scope, timing: Timing, now: datetime, selection: Selection,
               limit: int = TABLE_CAP) -> CaseTable:
    """The selection's cases, newest report first (then by case id), at most ``limit`` of them."""
    where = filter_condition(session, scope, timing, now, selection)
    return CaseTable(_count(session, where), case_rows(session, scope, timing, now, where, limit), limit)


def case_rows(session: Session, scope: Scope, timing: Timing, now: datetime, where: ColumnElement[bool],
              limit: int = TABLE_CAP) -> tuple[dict[str, Any], ...]:
    """The cases matching ``where`` as the table's rows (keys of :data:`COLUMNS`), newest report
    first, at most ``limit``; 超期/临期 judged at ``now`` with the stored clocks. The case table,
    its exports and the shift handover's lists (dashboard/figures/handover.py) all use it."""
    g, u = aliased(Grid), aliased(Unit)
    comm, street, dist = aliased(Region), aliased(Region), aliased(Region)
    rows = session.execute(
        select(Case.id, Case.case_id, Case.number, Case.stage, Case.kind, Case.class_code, Case.source,
               Case.urgency, dist.name, street.name, comm.name, g.code, u.name, Case.reported_at,
               Case.deadline_at, Case.closed_at, Case.address, Case.description)
        .outerjoin(g, g.id == Case.grid_id).outerjoin(comm, comm.id == g.community_id)
        .outerjoin(street, street.id == comm.parent_id).outerjoin(dist, dist.id == street.parent_id)
        .outerjoin(u, u.id == Case.unit_id)
        .where(where)
        .order_by(Case.reported_at.is_(None), Case.reported_at.desc(), Case.case_id)
        .limit(max(0, limit))
    ).all()
    status: dict[int, str] = {}
    if rows:
        c = stored_clocks(session, scope, timing, now, Case.id.in_([r[0] for r in rows]))
        for i, cid in enumerate(c.ids):
            status[cid] = "超期" if c.overdue[i] else ("临期" if c.due_soon[i] else "")
    tz = timing.calendar.tz
    kinds, sources, urgencies, stages = Kind.labels(), Source.labels(), Urgency.labels(), Stage.labels()
    out = []
    for r in rows:
        major, minor = class_names(timing, r[4], r[5])
        open_ = r[3] in _OPEN
        out.append({
            "case_id": r[1], "number": r[2] or "",
            "status": status.get(r[0], "") or ("在办" if open_ else ""),
            "stage": stages.get(r[3] or "", r[3] or ""), "kind": kinds.get(r[4] or "", r[4] or ""),
            "major": major, "minor": minor, "source": sources.get(r[6] or "", r[6] or ""),
            "urgency": urgencies.get(r[7] or "", r[7] or ""),
            "district": r[8] or "", "street": r[9] or "", "community": r[10] or "", "grid": r[11] or UNLOCATED,
            "unit": r[12] or "", "reported_at": _local(r[13], tz),
            "deadline_at": _local(r[14], tz) if open_ else "", "closed_at": _local(r[15], tz),
            "address": r[16] or "", "description": r[17] or "",
        })
    return tuple(out)


def export_rows(session: Session, scope: Scope, timing: Timing, now: datetime,
                selection: Selection) -> CaseTable:
    """The rows of a CSV/XLSX export: the table's rows and order, up to :data:`EXPORT_CAP`."""
    return case_table(session, scope, timing, now, selection, limit=EXPORT_CAP)


def export_cell(value: Any) -> Any:
    """A cell safe to open in a spreadsheet: text starting with = + - @ (or a tab/CR that
    Excel strips before them) gets a leading apostrophe (CSV/formula injection)."""
    if isinstance(value, str) and value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


# -- 待定位: open cases without a grid (city scope only) ------------------------------------------
@dataclass(frozen=True)
class UnlocatedCase:
    """One row of the 待定位 list (texts ready to show; "" for none)."""

    case_id: str
    number: str
    reported_at: str  # local, "%Y-%m-%d %H:%M"
    address: str
    description: str
    point: str  # "lon, lat" as sent (a point in no grid), "" without one
    stage: str  # label
    klass: str  # 大类 · 小类
    status: str  # 超期 / 临期 / ""


@dataclass(frozen=True)
class Unlocated:
    total: int
    rows: tuple[UnlocatedCase, ...]  # newest report first, at most UNLOCATED_CAP


def unlocated(session: Session, scope: Scope, timing: Timing, now: datetime,
              limit: int = UNLOCATED_CAP) -> Unlocated | None:
    """The 待定位 list: open cases with no grid, newest report first; None unless ``scope`` is
    the city (such a case belongs to no district). Filters and window do not apply: it is the
    centre's work list of cases to locate (docs/explore.md)."""
    if not scope.is_city:
        return None
    where = unlocated_condition()
    total = _count(session, where)
    rows = session.execute(
        select(Case.id, Case.case_id, Case.number, Case.reported_at, Case.address, Case.description,
               Case.lon, Case.lat, Case.stage, Case.kind, Case.class_code)
        .where(where).order_by(Case.reported_at.is_(None), Case.reported_at.desc(), Case.case_id)
        .limit(max(0, limit))).all()
    status: dict[int, str] = {}
    if rows:
        c = stored_clocks(session, scope, timing, now, Case.id.in_([r[0] for r in rows]))
        for i, cid in enumerate(c.ids):
            status[cid] = "超期" if c.overdue[i] else ("临期" if c.due_soon[i] else "")
    tz = timing.calendar.tz
    stages = Stage.labels()
    out = []
    for r in rows:
        major, minor = class_names(timing, r[9], r[10])
        out.append(UnlocatedCase(
            case_id=r[1], number=r[2] or "", reported_at=_local(r[3], tz), address=r[4] or "",
            description=r[5] or "", point=f"{r[6]:.6f}, {r[7]:.6f}" if r[6] is not None and r[7] is not None else "",
            stage=stages.get(r[8] or "", r[8] or ""), klass=" · ".join(x for x in (major, minor) if x),
            status=status.get(r[0], "")))
    return Unlocated(total, tuple(out))


# -- filter choices -----------------------------------------------------------------------------
def class_options(timing: Timing, kind: str | None, major: str | None) -> tuple[list[tuple[str, str]],
                                                                                list[tuple[str, str]]]:
    """(大类 choices, 小类 choices) as (code, name) for a kind (and a major)."""
    if timing.classification is None or not kind:
        return [], []
    majors: dict[str, str] = {}
    minors: list[tuple[str, str]] = []
    for e in timing.classification:
        if e.kind.value != kind:
            continue
        majors.setdefault(e.major_code, e.major_name)
        if major is None or e.major_code == major:
            minors.append((e.minor_code, e.minor_name))
    return sorted(majors.items()), sorted(minors)


def unit_options(session: Session, scope: Scope, timing: Timing, now: datetime,
                 selection: Selection) -> list[tuple[str, str]]:
    """Units (code, name) that belong to the scope's regions or have cases in the scope."""
    from dashboard.store.scope import case_condition

    with_cases = select(Case.unit_id).where(case_condition(scope), Case.unit_id.is_not(None)).distinct()
    cond = true() if scope.is_city else or_(Unit.region_id.in_(sorted(scope.region_ids)), Unit.id.in_(with_cases))
    return [(c, n) for c, n in session.execute(select(Unit.code, Unit.name).where(cond).order_by(Unit.code))]


__all__ = [
    "NOT_FOUND", "OutOfScope", "Place", "Crumb", "place", "filter_condition",
    "kpis", "children", "class_breakdown", "trends", "map_data", "hot_grids", "case_table", "export_rows",
    "export_cell", "class_options", "unit_options", "COLUMNS", "CHILD_KIND", "current_month", "ranking_target",
    "unlocated", "Unlocated", "UnlocatedCase", "UNLOCATED_CAP",
]
