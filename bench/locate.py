"""Benchmark GridIndex lookups on 100,000 irregular ~10,000 m² grids.

Run: ``python bench/locate.py [--grids 100000] [--batch 200000]`` (``--smoke``: tiny, seconds)

The cells are the Voronoi diagram of a jittered 100 m lattice (so about 10,000 m² each,
irregular, sharing edges exactly) around a point in eastern China. Figures printed:

- build time of the index;
- ``locate`` (one Python call per point) and ``locate_many`` (one call per batch) in lookups/s;
- two baselines measured in the same run on the same machine: shapely's bare
  ``STRtree.query(points, predicate="intersects")`` without our tie handling or code lookup,
  and a naive linear scan (``shapely.intersects`` of every polygon with one point) over a
  small sample. The ratios show what the tie rule costs and what the tree buys.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import box

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchkit  # noqa: E402
from dashboard.rules.geo import geodesic_area_m2  # noqa: E402
from dashboard.rules.gridindex import GridIndex  # noqa: E402

LON0, LAT0 = 118.78, 32.04
M_PER_DEG_LAT = 110_900.0  # near 32° N; only used to size the synthetic cells
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(LAT0))
TARGET_LOCATE_MANY = 50_000  # lookups/s the dashboard needs for bulk geocoding


def build_cells(n: int, seed: int = 1) -> tuple[list[str], np.ndarray]:
    """About n Voronoi cells of a jittered 100 m lattice, as lon/lat polygons with codes."""
    rng = np.random.default_rng(seed)
    side = math.ceil(math.sqrt(n))
    step = 100.0
    ii, jj = np.meshgrid(np.arange(side), np.arange(side))
    xy = np.column_stack([ii.ravel(), jj.ravel()]).astype(float)[:n] * step
    xy += rng.uniform(-0.35 * step, 0.35 * step, size=xy.shape)
    lonlat = np.column_stack([LON0 + xy[:, 0] / M_PER_DEG_LON, LAT0 + xy[:, 1] / M_PER_DEG_LAT])
    extent = box(*lonlat.min(axis=0), *lonlat.max(axis=0))
    cells = shapely.voronoi_polygons(shapely.multipoints(lonlat), extend_to=extent)
    polys = shapely.intersection(np.array(cells.geoms, dtype=object), extent)
    polys = polys[shapely.get_type_id(polys) == 3]  # keep plain polygons
    # Fictitious codes: 12-digit community (one per 999 cells) + 3-digit sequence.
    codes = [
        f"990101{i // 999 // 999 + 1:03d}{i // 999 % 999 + 1:03d}{i % 999 + 1:03d}"
        for i in range(len(polys))
    ]
    return codes, polys


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=200_000)
    parser.add_argument("--single", type=int, default=30_000)
    parser.add_argument("--scan", type=int, default=20)
    benchkit.add_smoke(parser, grids=2000, batch=20_000, single=2000, scan=5)
    args = benchkit.parse(parser)
    t_start = time.perf_counter()

    t = time.perf_counter()
    codes, polys = build_cells(args.grids)
    t_cells = time.perf_counter() - t
    sample_areas = [geodesic_area_m2(p) for p in polys[:: max(1, len(polys) // 500)]]
    print(
        f"cells: {len(polys):,} built in {t_cells:.1f} s; "
        f"median area {np.median(sample_areas):,.0f} m² "
        f"(p5 {np.percentile(sample_areas, 5):,.0f}, p95 {np.percentile(sample_areas, 95):,.0f})"
    )

    t = time.perf_counter()
    index = GridIndex(codes, list(polys))
    print(f"index build: {time.perf_counter() - t:.2f} s")

    rng = np.random.default_rng(2)
    minx, miny, maxx, maxy = index.bounds
    # 2 % of points fall just outside the city so the "None" path is exercised too.
    pad_x, pad_y = 0.01 * (maxx - minx), 0.01 * (maxy - miny)
    lons = rng.uniform(minx - pad_x, maxx + pad_x, args.batch)
    lats = rng.uniform(miny - pad_y, maxy + pad_y, args.batch)

    # locate_many, best of 3 batches.
    many_times = []
    for _ in range(3):
        t = time.perf_counter()
        many = index.locate_many(lons, lats)
        many_times.append(time.perf_counter() - t)
    many_rate = rate(args.batch, min(many_times))

    # Single locate calls.
    n_single = min(args.single, args.batch)
    t = time.perf_counter()
    single = [
        index.locate(x, y) for x, y in zip(lons[:n_single].tolist(), lats[:n_single].tolist(), strict=False)
    ]
    single_rate = rate(n_single, time.perf_counter() - t)
    assert single == many[:n_single], "locate and locate_many disagree"

    # Baseline 1: bare STRtree query (no tie rule, no codes), same tree type, same points.
    tree = shapely.STRtree(polys)
    raw_times = []
    for _ in range(3):
        t = time.perf_counter()
        tree.query(shapely.points(lons, lats), predicate="intersects")
        raw_times.append(time.perf_counter() - t)
    raw_rate = rate(args.batch, min(raw_times))

    # Baseline 2: naive linear scan of every polygon, on a small sample.
    t = time.perf_counter()
    for x, y in zip(lons[: args.scan], lats[: args.scan], strict=False):
        hit = np.flatnonzero(shapely.intersects(polys, shapely.Point(x, y)))
        _ = codes[hit[0]] if hit.size else None
    scan_rate = rate(args.scan, time.perf_counter() - t)

    found = sum(c is not None for c in many)
    print(f"points: {args.batch:,} random, {found / args.batch:.1%} inside a grid")
    print(f"locate_many : {many_rate:12,.0f} lookups/s  (batch of {args.batch:,})")
    print(f"locate      : {single_rate:12,.0f} lookups/s  ({n_single:,} single calls)")
    print(f"baseline STRtree.query (no tie rule): {raw_rate:12,.0f} lookups/s")
    print(f"baseline linear scan ({args.scan} points): {scan_rate:12,.1f} lookups/s")
    print(f"ratio locate_many / bare STRtree  : {many_rate / raw_rate:8.2f}x")
    print(f"ratio locate_many / linear scan   : {many_rate / scan_rate:8,.0f}x")
    print(f"ratio locate      / linear scan   : {single_rate / scan_rate:8,.0f}x")
    verdict = "OK" if many_rate >= TARGET_LOCATE_MANY else "BELOW TARGET"
    print(f"target locate_many ≥ {TARGET_LOCATE_MANY:,}/s on {len(index):,} grids: {verdict}")
    print(f"total runtime {time.perf_counter() - t_start:.1f} s")
    benchkit.result(grids=len(index), locate_many_per_s=many_rate, locate_per_s=single_rate,
                    strtree_per_s=raw_rate, linear_scan_per_s=scan_rate)
    if many_rate < TARGET_LOCATE_MANY and not args.smoke:  # a smoke run's sizes judge nothing
        sys.exit(1)


if __name__ == "__main__":
    main()
