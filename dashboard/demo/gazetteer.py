"""The demo city's address gazetteer (地名地址): 门牌 along named roads and POIs, as ``gazetteer.csv``.

Made from the demo city's own files (``grids.geojson``, ``regions.geojson``), deterministically:

- **roads**: straight named roads across the city, east–west every ``EW_SPACING_M`` (…路) and
  north–south every ``NS_SPACING_M`` (…街, a few …大道), each with a distinct name;
- **门牌**: along each road every ``HOUSE_SPACING_M``, odd numbers on the north (west) side and
  even ones on the south (east) side, ``SIDE_OFFSET_M`` off the centre line, numbered from the
  west (north) end by distance, so numbers skip where the road crosses water; every tenth odd
  number of an east–west road opens a lane (弄) with six houses;
- **POI**: per community a residential compound and a clinic, per street a police station and a
  market, per district a hospital, a middle school and a library, per road a primary school or
  a park; each at a 门牌 of its community (its point and address).

Only points on land grids (not 水域) are kept. The file is in the import format of
``gridhall import gazetteer`` (docs/geocoding.md).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
from shapely.geometry import shape

from dashboard.rules.gridindex import GridIndex

__all__ = ["GAZETTEER_FILE", "generate_gazetteer"]

GAZETTEER_FILE = "gazetteer.csv"
EW_SPACING_M = 420.0
NS_SPACING_M = 480.0
HOUSE_SPACING_M = 40.0
SIDE_OFFSET_M = 12.0
_M_PER_DEG_LAT = 110_900.0

_ROAD_STEMS = (
    "中山 解放 人民 建设 和平 胜利 长江 黄河 北京 上海 广州 延安 光明 复兴 民主 东风 红星 华山 泰山 衡山 "
    "嵩山 庐山 黄山 峨眉 昆仑 天山 太行 燕山 秦岭 珠江 淮河 汉江 湘江 赣江 闽江 钱塘 西湖 太湖 洞庭 鄱阳 "
    "巢湖 洪泽 香樟 紫薇 石榴 枫叶 松柏 杨柳 龙蟠 虎踞 凤台 麒麟 白云 彩虹 星火 曙光 黎明 振兴 繁荣 富强"
).split()
_POI_TYPES_COMMUNITY = ("小区", "社区卫生服务中心")
_POI_TYPES_STREET = ("派出所", "菜市场")
_POI_TYPES_DISTRICT = ("人民医院", "第一中学", "图书馆")
_POI_TYPES_ROAD = ("小学", "公园")


def _stem(name: str, suffixes: tuple[str, ...]) -> str:
    for suffix in suffixes:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def generate_gazetteer(city_dir: Path, out: Path | None = None) -> int:
    """Write ``gazetteer.csv`` for the demo city in ``city_dir`` (or to ``out``); returns its row count."""
    city_dir = Path(city_dir)
    grids = json.loads((city_dir / "grids.geojson").read_text(encoding="utf-8"))["features"]
    regions = json.loads((city_dir / "regions.geojson").read_text(encoding="utf-8"))["features"]
    region = {f["properties"]["code"]: f["properties"] for f in regions}
    land = [f for f in grids if f["properties"].get("land_use") != "水域"]
    index = GridIndex([f["properties"]["code"] for f in land], [shape(f["geometry"]) for f in land])
    community_of = {f["properties"]["code"]: f["properties"]["community_code"] for f in land}
    minx, miny, maxx, maxy = index.bounds
    lat0 = (miny + maxy) / 2
    m_lon = _M_PER_DEG_LAT * math.cos(math.radians(lat0))

    def names_of(grid: str) -> tuple[str, str, str]:
        c = region[community_of[grid]]
        s = region[c["parent_code"]]
        d = region[s["parent_code"]]
        return d["name"], s["name"], c["name"]

    rows: list[list[str]] = []
    by_community: dict[str, list[int]] = {}
    by_road: dict[str, list[int]] = {}
    stems = iter(_ROAD_STEMS)
    width_m, height_m = (maxx - minx) * m_lon, (maxy - miny) * _M_PER_DEG_LAT

    def add_house(road: str, address_tail: str, lon: float, lat: float, grid: str) -> None:
        district, street, community = names_of(grid)
        by_community.setdefault(community, []).append(len(rows))
        by_road.setdefault(road, []).append(len(rows))
        rows.append(["门牌", f"{district}{road}{address_tail}", "", district, street, community,
                     f"{lon:.7f}", f"{lat:.7f}"])

    roads: list[tuple[str, bool, float]] = []  # name, east-west?, offset (m) from the south-west corner
    for k in range(1, int(height_m // EW_SPACING_M) + 1):
        roads.append((next(stems) + "路", True, k * EW_SPACING_M - EW_SPACING_M / 3))
    for k in range(1, int(width_m // NS_SPACING_M) + 1):
        roads.append((next(stems) + ("大道" if k % 5 == 0 else "街"), False, k * NS_SPACING_M - NS_SPACING_M / 3))
    for name, east_west, offset in roads:
        length = width_m if east_west else height_m
        steps = np.arange(HOUSE_SPACING_M / 2, length, HOUSE_SPACING_M)
        for side in (1, -1):  # north/west side odd, south/east side even
            along = steps
            across = offset + side * SIDE_OFFSET_M
            if east_west:
                lons, lats = minx + along / m_lon, miny + np.full_like(along, across) / _M_PER_DEG_LAT
            else:  # numbered from the north end
                lons, lats = minx + np.full_like(along, across) / m_lon, maxy - along / _M_PER_DEG_LAT
            codes = index.locate_many(lons, lats)
            for j, code in enumerate(codes):
                if code is None:
                    continue
                number = 2 * j + (1 if side == 1 else 2)
                add_house(name, f"{number}号", float(lons[j]), float(lats[j]), code)
                if east_west and side == 1 and j % 10 == 5:
                    for h in range(1, 7):
                        lane_lat = float(lats[j]) + (10.0 + 15.0 * h) / _M_PER_DEG_LAT
                        lane_code = index.locate(float(lons[j]), lane_lat)
                        if lane_code is not None:
                            add_house(name, f"{number}弄{h}号", float(lons[j]), lane_lat, lane_code)
    houses = len(rows)
    rng = np.random.default_rng(2026)
    taken: set[str] = set()

    def add_poi(name: str, members: list[int]) -> None:
        if name in taken or not members:
            return
        taken.add(name)
        house = rows[members[int(rng.integers(len(members)))]]
        rows.append(["POI", house[1], name, *house[3:]])

    communities = sorted(by_community)
    for community in communities:
        stem = _stem(community, ("社区",))
        for kind in _POI_TYPES_COMMUNITY:
            add_poi(stem + kind, by_community[community])
    streets: dict[str, list[int]] = {}
    districts: dict[str, list[int]] = {}
    for i in range(houses):
        streets.setdefault(rows[i][4], []).append(i)
        districts.setdefault(rows[i][3], []).append(i)
    for street in sorted(streets):
        for kind in _POI_TYPES_STREET:
            add_poi(_stem(street, ("街道",)) + kind, streets[street])
    for district in sorted(districts):
        for kind in _POI_TYPES_DISTRICT:
            add_poi(district + kind, districts[district])
    for n, road in enumerate(sorted(by_road)):
        add_poi(_stem(road, ("大道", "路", "街")) + _POI_TYPES_ROAD[n % 2], by_road[road])
    target = Path(out) if out is not None else city_dir / GAZETTEER_FILE
    with target.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["kind", "address", "name", "district", "street", "community", "lon", "lat"])
        writer.writerows(rows)
    return len(rows)
