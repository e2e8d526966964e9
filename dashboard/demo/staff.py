"""Responsible units (处置单位) and people (supervisors, centre staff) of the demo city, with names."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from dashboard.demo.regioncodes import DISTRICT_PREFIX, Region

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵"
)

_GIVEN_CHARS = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚英华玲飞斌鑫波宇浩凯健俊帆帅旭宁龙林欢阳建国志红"
    "丹萍云辉亮成峰梅琳晨婷雪慧颖倩宏文博鹏海燕春雷东杰佳欣怡子涵梓轩思雨浩然"
)


def unit_rows(regions: list[Region], city_name: str) -> list[list[str]]:
    """Responsible units: city departments, district bureaus and every street office."""
    city = [
        ("市政管理处", "department"),
        ("园林绿化局", "department"),
        ("住房和城乡建设局", "department"),
        ("市场监督管理局", "department"),
        ("公安局交通警察支队", "department"),
        ("供电公司", "department"),
        ("自来水公司", "department"),
        ("燃气集团", "department"),
        ("通信运营商联合维护中心", "department"),
    ]
    rows: list[list[str]] = []
    for n, (name, kind) in enumerate(city, start=1):
        rows.append([f"DW{DISTRICT_PREFIX}00{n:02d}", f"{city_name}{name}", kind, "", ""])
    for r in regions:
        if r.level == "district":
            enforce = f"DW{r.code}01"
            rows.append([enforce, f"{r.name}城管执法局", "department", r.code, ""])
            rows.append([f"DW{r.code}02", f"{r.name}环卫所", "disposal", r.code, enforce])
    for r in regions:
        if r.level == "street":
            # Street offices handle what no department owns (属地兜底). They answer to the
            # district government, which is not a unit here, so they have no parent unit.
            rows.append([f"DW{r.code}", f"{r.name}办事处", "street_office", r.code, ""])
    return rows


def people_rows(
    regions: list[Region],
    grid_codes: list[str],
    grid_comm: list[str],
    rng: np.random.Generator,
) -> list[list[str]]:
    """Supervisors patrol one community, or two small adjacent ones; centre staff have none."""
    by_comm: dict[str, list[str]] = defaultdict(list)
    for code, comm in zip(grid_codes, grid_comm, strict=False):
        by_comm[comm].append(code)
    comms = [r for r in regions if r.level == "community"]
    geom = {r.code: r.geom for r in comms}
    street = {r.code: r.parent_code for r in comms}

    # Pair each small community with its smallest adjacent small neighbour in the same street.
    small = 65
    paired: set[str] = set()
    beats: list[list[str]] = []
    for r in comms:
        if r.code in paired:
            continue
        group = [r.code]
        if len(by_comm[r.code]) < small:
            cands = [
                o.code
                for o in comms
                if o.code not in paired
                and o.code != r.code
                and street[o.code] == street[r.code]
                and len(by_comm[o.code]) < small
                and _shared_edge_length(geom[r.code], geom[o.code]) > 0
            ]
            if cands:
                group.append(min(cands, key=lambda c: (len(by_comm[c]), c)))
        paired.update(group)
        beats.append(group)

    names = _NameMaker(rng)
    rows: list[list[str]] = []
    n = 0
    for group in beats:
        codes = sorted(c for comm in group for c in by_comm[comm])
        # Big beats get a second supervisor sharing the same grids (two shifts).
        for _ in range(2 if len(codes) > 115 else 1):
            n += 1
            rows.append(
                [f"JDY{n:03d}", names.next(), "supervisor", street[group[0]] or "", ";".join(codes)]
            )
    for role, prefix, count in (
        ("acceptor", "SLY", 6),
        ("shift_lead", "ZBZ", 3),
        ("dispatcher", "PQY", 4),
    ):
        for k in range(1, count + 1):
            rows.append([f"{prefix}{k:03d}", names.next(), role, "", ""])
    return rows


def _shared_edge_length(a: BaseGeometry, b: BaseGeometry) -> float:
    if not a.intersects(b):
        return 0.0
    return float(shapely.intersection(a.boundary, b.boundary).length)


class _NameMaker:
    """Plausible, unique Chinese personal names (surname + one or two given characters)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._used: set[str] = set()
        # Common surnames first and more often, roughly like real frequencies.
        w = 1 / np.arange(1, len(_SURNAMES) + 1) ** 0.8
        self._p = w / w.sum()

    def next(self) -> str:
        while True:
            s = _SURNAMES[int(self._rng.choice(len(_SURNAMES), p=self._p))]
            k = 2 if self._rng.random() < 0.7 else 1
            given = "".join(
                _GIVEN_CHARS[int(i)] for i in self._rng.choice(len(_GIVEN_CHARS), size=k)
            )
            name = s + given
            if name not in self._used and (k == 1 or given[0] != given[1]):
                self._used.add(name)
                return name
