"""Cells → unit grids in WGS84: noded together, snap-rounded to 1e-6°, fixed under the writer's rounding."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import Polygon, shape
from shapely.geometry.base import BaseGeometry

from dashboard.demo.coverage import rings
from dashboard.rules.geo import to_geojson


@dataclass
class Grid:
    """One unit grid as written, and the metric cell it came from."""

    geom: Polygon  # WGS84, coordinates on the 1e-6° grid, as written to the file
    cell: int  # index of the metric cell it came from
    lon: float  # centroid
    lat: float


def node_and_round(
    cells: list[Polygon], to_lonlat: Callable[[np.ndarray], np.ndarray]
) -> list[Grid]:
    """Node all cell outlines together on the 1e-6° grid and polygonize them again.

    Cells of different blocks meet with T-junctions (a vertex of one lying on the edge of
    the other). Snap-rounding every outline together inserts those vertices on both sides,
    so each shared edge is written with identical coordinates in both neighbours.
    """
    ll = shapely.transform(np.array(cells, dtype=object), to_lonlat)
    noded = shapely.union_all(shapely.boundary(ll), grid_size=1e-6)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    reps = shapely.point_on_surface(faces)
    face_idx, cell_idx = shapely.STRtree(ll).query(reps, predicate="intersects")
    best: dict[int, tuple[float, int]] = {}
    for f, c in zip(face_idx.tolist(), cell_idx.tolist(), strict=False):
        a = faces[f].area
        if c not in best or a > best[c][0]:
            best[c] = (a, f)
    owner = {f: c for c, (_, f) in best.items()}
    if len(owner) != len(best):
        raise RuntimeError("one face is the main face of two cells")
    # Rounding can split a sliver (a fraction of a m²) off a cell as a face of its own.
    # Dropping it would leave a hole in the tiling: it joins the grid it shares the longest
    # edge with.
    tree = shapely.STRtree(faces)
    pending = [f for f in range(len(faces)) if f not in owner]
    while pending:
        joined = []
        for f in pending:
            cands = []
            for g in tree.query(faces[f], predicate="intersects").tolist():
                if g in owner:
                    shared = shapely.intersection(faces[f].boundary, faces[g].boundary).length
                    if shared > 0:
                        cands.append((shared, -owner[g]))
            if cands:
                owner[f] = -max(cands)[1]
                joined.append(f)
        if not joined:
            raise RuntimeError(f"faces {pending[:5]} share no edge with any grid")
        pending = [f for f in pending if f not in owner]
    parts: dict[int, list[int]] = defaultdict(list)
    for f, c in owner.items():
        parts[c].append(f)
    cell_ids = sorted(parts)
    polys = [
        faces[parts[c][0]] if len(parts[c]) == 1 else exact_union([faces[f] for f in sorted(parts[c])])
        for c in cell_ids
    ]
    grids = []
    for c, geom in zip(cell_ids, _stable_under_rounding(polys), strict=False):
        if geom.geom_type != "Polygon" or not geom.is_valid:
            raise RuntimeError(
                f"cell {c} became {geom.geom_type} / {shapely.is_valid_reason(geom)}"
            )
        cen = geom.centroid
        grids.append(Grid(geom, c, cen.x, cen.y))
    return grids


def _round_trip(geom: BaseGeometry) -> BaseGeometry:
    """The geometry exactly as the writer will store it."""
    return shape(json.loads(to_geojson(geom)))


def _stable_under_rounding(polys: list[BaseGeometry]) -> list[BaseGeometry]:
    """Make each polygon of a noded coverage a fixed point of the writer's rounding.

    The writer rounds every polygon on its own (snap-rounding). Rarely a polygon has a
    spike well under 1e-6° wide (a vertex a pixel away from where its ring turns back);
    rounding collapses the spike in that polygon only, which opens a sliver hole against
    its neighbour. Such a vertex is moved onto the nearest vertex that survives rounding,
    in every polygon that uses it, so neighbours keep identical edges; repeat until every
    polygon rounds to itself. Returns the polygons as written.
    """
    out = [_round_trip(p) for p in polys]
    todo = [i for i, (p, r) in enumerate(zip(polys, out, strict=False)) if not _same(p, r)]
    current = list(polys)
    for _ in range(6):
        if not todo:
            return out
        moves: dict[tuple[float, float], tuple[float, float]] = {}
        for i in todo:
            kept = np.array([c for ring in rings(out[i]) for c in ring.coords])
            kept_set = set(map(tuple, kept.tolist()))
            for ring in rings(current[i]):
                for v in ring.coords:
                    if v in kept_set or v in moves:
                        continue
                    d = np.hypot(*(kept - v).T)
                    j = int(np.argmin(d))
                    if d[j] > 1e-5:
                        raise RuntimeError(f"rounding moved vertex {v} by {d[j]:.1e}°")
                    moves[v] = (float(kept[j, 0]), float(kept[j, 1]))
        touched = [
            i
            for i, p in enumerate(current)
            if any(v in moves for ring in rings(p) for v in ring.coords)
        ]
        todo = []
        for i in touched:
            current[i] = _move_vertices(current[i], moves)
            out[i] = _round_trip(current[i])
            if not _same(current[i], out[i]):
                todo.append(i)
    raise RuntimeError(f"grids {todo[:5]} still change when rounded")


def _same(a: BaseGeometry, b: BaseGeometry) -> bool:
    return bool(shapely.normalize(a).equals_exact(shapely.normalize(b), 0.0))


def _move_vertices(
    poly: BaseGeometry, moves: dict[tuple[float, float], tuple[float, float]]
) -> Polygon:
    def ring(coords: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for c in coords:
            c = moves.get(c, c)
            if not out or out[-1] != c:
                out.append(c)
        return out

    return Polygon(
        ring(list(poly.exterior.coords)), [ring(list(r.coords)) for r in poly.interiors]
    )


def exact_union(geoms: Sequence[BaseGeometry]) -> BaseGeometry:
    """Exact union on the 1e-6° grid; rounding again cannot move shared vertices."""
    u = shapely.union_all(np.array(geoms, dtype=object), grid_size=1e-6)
    return shape(json.loads(to_geojson(u)))
