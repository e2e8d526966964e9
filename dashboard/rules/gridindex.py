"""Point → unit-grid lookup (which 单元网格 does a report's lon/lat fall in?).

Grids tile the city edge to edge, so a point on a shared edge or vertex touches two or more
grids. The tie rule is deterministic and documented: **among all grids whose closed polygon
contains the point, the one with the smallest code (lexicographic string order) wins.**
Points outside every grid return ``None`` ("outside the city").

The index keeps the polygons sorted by code, so "smallest code" is simply "smallest
position in the STRtree", and resolving ties is an integer minimum per query point.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon

__all__ = ["GridIndex"]


class GridIndex:
    """An STRtree over unit-grid polygons (WGS84 lon/lat) with a smallest-code tie rule."""

    def __init__(self, codes: Sequence[str], polygons: Sequence[Polygon | MultiPolygon]) -> None:
        if len(codes) != len(polygons):
            raise ValueError(f"{len(codes)} codes but {len(polygons)} polygons")
        order = sorted(range(len(codes)), key=lambda i: codes[i])
        sorted_codes = [codes[i] for i in order]
        for a, b in zip(sorted_codes, sorted_codes[1:], strict=False):
            if a == b:
                raise ValueError(f"duplicate grid code {a!r}")
        geoms = np.array([polygons[i] for i in order], dtype=object)
        for code, geom in zip(sorted_codes, geoms, strict=False):
            if not isinstance(geom, (Polygon, MultiPolygon)) or geom.is_empty:
                raise ValueError(f"grid {code!r}: expected a non-empty Polygon/MultiPolygon")
        self._codes: tuple[str, ...] = tuple(sorted_codes)
        self._geoms = geoms
        self._tree = shapely.STRtree(geoms)
        # Position len(codes) stands for "no grid": indexing this array turns tree positions
        # straight into the answer list, None included, without a Python loop.
        self._lookup = np.array([*self._codes, None], dtype=object)

    def __len__(self) -> int:
        return len(self._codes)

    @property
    def codes(self) -> tuple[str, ...]:
        """All grid codes, sorted."""
        return self._codes

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(min lon, min lat, max lon, max lat) of all grids; NaNs when the index is empty."""
        minx, miny, maxx, maxy = shapely.total_bounds(self._geoms)
        return (float(minx), float(miny), float(maxx), float(maxy))

    def locate(self, lon: float, lat: float) -> str | None:
        """Code of the grid containing (lon, lat), boundary included; None outside the city."""
        if not (np.isfinite(lon) and np.isfinite(lat)):
            return None
        hits = self._tree.query(Point(lon, lat), predicate="intersects")
        if hits.size == 0:
            return None
        return self._codes[int(hits.min())]

    def locate_many(self, lons: npt.ArrayLike, lats: npt.ArrayLike) -> list[str | None]:
        """Vectorised :meth:`locate`: one code (or None) per (lon, lat) pair, same tie rule."""
        x = np.asarray(lons, dtype=float).ravel()
        y = np.asarray(lats, dtype=float).ravel()
        if x.shape != y.shape:
            raise ValueError(f"{x.size} longitudes but {y.size} latitudes")
        n_grids = len(self._codes)
        best = np.full(x.size, n_grids, dtype=np.intp)
        finite = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
        if finite.size and n_grids:
            points = shapely.points(x[finite], y[finite])
            # "intersects" rather than "within" so that points on an edge are found at all;
            # the minimum tree position per point then applies the smallest-code rule.
            point_idx, tree_idx = self._tree.query(points, predicate="intersects")
            np.minimum.at(best, finite[point_idx], tree_idx)
        codes: list[str | None] = self._lookup[best].tolist()
        return codes
