"""Cells of unit grids in the metric plane: each block, and the river, cut into grid-sized pieces."""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPoint, Point, Polygon
from shapely.geometry.base import BaseGeometry

from dashboard.demo.cityplan import RIVER_HALF_WIDTH, Plan

TARGET_GRID_M2 = 10_000.0

# Grids must end up inside this band; generation aims a little inside it.
GRID_AREA_BAND_M2 = (5_000.0, 20_000.0)
MIN_CELL_M2, MAX_CELL_M2 = 5_600.0, 18_500.0


def cells_for_block(block: Polygon, rng: np.random.Generator) -> list[Polygon]:
    """Unit-grid cells of one block: clipped Voronoi cells of a jittered oriented lattice."""
    area = block.area
    if area <= MAX_CELL_M2:
        return [block]
    angle = _long_axis_angle(block)
    target = rng.uniform(0.9, 1.1) * TARGET_GRID_M2
    aspect = rng.uniform(1.1, 1.45)  # cells a bit longer along the block, like real plots
    sx = math.sqrt(target * aspect)
    sy = target / sx
    u = np.array([math.cos(angle), math.sin(angle)])
    v = np.array([-u[1], u[0]])
    c = np.array(block.centroid.coords[0])
    corners = np.asarray(block.exterior.coords) - c
    pu, pv = corners @ u, corners @ v
    iu = np.arange(math.floor(pu.min() / sx) - 1, math.ceil(pu.max() / sx) + 2)
    iv = np.arange(math.floor(pv.min() / sy) - 1, math.ceil(pv.max() / sy) + 2)
    gu, gv = np.meshgrid(iu, iv)
    gu = gu + 0.5 * (gv % 2) * rng.uniform(0.3, 0.7)  # staggered rows, not a checkerboard
    off = rng.uniform(0, 1, size=2)
    lu = (gu.ravel() + off[0] + rng.uniform(-0.28, 0.28, gu.size)) * sx
    lv = (gv.ravel() + off[1] + rng.uniform(-0.28, 0.28, gv.size)) * sy
    pts = c + np.outer(lu, u) + np.outer(lv, v)
    pts = pts[shapely.contains_xy(block, pts[:, 0], pts[:, 1])]
    if len(pts) < 2:
        cells = _bisect(block)
    else:
        vor = shapely.voronoi_polygons(MultiPoint(pts), extend_to=block)
        clipped = shapely.intersection(np.array(vor.geoms, dtype=object), block)
        cells = [p for p in shapely.get_parts(clipped) if p.geom_type == "Polygon" and p.area > 0]
    return _fix_sizes(cells)


def _long_axis_angle(poly: Polygon) -> float:
    rect = np.asarray(poly.minimum_rotated_rectangle.exterior.coords)
    e1, e2 = rect[1] - rect[0], rect[2] - rect[1]
    e = e1 if np.hypot(*e1) >= np.hypot(*e2) else e2
    return math.atan2(e[1], e[0])


def _bisect(poly: Polygon) -> list[Polygon]:
    """Cut a polygon across its long axis into two parts of equal area."""
    angle = _long_axis_angle(poly)
    u = np.array([math.cos(angle), math.sin(angle)])
    v = np.array([-u[1], u[0]])
    coords = np.asarray(poly.exterior.coords)
    proj = coords @ u
    lo, hi = proj.min(), proj.max()
    span = (np.abs(coords @ v).max() + 10) * 2
    c0 = coords.mean(axis=0)
    c0 = c0 - (c0 @ u) * u  # origin of the cut coordinate along u

    def half(t: float) -> BaseGeometry:
        a, b = c0 + (lo - 10) * u, c0 + t * u
        rect = Polygon([a - span * v, b - span * v, b + span * v, a + span * v])
        return shapely.intersection(poly, rect)

    target = poly.area / 2
    a, b = lo, hi
    for _ in range(30):
        mid = (a + b) / 2
        if half(mid).area < target:
            a = mid
        else:
            b = mid
    left = half((a + b) / 2)
    right = shapely.difference(poly, left)
    return [
        p
        for part in (left, right)
        for p in shapely.get_parts(part)
        if p.geom_type == "Polygon" and p.area > 0
    ]


