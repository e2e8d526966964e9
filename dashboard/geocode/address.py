"""Address normalisation and parsing (docs/geocoding.md, "Normalisation").

What a caller writes and what the gazetteer holds are both put through :func:`normalise`, so
they compare as equal strings when they name the same place:

1. NFKC (full-width letters, digits and signs → half-width), whitespace and punctuation out
   (brackets too, their content kept), Latin letters lower-cased.
2. Chinese numerals before a unit character become digits: 一百二十三号 → 123号, 三栋 → 3栋.
   Names keep theirs (三元社区, 九龙路).
3. Canonical forms: 号楼 / 幢 / 座 / # → 栋; 房 → 室; "2单元301" → 2单元301室; 號 → 号; the short
   words of facility types (菜场 → 菜市场, 一中 → 第一中学, 社区医院 → 社区卫生服务中心).
4. Administrative prefixes out: the province, the city and the names of the city's own
   divisions (区, 街道, 社区; a district also by its short name at the start). The district
   named, if any, is kept aside as a hint (:class:`Normalised`).

:func:`parse` then finds the house number part: road (…路/街/大道/大街/巷/胡同), lane (弄) and
number (号; a bare number right after the road counts too).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

__all__ = ["Divisions", "Normalised", "Parsed", "chinese_number", "normalise", "parse"]

PROVINCES = (
    "北京市 天津市 上海市 重庆市 河北省 山西省 辽宁省 吉林省 黑龙江省 江苏省 浙江省 安徽省 福建省 江西省 "
    "山东省 河南省 湖北省 湖南省 广东省 海南省 四川省 贵州省 云南省 陕西省 甘肃省 青海省 台湾省 "
    "内蒙古自治区 广西壮族自治区 西藏自治区 宁夏回族自治区 新疆维吾尔自治区 香港特别行政区 澳门特别行政区"
).split()

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_POWERS = {"十": 10, "百": 100, "千": 1000}
_CN_NUMBER = re.compile(r"[零〇一二两三四五六七八九十百千]+(?=号|弄|栋|幢|座|单元|室|楼|层|巷)")
_PUNCT = re.compile(r"[\s,，。.、;；:：!！?？\"'“”‘’()（）\[\]【】<>《》{}·•~～_|/\\]+")
_FORMS = (
    (re.compile("號"), "号"),
    (re.compile(r"(\d+)(?:号楼|幢|座|#楼|#|栋楼)"), r"\1栋"),
    (re.compile(r"(\d+)(?:号房|房间|房)"), r"\1室"),
    (re.compile(r"(\d+)单元(\d+)(?![\d室])"), r"\1单元\2室"),
)
#: Short words people use for a facility's type → the gazetteer's word (both sides of a match).
ABBREVIATIONS = (
    (re.compile(r"社区医院|社区卫生服务站|社区卫生站"), "社区卫生服务中心"),
    (re.compile(r"菜场"), "菜市场"),
    (re.compile(r"(?<!第)一中(?!学)"), "第一中学"),
)
ROAD_SUFFIXES = ("大道", "大街", "胡同", "路", "街", "巷")
_ROAD_NUMBER = re.compile(
    r"(?P<road>[一-鿿]{1,12}?(?:大道|大街|胡同|路|街|巷))(?:(?P<lane>\d+)弄)?(?P<num>\d+)(?:号|(?![\d弄栋单元室]))"
)


def chinese_number(text: str) -> int | None:
    """一百二十三 → 123, 十五 → 15, 一二三 → 123 (digit by digit); None for what is not a number."""
    if not text or any(c not in _DIGITS and c not in _POWERS for c in text):
        return None
    if not any(c in _POWERS for c in text):
        return int("".join(str(_DIGITS[c]) for c in text))
    total, digit = 0, None
    for c in text:
        if c in _DIGITS:
            digit = _DIGITS[c]
        else:
            total += (1 if digit is None else digit) * _POWERS[c]
            digit = None
    return total + (digit or 0)


@dataclass(frozen=True)
class Divisions:
    """The names stripped as prefixes: the city's names and its districts, streets and communities.

    ``districts`` maps a district's full name (青山区) to itself; its short form (青山) is
    recognised at the start of an address unless a road suffix follows (青山路 is a road).
    """

    cities: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    others: tuple[str, ...] = ()  # 街道 and 社区 names

    @classmethod
    def of(cls, cities: Iterable[str], districts: Iterable[str], others: Iterable[str]) -> Divisions:
        def clean(names: Iterable[str]) -> tuple[str, ...]:
            # Longest first, so 青山区 goes before a shorter name it contains.
            return tuple(sorted({_clean(n) for n in names if n and _clean(n)}, key=lambda n: (-len(n), n)))

        city_names = set()
        for c in cities:
            c = _clean(c)
            if c:
                city_names.add(c)
                if c.endswith("市") and len(c) > 2:
                    city_names.add(c[:-1])
        return cls(clean(city_names), clean(districts), clean(others))

    @cached_property
    def others_pattern(self) -> re.Pattern[str] | None:
        """One alternation of every street and community name (longest first), or None."""
        return re.compile("|".join(map(re.escape, self.others))) if self.others else None


@dataclass(frozen=True)
class Normalised:
    """An address after :func:`normalise`: the text and the district it named (full name), if any."""

    text: str
    district: str | None = None


@dataclass(frozen=True)
class Parsed:
    """The house-number part of a normalised address; ``road`` is the raw text up to the road suffix."""

    road: str
    lane: int | None
    number: int
    start: int  # where the road text starts in the normalised text
    end: int  # just past the number (and its 号)


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = _PUNCT.sub("", text)
    return _CN_NUMBER.sub(lambda m: str(n) if (n := chinese_number(m.group())) is not None else m.group(), text)


def normalise(text: str, divisions: Divisions = Divisions(), *, strip_divisions: bool = True) -> Normalised:
    """``text`` in the canonical form the gazetteer's keys use (module docstring).

    ``strip_divisions=False`` keeps the districts', streets' and communities' names (POI names
    such as 青山区人民医院 or 七里社区卫生服务中心 are compared that way); province and city go.
    """
    out = _clean(text)
    for pattern, repl in _FORMS:
        out = pattern.sub(repl, out)
    for pattern, repl in ABBREVIATIONS:
        out = pattern.sub(repl, out)
    district = None
    for name in PROVINCES:
        out = out.replace(name, "")
    for name in divisions.cities if not strip_divisions else ():
        out = out.replace(name + "市", "") if not name.endswith("市") else out.replace(name, "")
    if not strip_divisions:
        return Normalised(out, next((n for n in divisions.districts if n in out), None))
    for name in divisions.districts:
        if name in out:
            district = district or name
            out = out.replace(name, "")
    for name in divisions.cities:
        if out.startswith(name) and (name.endswith("市") or not out[len(name):].startswith(ROAD_SUFFIXES)):
            out = out[len(name):]  # 南京路 in 南京 keeps its name
        out = out.replace(name + "市", "") if not name.endswith("市") else out.replace(name, "")
    if district is None:
        for name in divisions.districts:
            short = name[:-1] if name.endswith(("区", "县", "市")) and len(name) > 2 else None
            if short and out.startswith(short) and not out[len(short):].startswith(ROAD_SUFFIXES):
                district = name
                out = out[len(short):]
                break
    if divisions.others_pattern is not None:
        out = divisions.others_pattern.sub("", out)
    return Normalised(out, district)


def parse(text: str) -> Parsed | None:
    """The road, lane and number of a normalised address (the first such part), or None."""
    m = _ROAD_NUMBER.search(text)
    if m is None:
        return None
    lane = m.group("lane")
    return Parsed(m.group("road"), int(lane) if lane else None, int(m.group("num")), m.start(), m.end())
