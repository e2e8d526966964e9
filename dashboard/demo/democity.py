"""Synthetic demo city (演示市): import files for a realistic, fictitious 数字城管 city.

``generate_city(out_dir, seed)`` writes ``city.toml``, ``regions.geojson``, ``grids.geojson``,
``units.csv`` and ``people.csv`` in the city import format (docs/city-data.md). Nothing here
touches the database: the importer reads these files like any real city's.

How the city is made (all geometry in a local transverse-Mercator plane in metres, centred on
``CENTER``; converted to WGS84 lon/lat at the end):

1. ``cityplan``: an irregular outline (an ellipse with random harmonics), a meandering river
   crossing it west→east, riverside roads, a ring road around a rotated old-town street grid,
   curved arterials outside it, a diagonal expressway and a railway. Polygonizing this linework
   inside the land (the outline without the river) gives the city blocks (街区).
2. ``divisions``: the river and one north–south avenue (中山路) split the city in three
   districts. Streets (街道) are grown over adjacent blocks, so street borders follow main roads.
3. ``gridcells``: per block, the Voronoi cells of a jittered, slightly anisotropic lattice
   aligned with the block, clipped to it; cells are merged or bisected until each is within
   ``GRID_AREA_BAND_M2``. Water grids (land use 水域) cover the river inside the outline, as
   real unit grids cover the whole managed area: the river is split at its centre line and
   cut across every ~90 m, so each piece (~110 m × 90 m) lies against one bank.
4. ``noding``: all cell outlines are noded together and snap-rounded to 1e-6° (about 0.1 m),
   then polygonized again, so neighbours share identical edge coordinates in the files and the
   grids tile one polygon (the city) with no gaps and no overlaps.
5. ``divisions`` again: communities (社区) are grown over adjacent land grids within a street;
   each water grid then joins the community on its bank (so the river between two districts
   is split at its centre line). ``regioncodes``: regions are exact unions of their children.
   Codes: district ``9901xx`` (a fictitious GB/T 2260 prefix), street +3, community +3, grid
   +3 numbered west→east, north→south (see ``ROW_BAND_M``), water grids included.
6. ``zoning`` gives each grid its area class and land use, ``staff`` the responsible units and
   the people, and ``cityfiles`` writes the files.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import Polygon

from dashboard.demo.cityfiles import write_city_toml, write_csv, write_grids, write_regions
from dashboard.demo.cityplan import Plan, lonlat_transform
from dashboard.demo.coverage import merge_small
from dashboard.demo.divisions import communities_for_grids, streets_for_blocks, water_communities
from dashboard.demo.gridcells import GRID_AREA_BAND_M2, MIN_CELL_M2, cells_for_block, water_cells
from dashboard.demo.noding import node_and_round
from dashboard.demo.regioncodes import ROW_BAND_M, codes_and_regions, grid_sequence_order
from dashboard.demo.staff import people_rows, unit_rows
from dashboard.demo.zoning import HOT_SPOT_LAND_USES, LAND_USES, area_class_of, land_uses_for
from dashboard.rules.geo import geodesic_area_m2

__all__ = [
    "CENTER",
    "CITY_NAME",
    "GRID_AREA_BAND_M2",
    "HOT_SPOT_LAND_USES",
    "LAND_USES",
    "ROW_BAND_M",
    "CitySummary",
    "generate_city",
    "grid_sequence_order",
]

CITY_NAME = "演示市"
CENTER = (118.78, 32.04)  # lon, lat: a plausible spot on the lower Yangtze plain


@dataclass(frozen=True)
class CitySummary:
    """Counts and area statistics of a generated city."""

    out_dir: str
    seed: int
    districts: int
    streets: int
    communities: int
    grids: int
    water_grids: int  # land_use 水域: the river inside the city
    units: int
    people: int
    city_area_km2: float
    grid_area_min_m2: float
    grid_area_median_m2: float
    grid_area_mean_m2: float
    grid_area_max_m2: float
    grids_per_community_min: int
    grids_per_community_max: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def __str__(self) -> str:
        # For people (the demo's console), not a repr.
        return (f"{self.districts} districts, {self.streets} streets, {self.communities} communities, "
                f"{self.grids:,} grids (median {self.grid_area_median_m2:,.0f} m²), {self.units} units, "
                f"{self.people} people; {self.city_area_km2:,.1f} km² in {self.out_dir}")


def generate_city(out_dir: Path, seed: int = 2026) -> CitySummary:
    """Write the demo city's import files into ``out_dir`` and return its summary."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    to_lonlat = lonlat_transform(CENTER)

    plan = Plan.make(rng)
    blocks = merge_small(plan.blocks(), MIN_CELL_M2)
    block_district = [plan.district_of(b) for b in blocks]
    block_street = streets_for_blocks(blocks, block_district, rng)

    cells: list[Polygon] = []
    cell_block: list[int] = []
    for b, block in enumerate(blocks):
        for cell in cells_for_block(block, rng):
            cells.append(cell)
            cell_block.append(b)
    n_land_cells = len(cells)
    cells.extend(water_cells(plan, rng))

    grids = node_and_round(cells, to_lonlat)
    # Centroids in the metric plane drive every distance-based choice below.
    xy = np.array([[c.x, c.y] for c in shapely.centroid(np.array(cells, dtype=object))])
    xy = xy[[g.cell for g in grids]]
    land = [i for i, g in enumerate(grids) if g.cell < n_land_cells]
    water = [i for i, g in enumerate(grids) if g.cell >= n_land_cells]

    # Communities are grown over the land grids; each water grid then joins the community
    # of the bank it lies against.
    land_street = [block_street[cell_block[grids[i].cell]] for i in land]
    land_comm = communities_for_grids([grids[i] for i in land], xy[land], land_street, rng)
    partial: list[tuple[int, int, int] | None] = [None] * len(grids)
    for i, c in zip(land, land_comm, strict=False):
        partial[i] = c
    comm_of = water_communities(grids, xy, water, partial, plan.river_y)
    street_of = [(c[0], c[1]) for c in comm_of]
    regions, grid_codes, grid_comm = codes_and_regions(grids, street_of, comm_of)
    area_class = [area_class_of(p) for p in xy]
    land_use = ["水域"] * len(grids)
    land_block = [cell_block[grids[i].cell] for i in land]
    uses = land_uses_for([grids[i] for i in land], xy[land], land_block, blocks, plan, rng)
    for i, use in zip(land, uses, strict=False):
        land_use[i] = use

    units = unit_rows(regions, CITY_NAME)
    people = people_rows(regions, grid_codes, grid_comm, rng)

    write_city_toml(out_dir / "city.toml", CITY_NAME, CENTER)
    write_regions(out_dir / "regions.geojson", regions)
    order = sorted(range(len(grids)), key=lambda i: grid_codes[i])
    write_grids(
        out_dir / "grids.geojson",
        [(grid_codes[i], grid_comm[i], area_class[i], land_use[i], grids[i].geom) for i in order],
    )
    write_csv(out_dir / "units.csv", ["code", "name", "kind", "region_code", "parent_code"], units)
    write_csv(out_dir / "people.csv", ["code", "name", "role", "region_code", "grids"], people)

    areas = np.array([geodesic_area_m2(g.geom) for g in grids])
    per_comm = Counter(grid_comm)
    level_counts = Counter(r.level for r in regions)
    return CitySummary(
        out_dir=str(out_dir),
        seed=seed,
        districts=level_counts["district"],
        streets=level_counts["street"],
        communities=level_counts["community"],
        grids=len(grids),
        water_grids=len(water),
        units=len(units),
        people=len(people),
        city_area_km2=round(float(areas.sum()) / 1e6, 3),
        grid_area_min_m2=round(float(areas.min()), 1),
        grid_area_median_m2=round(float(np.median(areas)), 1),
        grid_area_mean_m2=round(float(areas.mean()), 1),
        grid_area_max_m2=round(float(areas.max()), 1),
        grids_per_community_min=min(per_comm.values()),
        grids_per_community_max=max(per_comm.values()),
    )