def _fix_sizes(cells: list[Polygon]) -> list[Polygon]:
    """Merge cells below the minimum into a neighbour; bisect cells above the maximum."""
    for _ in range(12):
        cells = _merge_small_cells(cells)
        big = [c for c in cells if c.area > MAX_CELL_M2]
        if not big:
            break
        cells = [c for c in cells if c.area <= MAX_CELL_M2] + [p for c in big for p in _bisect(c)]
    return cells


def _merge_small_cells(cells: list[Polygon]) -> list[Polygon]:
    """Within a block, merge the smallest cell below the minimum into its best neighbour."""
    cells = list(cells)
    while len(cells) > 1:
        areas = np.array([c.area for c in cells])
        for i in np.argsort(areas, kind="stable"):
            if areas[i] >= MIN_CELL_M2:
                return cells
            others = np.array([c for j, c in enumerate(cells) if j != i], dtype=object)
            lengths = shapely.length(
                shapely.intersection(cells[i].boundary, shapely.boundary(others))
            )
            if lengths.max() > 0.5:
                break
            # No neighbour: impossible in a connected block; among water pieces, a stretch
            # cut off by the outline. Try the next smallest cell.
        else:
            return cells
        # Prefer the neighbour with the longest shared edge; among near-equals, the smaller.
        other_areas = np.array([c.area for c in others])
        score = lengths - 1e-4 * other_areas
        j = int(np.argmax(np.where(lengths > 0.5 * lengths.max(), score, -np.inf)))
        merged = shapely.union(cells[i], others[j])
        rest = [c for k, c in enumerate(others) if k != j]
        merged_parts = [p for p in shapely.get_parts(merged) if p.geom_type == "Polygon"]
        cells = rest + merged_parts
    return cells


def water_cells(plan: Plan, rng: np.random.Generator) -> list[Polygon]:
    """Water grids: the river inside the city, cut at its centre line and across it.

    The centre line splits the river into a north and a south half, so every piece lies
    against one bank and can join a community there (administrative borders on a river
    follow its centre line). Cuts square to the centre line every ``step`` metres, with a
    little jitter, give pieces of about ``RIVER_HALF_WIDTH`` × ``step`` ≈ TARGET_GRID_M2.
    Odd pieces where the outline crosses the river are merged or bisected like land cells.
    """
    water, line = plan.water, plan.river_line
    if water.is_empty:
        return []
    half = RIVER_HALF_WIDTH
    step = TARGET_GRID_M2 / half
    cuts: list[BaseGeometry] = [line]
    for part in shapely.get_parts(line.intersection(water)):
        if part.geom_type != "LineString":
            continue
        ends = sorted(line.project(Point(c)) for c in (part.coords[0], part.coords[-1]))
        n = max(1, round((ends[1] - ends[0]) / step))
        k = np.arange(1, n) + rng.uniform(-0.15, 0.15, n - 1)
        for s in ends[0] + (ends[1] - ends[0]) * k / n:
            p = np.asarray(line.interpolate(s).coords[0])
            t = np.asarray(line.interpolate(s + 10).coords[0]) - np.asarray(
                line.interpolate(s - 10).coords[0]
            )
            normal = np.array([-t[1], t[0]]) / math.hypot(*t)
            cuts.append(LineString([p - (half + 20) * normal, p + (half + 20) * normal]))
    noded = shapely.union_all(np.array([water.boundary, *cuts], dtype=object))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    reps = np.array([[q.x, q.y] for q in shapely.point_on_surface(faces)])
    inside = shapely.contains_xy(water, reps[:, 0], reps[:, 1])
    north = np.array([y > plan.river_y(x) for x, y in reps])
    pieces: list[Polygon] = []
    for side in (True, False):
        pieces.extend(_fix_sizes([f for f, i, n in zip(faces, inside, north, strict=False) if i and n == side]))
    # A stretch of one half cut off by the outline and too small on its own joins the other
    # half. Whatever is still too small has no water neighbour at all: a crumb at the edge
    # (every stretch of river touches the outline), left out like the land crumbs in
    # coverage.merge_small, so it leaves a notch in the outline, never a hole.
    return [q for q in _fix_sizes(pieces) if q.area >= MIN_CELL_M2]
