"""A small hand-made city for tests: one district, one street, one community, a few grids."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from shapely.geometry import box
from shapely.geometry.base import BaseGeometry
from sqlalchemy.orm import Session, sessionmaker

from dashboard.rules.geo import geodesic_area_m2, to_geojson
from dashboard.store.db import transaction
from dashboard.store.models import Case, Grid, Region, Unit

DISTRICT, STREET, COMMUNITY = "990101", "990101001", "990101001001"
LON0, LAT0, STEP = 118.78, 32.04, 0.001  # 0.001° squares, about 94 m × 111 m


def square(row: int, col: int) -> BaseGeometry:
    """The grid square at (row, col), rows counted southwards from LAT0, columns eastwards."""
    return box(LON0 + col * STEP, LAT0 - (row + 1) * STEP, LON0 + (col + 1) * STEP, LAT0 - row * STEP)


def grid(community_id: int, code: str, polygon: BaseGeometry, area_class: str = "A") -> Grid:
    return Grid(code=code, community_id=community_id, geometry=to_geojson(polygon),
                area_m2=geodesic_area_m2(polygon), area_class=area_class,
                centroid_lon=polygon.centroid.x, centroid_lat=polygon.centroid.y)


def build_community(
    sessions: sessionmaker[Session],
    grids: Iterable[tuple[str, BaseGeometry, str]],
    units: Mapping[str, tuple[str, str]] = {"U-HW": ("青山区环卫所", "disposal")},  # noqa: B006 - read only
    names: tuple[str, str, str] = ("青山区", "江东街道", "江东社区"),
) -> Region:
    """Insert the regions, the given (code, polygon, area class) grids and (name, kind) units.

    Street offices belong to the street, other units to the district. Returns the community.
    """
    with transaction(sessions) as s:
        d = Region(code=DISTRICT, name=names[0], level="district")
        st = Region(code=STREET, name=names[1], level="street", parent=d)
        c = Region(code=COMMUNITY, name=names[2], level="community", parent=st)
        s.add_all([d, st, c])
        s.flush()
        for code, polygon, area_class in grids:
            s.add(grid(c.id, code, polygon, area_class))
        for code, (name, kind) in units.items():
            s.add(Unit(code=code, name=name, kind=kind, region_id=st.id if kind == "street_office" else d.id))
    return c


def two_by_two() -> list[tuple[str, BaseGeometry, str]]:
    """Grids 001 002 / 003 004, north-west first, all area class A."""
    return [(f"{COMMUNITY}{row * 2 + col + 1:03d}", square(row, col), "A") for row in range(2) for col in range(2)]


# {(district code, name): {(street code, name): {(community code, name): grid count}}}
Plan = Mapping[tuple[str, str], Mapping[tuple[str, str], Mapping[tuple[str, str], int]]]


def build_plan(s: Session, plan: Plan) -> list[tuple[Grid, Region]]:
    """Regions and square grids from a nested plan, inside the caller's transaction.

    Grids are coded ``<community code><nnn>``, one row of squares per community; returns each
    grid with its district, in plan order.
    """
    out: list[tuple[Grid, Region]] = []
    row = 0
    for (dcode, dname), streets in plan.items():
        d = Region(code=dcode, name=dname, level="district")
        s.add(d)
        for (scode, sname), communities in streets.items():
            st = Region(code=scode, name=sname, level="street", parent=d)
            s.add(st)
            for (ccode, cname), n in communities.items():
                c = Region(code=ccode, name=cname, level="community", parent=st)
                s.add(c)
                s.flush()
                for i in range(n):
                    g = grid(c.id, f"{ccode}{i + 1:03d}", square(row, i))
                    s.add(g)
                    s.flush()
                    out.append((g, d))
                row += 1
    return out


def running_clock(now: datetime, stage: str, minutes_left: float, limit: float = 600.0) -> dict[str, Any]:
    """Case columns of a running 自然时 clock (calendar minutes: no working calendar involved)."""
    return dict(clock_stage=stage, deadline_at=now + timedelta(minutes=minutes_left), deadline_source="table",
                limit_minutes=limit, limit_unit="calendar_hours", clock_started_at=now - timedelta(hours=2))


def add_case(s: Session, now: datetime, case_id: str, grid_id: int | None, stage: str, **fields: Any) -> Case:
    """An event case numbered after its id (``C-A1`` → ``NA1``), reported 30 minutes before ``now``."""
    fields.setdefault("reported_at", now - timedelta(minutes=30))
    case = Case(case_id=case_id, number=case_id.replace("C-", "N"), grid_id=grid_id, stage=stage,
                kind="event", urgency=fields.pop("urgency", "normal"), **fields)
    s.add(case)
    return case
