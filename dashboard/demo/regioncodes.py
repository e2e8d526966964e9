"""Codes and names of the demo city's regions and grids; regions are exact unions of their children."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from shapely.geometry.base import BaseGeometry

from dashboard.demo.noding import Grid, exact_union
from dashboard.rules.codes import make_grid_code

DISTRICT_PREFIX = "9901"  # not a real GB/T 2260 prefix (99 is no province)

# Grid sequence numbers run west→east within horizontal bands of this height, counted from
# the community's northern edge (north→south): a grid's band is
# floor((community max lat − grid centroid lat) / band height in degrees).
ROW_BAND_M = 100.0
_M_PER_DEG_LAT = 110_900.0  # at 32° N; only used to express ROW_BAND_M in degrees
ROW_BAND_DEG = ROW_BAND_M / _M_PER_DEG_LAT

_DISTRICTS = (  # code suffix, name
    ("01", "青山区"),
    ("02", "临江区"),
    ("03", "新城区"),
)

_STREET_NAMES = {
    "01": ["翠屏街道", "松岗街道", "鹤鸣街道", "云台街道", "枫林街道", "石门街道", "青龙街道"],
    "02": ["滨江街道", "鼓楼街道", "朝阳街道", "文昌街道", "望江街道", "府前街道", "北关街道"],
    "03": ["江南街道", "新港街道", "龙湾街道", "科创街道", "高铁街道", "金湖街道", "南湖街道"],
}

_COMMUNITY_NAMES = (
    "翠竹 柳园 桃源 梧桐 紫荆 金桥 南苑 东门 西关 北岸 银杏 桂花 "
    "丁香 海棠 玉兰 芙蓉 荷塘 莲花 长青 松涛 凤凰 锦绣 和平 幸福 "
    "光华 春晖 朝晖 晨光 新华 人民 建设 解放 红旗 友谊 团结 育才 "
    "书香 文苑 学府 天河 金沙 银河 明珠 江湾 滨湖 望月 清风 白鹭 "
    "湖滨 月牙 青石 双井 三元 五星 七里 九龙 石桥 枫桥 梅园 杏林 "
    "樱花 兰亭 竹林 安居 康乐 怡景 瑞丰 永安 嘉禾 宏图 新村 古塔"
).split()


@dataclass
class Region:
    """A district, street or community with its code, name and geometry."""

    code: str
    name: str
    level: str
    parent_code: str | None
    geom: BaseGeometry


def grid_sequence_order(centroids: Sequence[tuple[float, float]], north_lat: float) -> list[int]:
    """Order of grids for sequence numbers: by ``ROW_BAND_M`` band from the north, then by lon.

    ``centroids`` are (lon, lat) of the grids of one community; ``north_lat`` is that
    community's maximum latitude. Returns indices into ``centroids``, first = sequence 001.
    """

    def key(i: int) -> tuple[int, float, float]:
        lon, lat = centroids[i]
        return (math.floor((north_lat - lat) / ROW_BAND_DEG), lon, -lat)

    return sorted(range(len(centroids)), key=key)


def _west_east_north_south(points: list[tuple[float, float]], band: float) -> list[int]:
    """Order items by bands of ``band`` degrees from the north, west → east inside a band."""
    north = max(lat for _, lat in points)
    return sorted(
        range(len(points)),
        key=lambda i: (math.floor((north - points[i][1]) / band), points[i][0]),
    )


def codes_and_regions(
    grids: list[Grid],
    street_of: list[tuple[int, int]],
    comm_of: list[tuple[int, int, int]],
) -> tuple[list[Region], list[str], list[str]]:
    """Give every region and grid its code and name; regions are unions of their children."""
    comm_members: dict[tuple[int, int, int], list[int]] = defaultdict(list)
    for i, c in enumerate(comm_of):
        comm_members[c].append(i)
    comm_geom = {c: exact_union([grids[i].geom for i in m]) for c, m in comm_members.items()}

    regions: list[Region] = []
    grid_codes = [""] * len(grids)
    grid_comm = [""] * len(grids)
    comm_regions: list[Region] = []
    street_regions: list[Region] = []
    names = iter(_COMMUNITY_NAMES)
    # Band sizes for numbering streets and communities (about one block, in degrees).
    coarse = 800.0 / _M_PER_DEG_LAT

    for d, (suffix, d_name) in enumerate(_DISTRICTS):
        d_code = DISTRICT_PREFIX + suffix
        street_keys = sorted({s for s in street_of if s[0] == d})
        street_geoms = {}
        for s in street_keys:
            comms = [c for c in comm_members if c[:2] == s]
            street_geoms[s] = exact_union([comm_geom[c] for c in comms])
        s_order = _west_east_north_south([_centre(street_geoms[s]) for s in street_keys], coarse)
        d_streets = []
        for s_seq, si in enumerate(s_order, start=1):
            s = street_keys[si]
            s_code = f"{d_code}{s_seq:03d}"
            s_region = Region(
                s_code, _STREET_NAMES[suffix][s_seq - 1], "street", d_code, street_geoms[s]
            )
            d_streets.append(s_region)
            comms = sorted(c for c in comm_members if c[:2] == s)
            c_order = _west_east_north_south([_centre(comm_geom[c]) for c in comms], coarse / 2)
            for c_seq, ci in enumerate(c_order, start=1):
                c = comms[ci]
                c_code = f"{s_code}{c_seq:03d}"
                comm_regions.append(
                    Region(c_code, next(names) + "社区", "community", s_code, comm_geom[c])
                )
                m = comm_members[c]
                north = comm_geom[c].bounds[3]
                order = grid_sequence_order([(grids[i].lon, grids[i].lat) for i in m], north)
                for g_seq, gi in enumerate(order, start=1):
                    grid_codes[m[gi]] = make_grid_code(c_code, g_seq)
                    grid_comm[m[gi]] = c_code
        street_regions.extend(d_streets)
        regions.append(
            Region(d_code, d_name, "district", None, exact_union([s.geom for s in d_streets]))
        )
    regions.extend(street_regions)
    regions.extend(comm_regions)
    return regions, grid_codes, grid_comm


def _centre(g: BaseGeometry) -> tuple[float, float]:
    p = g.centroid
    return (p.x, p.y)
