"""Area class (A/B/C) and land use of each grid, zoned by distance from the centre and the plan."""

from __future__ import annotations

import math

import numpy as np
from shapely.geometry import Polygon

from dashboard.demo.cityplan import RIVER_HALF_WIDTH, RIVERSIDE_STRIP, Plan
from dashboard.demo.noding import Grid

LAND_USES = (
    "居住",
    "商业",
    "商住混合",
    "行政办公",
    "学校",
    "医院",
    "集贸市场",
    "交通枢纽",
    "公园绿地",
    "工业",
    "物流仓储",
    "在建工地",
    "水域",  # water grids: the river inside the city
)
# Kinds the case simulator weights up (crowds, vendors, muck trucks).
HOT_SPOT_LAND_USES = ("集贸市场", "交通枢纽", "商业", "在建工地")

_AREA_CLASS_M = (1_700.0, 3_300.0)  # A within the first radius of the centre, B the second


def area_class_of(xy: np.ndarray) -> str:
    """A = core, B = general, C = outskirts, by distance from the city centre."""
    d = math.hypot(float(xy[0]), float(xy[1]))
    return "A" if d <= _AREA_CLASS_M[0] else "B" if d <= _AREA_CLASS_M[1] else "C"


def land_uses_for(
    grids: list[Grid],
    xy: np.ndarray,
    block_of: list[int],
    blocks: list[Polygon],
    plan: Plan,
    rng: np.random.Generator,
) -> list[str]:
    """Land use per grid: a zoned base use per block, parks, then point facilities."""
    zones = {
        "core": (["商业", "商住混合", "行政办公", "居住"], [0.45, 0.3, 0.1, 0.15]),
        "mid": (["居住", "商住混合", "商业", "行政办公"], [0.68, 0.2, 0.09, 0.03]),
        "outer": (
            ["居住", "工业", "物流仓储", "在建工地", "商住混合"],
            [0.55, 0.2, 0.08, 0.09, 0.08],
        ),
        "industrial": (["工业", "物流仓储", "在建工地"], [0.75, 0.17, 0.08]),
    }

    def zone(x: float, y: float) -> str:
        d = math.hypot(x, y)
        if d < 1_300:
            return "core"
        if d < 3_000:
            return "mid"
        # An industrial park on the south bank's eastern fringe.
        if x > 1_200 and y < plan.river_y(x) - 1_200:
            return "industrial"
        return "outer"

    block_xy = [b.centroid for b in blocks]
    block_use = {}
    for b in sorted(set(block_of)):
        kinds, p = zones[zone(block_xy[b].x, block_xy[b].y)]
        block_use[b] = kinds[int(rng.choice(len(kinds), p=p))]
    park_blocks = {
        b
        for b in block_use
        if math.hypot(block_xy[b].x - plan.hill[0], block_xy[b].y - plan.hill[1]) < 650
    }
    mid_blocks = sorted(b for b in block_use if zone(block_xy[b].x, block_xy[b].y) == "mid")
    park_blocks.update(
        int(b) for b in rng.choice(mid_blocks, size=min(4, len(mid_blocks)), replace=False)
    )

    uses: list[str] = []
    for i in range(len(grids)):
        b = block_of[i]
        x, y = xy[i]
        if plan.distance_to_river(x, y) < RIVER_HALF_WIDTH + RIVERSIDE_STRIP - 5:
            uses.append("公园绿地")  # the riverside park strip
        elif b in park_blocks:
            uses.append("公园绿地")
        elif rng.random() < 0.85:
            uses.append(block_use[b])
        else:
            kinds, p = zones[zone(x, y)]
            uses.append(kinds[int(rng.choice(len(kinds), p=p))])

    def place(kind: str, count: int, allowed: set[str]) -> None:
        pool = [i for i, u in enumerate(uses) if u in allowed]
        for i in rng.choice(pool, size=min(count, len(pool)), replace=False):
            uses[int(i)] = kind

    # The railway station and its square, then bus/metro hubs spread around the city.
    d_station = np.hypot(xy[:, 0] - plan.station[0], xy[:, 1] - plan.station[1])
    for i in np.argsort(d_station, kind="stable")[:3]:
        uses[int(i)] = "交通枢纽"
    for ang in np.linspace(0, 2 * math.pi, 6, endpoint=False) + rng.uniform(0, 1):
        target = np.array([math.cos(ang) * 2_600, math.sin(ang) * 2_000])
        d = np.hypot(*(xy - target).T)
        uses[int(np.argmin(d))] = "交通枢纽"
    living = {"居住", "商住混合", "商业"}
    place("集贸市场", 16, living)
    place("学校", len(grids) // 60, {"居住", "商住混合"})
    place("医院", 12, living | {"行政办公"})
    return uses
