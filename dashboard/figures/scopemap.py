"""The /view map of a scope: its grids' polygons in a compact form, and where each grid lies.

:func:`load_geo` reads the scope's grids (``grid_condition``: nothing outside the scope), the
sub-region each lies in and the scope's sub-regions (the areas panel's rows);
:func:`encode_geometry` packs the polygons as integer deltas at 1e-5°, codes grouped by
community, about a third of the GeoJSON text (``layouts/assets/view.js`` decodes it).
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from dashboard.store.models import Grid, Region
from dashboard.store.scope import Scope, grid_condition

log = logging.getLogger(__name__)

GEO_DECIMALS = 5  # 1e-5° ≈ 1 m, as the wall's map layer (dashboard/store/mapdata.py)


@dataclass(frozen=True)
class GeoPack:
    """A scope's grids: the compact geometry for the browser and, server-side only, each
    grid's place (its codes up the tree) and the scope's sub-regions for the areas panel."""

    compact: dict[str, Any]
    grids: int
    parents: dict[str, str]  # grid code → code of the sub-region of the scope it lies in
    children: tuple[tuple[str, str], ...]  # (code, name) of the scope's sub-regions, by code
    child_level: str  # "district", "street" or "community"


CHILD_LEVEL = {"city": "district", "district": "street", "street": "community", "community": "community"}


def _rings(geometry: dict[str, Any]) -> list[list[list[list[float]]]]:
    """A Polygon's or MultiPolygon's coordinates as a list of polygons."""
    if geometry.get("type") == "Polygon":
        return [geometry["coordinates"]]
    if geometry.get("type") == "MultiPolygon":
        return list(geometry["coordinates"])
    return []


def encode_geometry(items: list[tuple[str, dict[str, Any]]], decimals: int = GEO_DECIMALS) -> dict[str, Any]:
    """Grids (code, GeoJSON geometry) → the compact form view.js decodes.

    ``{"d": decimals, "o": [x0, y0], "g": [[prefix, [[suffix, polygons], …]], …]}``: codes are
    grouped by their first 12 digits (the community); a polygon is a list of rings, a ring a
    flat list of integers — its first point relative to the origin ``o``, each next point
    relative to the one before, in units of 10^-decimals degrees; the closing point is left
    out. Shared vertices of neighbouring grids round to the same integers: no gaps appear.
    """
    scale = 10 ** decimals
    quantised: list[tuple[str, list[list[list[tuple[int, int]]]]]] = []
    x0 = y0 = None
    for code, geometry in items:
        polys = []
        for polygon in _rings(geometry):
            rings = []
            for ring in polygon:
                pts = [(round(float(p[0]) * scale), round(float(p[1]) * scale)) for p in ring]
                if len(pts) > 1 and pts[0] == pts[-1]:
                    pts.pop()
                # consecutive duplicates after rounding add nothing
                pts = [p for i, p in enumerate(pts) if i == 0 or p != pts[i - 1]]
                if len(pts) >= 3:
                    rings.append(pts)
                    xs = min(p[0] for p in pts)
                    ys = min(p[1] for p in pts)
                    x0 = xs if x0 is None else min(x0, xs)
                    y0 = ys if y0 is None else min(y0, ys)
            if rings:
                polys.append(rings)
        if polys:
            quantised.append((code, polys))
    ox, oy = x0 or 0, y0 or 0  # the origin; (0, 0) when there is no ring at all
    groups: OrderedDict[str, list[Any]] = OrderedDict()
    for code, polys in sorted(quantised):
        flat_polys = []
        for rings in polys:
            flat_rings = []
            for pts in rings:
                flat: list[int] = []
                px, py = ox, oy
                for x, y in pts:
                    flat += [x - px, y - py]
                    px, py = x, y
                flat_rings.append(flat)
            flat_polys.append(flat_rings)
        prefix, suffix = (code[:12], code[12:]) if len(code) > 12 else ("", code)
        groups.setdefault(prefix, []).append([suffix, flat_polys])
    return {"d": decimals, "o": [ox, oy], "g": [[p, items_] for p, items_ in groups.items()]}


def load_geo(session: Session, scope: Scope) -> GeoPack:
    """The scope's grids from the Grid table (``grid_condition``: nothing outside the scope)."""
    community, street, district = aliased(Region), aliased(Region), aliased(Region)
    rows = session.execute(
        select(Grid.code, Grid.geometry, community.code, street.code, district.code)
        .outerjoin(community, community.id == Grid.community_id)
        .outerjoin(street, street.id == community.parent_id)
        .outerjoin(district, district.id == street.parent_id)
        .where(grid_condition(scope))
        .order_by(Grid.code)
    ).all()
    level = CHILD_LEVEL.get(scope.level, "district")
    pick = {"district": 4, "street": 3, "community": 2}[level]
    items: list[tuple[str, dict[str, Any]]] = []
    parents: dict[str, str] = {}
    for r in rows:
        try:
            items.append((r[0], json.loads(r[1])))
        except (TypeError, ValueError):
            log.warning("view: grid %s has no readable geometry", r[0])
        if r[pick]:
            parents[r[0]] = r[pick]
    child_rows: Sequence[tuple[str, str]]
    if scope.is_city:
        child_rows = session.execute(
            select(Region.code, Region.name).where(Region.level == "district").order_by(Region.code)).all()
    elif scope.level == "community":
        assert scope.code is not None, "a community scope has its region's code"
        child_rows = [(scope.code, scope.name)]
    else:
        child_rows = session.execute(
            select(Region.code, Region.name).where(Region.parent_id == scope.region_id).order_by(Region.code)).all()
    return GeoPack(encode_geometry(items), len(items), parents,
                   tuple((c, n) for c, n in child_rows), level)
