"""Adjacency in a polygon coverage: shared edge lengths, neighbour lists, merging crumbs."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry


def shared_lengths(geoms: Sequence[BaseGeometry]) -> dict[tuple[int, int], float]:
    """Length of shared boundary between geometries of an exactly noded coverage.

    Neighbours in a noded coverage share identical vertex pairs, so hashing segments is both
    exact and much faster than pairwise overlay.
    """
    owners: dict[tuple[float, float, float, float], list[int]] = defaultdict(list)
    for i, g in enumerate(geoms):
        for ring in rings(g):
            c = np.asarray(ring.coords)
            for (x1, y1), (x2, y2) in zip(c[:-1].tolist(), c[1:].tolist(), strict=False):
                key = (x1, y1, x2, y2) if (x1, y1) <= (x2, y2) else (x2, y2, x1, y1)
                owners[key].append(i)
    shared: dict[tuple[int, int], float] = defaultdict(float)
    for (x1, y1, x2, y2), who in owners.items():
        if len(who) == 2 and who[0] != who[1]:
            a, b = sorted(who)
            shared[(a, b)] += math.hypot(x2 - x1, y2 - y1)
    return shared


def rings(g: BaseGeometry) -> list[BaseGeometry]:
    """Every exterior and interior ring of a (multi)polygon."""
    out = []
    for p in shapely.get_parts(g):
        out.append(p.exterior)
        out.extend(p.interiors)
    return out


def neighbour_lists(
    n: int, shared: dict[tuple[int, int], float], min_len: float
) -> list[list[int]]:
    """Adjacency lists of ``n`` items from shared edge lengths, keeping edges of ``min_len`` or more."""
    nb: list[list[int]] = [[] for _ in range(n)]
    for (a, b), length in sorted(shared.items()):
        if length >= min_len:
            nb[a].append(b)
            nb[b].append(a)
    return nb


def merge_small(polys: list[Polygon], min_area: float) -> list[Polygon]:
    """Merge every polygon smaller than min_area into its longest-shared-edge neighbour."""
    polys = list(polys)
    while True:
        areas = np.array([p.area for p in polys])
        small = [i for i in np.argsort(areas, kind="stable") if areas[i] < min_area]
        if not small:
            return polys
        shared = shared_lengths(polys)
        neighbours: dict[int, list[tuple[float, int]]] = defaultdict(list)
        for (a, b), length in shared.items():
            neighbours[a].append((length, b))
            neighbours[b].append((length, a))
        i = int(small[0])
        if not neighbours[i]:
            polys.pop(i)  # an isolated crumb (e.g. behind the river bank): not city land
            continue
        _, j = max(neighbours[i])
        merged = shapely.union(polys[i], polys[j])
        if merged.geom_type != "Polygon":
            polys.pop(i)
            continue
        polys[j] = merged
        polys.pop(i)
