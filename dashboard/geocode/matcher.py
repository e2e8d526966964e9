"""Geocoding: a free-text Chinese address → a gazetteer place → its unit grid (docs/geocoding.md).

``Geocoder.load(session)`` builds the matcher once from the stored gazetteer;
``geocode(text)`` answers a :class:`Geocoded` or None (未定位: below the threshold, ambiguous,
or nothing alike). A wrong grid is worse than 未定位, so a match must pass every guard:

1. **exact** — the normalised text (``dashboard/geocode/address.py``) is a gazetteer key: a
   full address, a POI's name, a POI's name without its type word (翠竹 for 翠竹小区) when that is
   unique; or its road is a known road (the longest known road ending where the road suffix
   is) and that road has exactly its lane and house number. Score 100.
2. **fuzzy** — blocked by the house number: only roads that HAVE the text's lane and number
   are compared with the text before the number (rapidfuzz ``ratio`` over tails one character
   shorter or longer, so a dropped or extra character costs one edit); a road written without
   its suffix (中山123号) is compared with the road names without theirs. Without a house
   number, POI names are compared with the text (``partial_ratio``, weighted by how much of
   the name the text covers). The score is the similarity of the matched part (0–100).

Then: a district named in the text keeps only the places of that district; candidates in
different grids must be ``MARGIN`` points apart, else the answer is None (ambiguous); the
score must reach ``min_score`` (``GRIDHALL_GEOCODE_MIN_SCORE``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pypinyin import Style, lazy_pinyin
from rapidfuzz import fuzz
from rapidfuzz import process as rf_process
from sqlalchemy.orm import Session

from dashboard.geocode.address import ROAD_SUFFIXES, Divisions, normalise, parse
from dashboard.geocode.gazetteer import Place, load_divisions, load_places
from dashboard.settings import load_settings

__all__ = ["MARGIN", "POI_TYPES", "Geocoded", "Geocoder"]

#: Points the best candidate must lead the best one in another grid by.
MARGIN = 8.0
#: Factor on the score of a road read one character shorter or longer than it is written.
LENGTH_PENALTY = 0.95
#: Type words at the end of POI names; the name without one is an alias when it is unique.
POI_TYPES = ("社区卫生服务中心", "小区", "花园", "公园", "广场", "医院", "卫生服务中心", "中学", "小学", "幼儿园",
             "学校", "超市", "市场", "菜市场", "大厦", "中心", "派出所", "体育馆", "图书馆", "新村", "公寓", "家园",
             "苑")
_POI_TYPES_LONGEST_FIRST = sorted(POI_TYPES, key=len, reverse=True)
_STEM_NUMBER = re.compile(r"(?P<road>[一-鿿]{2,12}?)(?:(?P<lane>\d+)弄)?(?P<num>\d+)号")
_HAN = re.compile(r"[一-鿿]")



@dataclass(frozen=True)
class Geocoded:
    """Where an address is: the matched place's point and unit grid, how sure (0–100) and how."""

    lon: float
    lat: float
    grid_code: str
    score: float
    matched: str  # the gazetteer's address (a POI: its name, then its address when it has one)
    method: str  # "exact" | "fuzzy"


_SOUNDS: dict[str, str] = {}


def _fuzzy_syllable(syllable: str) -> str:
    """模糊音: zh/ch/sh as z/c/s and -ng as -n, as many speakers (and input methods) merge them."""
    if syllable[:2] in ("zh", "ch", "sh"):
        syllable = syllable[0] + syllable[2:]
    return syllable[:-1] if syllable.endswith("ng") else syllable


def sound(text: str) -> list[str]:
    """The toneless pinyin of each character with 模糊音 merged (other characters as themselves): 敏江 → [min, jian]."""
    out = []
    for c in text:
        s = _SOUNDS.get(c)
        if s is None:
            s = _SOUNDS[c] = _fuzzy_syllable(lazy_pinyin(c, style=Style.NORMAL)[0]) if _HAN.match(c) else c
        out.append(s)
    return out


def similarity(written: str, target: str) -> float:
    """0–100: how alike two strings are in writing or in sound (同音字), whichever is more."""
    return max(fuzz.ratio(written, target), fuzz.ratio(sound(written), sound(target)))


def partial_similarity(short: str, long: str) -> float:
    """0–100: ``short``'s best match inside ``long``, in writing or in sound."""
    return max(fuzz.partial_ratio(short, long), fuzz.partial_ratio(sound(short), sound(long)))


def _road_stem(road: str) -> str:
    for suffix in ROAD_SUFFIXES:
        if road.endswith(suffix) and len(road) > len(suffix) + 1:
            return road[: -len(suffix)]
    return road


def _poi_stem(name: str) -> str:
    for suffix in _POI_TYPES_LONGEST_FIRST:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


class Geocoder:
    """A matcher over one gazetteer; build it once (``load``), call ``geocode`` many times (thread-safe)."""

    def __init__(self, places: Sequence[Place], divisions: Divisions | None = None, *,
                 min_score: float = 75.0) -> None:
        self.places = tuple(places)
        self.divisions = divisions = divisions if divisions is not None else Divisions()
        self.min_score = float(min_score)
        self._exact: dict[str, list[int]] = defaultdict(list)
        self._houses: dict[tuple[str, int | None, int], list[int]] = defaultdict(list)
        self._roads_by_number: dict[tuple[int | None, int], set[str]] = defaultdict(set)
        self._roads: set[str] = set()
        self._stems: dict[str, set[str]] = defaultdict(set)
        poi_names: dict[str, list[int]] = defaultdict(list)
        aliases: dict[str, set[str]] = defaultdict(set)
        for i, place in enumerate(self.places):
            key = normalise(place.address, divisions).text
            if key:
                self._exact[key].append(i)
            parsed = parse(key) if place.kind == "house" else None
            if parsed is not None and parsed.start == 0:
                road = parsed.road
                self._houses[(road, parsed.lane, parsed.number)].append(i)
                self._roads_by_number[(parsed.lane, parsed.number)].add(road)
                self._roads.add(road)
                self._stems[_road_stem(road)].add(road)
            if place.kind == "poi" and place.name:
                name = normalise(place.name, divisions, strip_divisions=False).text
                if name:
                    if i not in self._exact[name]:
                        self._exact[name].append(i)
                    poi_names[name].append(i)
                    if _poi_stem(name) != name:
                        aliases[_poi_stem(name)].add(name)
        reserved = {*divisions.districts, *divisions.others, *self._roads, *self._stems}
        for alias, names in aliases.items():
            if len(names) == 1 and alias not in self._exact and alias not in reserved:
                self._exact[alias] = list(poi_names[next(iter(names))])
        self._poi_keys = list(poi_names)
        self._poi_stems = [_poi_stem(k) for k in self._poi_keys]
        self._poi_ids = [poi_names[k] for k in self._poi_keys]
        self._max_road = max((len(r) for r in self._roads), default=0)
        self._road_list = sorted(self._roads)
        self._stem_list = sorted(self._stems)

    @classmethod
    def load(cls, session: Session, *, min_score: float | None = None) -> Geocoder:
        """The matcher of the stored gazetteer; ``min_score`` defaults to ``GRIDHALL_GEOCODE_MIN_SCORE``."""
        settings = load_settings()
        score = settings.geocode_min_score if min_score is None else min_score
        return cls(load_places(session), load_divisions(session, settings.city_name), min_score=score)

    def __len__(self) -> int:
        return len(self.places)

    # -- the answer ---------------------------------------------------------------------
    def geocode(self, text: str) -> Geocoded | None:
        """The place ``text`` names, or None (未定位) when no match passes the guards."""
        if not text or not self.places:
            return None
        norm = normalise(text[:500], self.divisions)
        if not _HAN.search(norm.text):
            return None
        hits = self._exact.get(norm.text)
        if hits:
            return self._decide([(100.0, i) for i in hits], norm.district, "exact")
        house_form = parse(norm.text) is not None or _STEM_NUMBER.search(norm.text) is not None
        found = self._house(norm.text, norm.district) if house_form else None
        if found is not None:
            return found
        light = normalise(text[:500], self.divisions, strip_divisions=False)
        hits = self._exact.get(light.text)
        if hits:
            return self._decide([(100.0, i) for i in hits], norm.district, "exact")
        # A house number the gazetteer refused (人民路1号 that does not exist) is never made up
        # for by a POI that merely looks alike (人民医院): only a POI named whole in the text.
        return self._poi(light.text, norm.district, named_whole=house_form)

    def _decide(self, scored: Iterable[tuple[float, int]], district: str | None, method: str) -> Geocoded | None:
        """The best candidate when it passes the district, margin and threshold guards."""
        ranked = sorted(scored, key=lambda si: (-si[0], si[1]))
        if district is not None:
            inside = [(s, i) for s, i in ranked if self.places[i].district == district]
            ranked = inside or ranked
        if not ranked:
            return None
        score, best = ranked[0]
        grid = self.places[best].grid_code
        rival = next((s for s, i in ranked[1:] if self.places[i].grid_code != grid), None)
        if rival is not None and score - rival < MARGIN:
            return None
        if score < self.min_score:
            return None
        place = self.places[best]
        matched = place.address if place.kind == "house" or not place.name else (
            place.name if place.address == place.name else f"{place.name}（{place.address}）")
        return Geocoded(place.lon, place.lat, grid, round(score, 1), matched, method)

    def _house(self, text: str, district: str | None) -> Geocoded | None:
        parsed = parse(text)
        if parsed is not None:
            raw, lane, number = parsed.road, parsed.lane, parsed.number
        else:
            m = _STEM_NUMBER.search(text)
            if m is None:
                return None
            lane_text = m.group("lane")
            raw, lane, number = m.group("road"), (int(lane_text) if lane_text else None), int(m.group("num"))
        # Exact: the longest known road the raw text ends with.
        for k in range(min(len(raw), self._max_road), 1, -1):
            if raw[-k:] in self._roads:
                ids = self._houses.get((raw[-k:], lane, number))
                if not ids:
                    return None  # a known road without this number: never a neighbour's point
                return self._decide([(100.0, i) for i in ids], district, "exact")
        if parsed is None:
            for k in range(min(len(raw), self._max_road), 1, -1):
                for road in self._stems.get(raw[-k:], ()):
                    ids = self._houses.get((road, lane, number))
                    if ids:
                        return self._decide([(self._core_score(raw[-k:], road, lane, number), i) for i in ids],
                                            district, "fuzzy")
        # The road's distinctive part (its name without 路/街/大道) is what is compared: the number
        # agrees by construction and a shared suffix says nothing (苏州路 is not 广州路).
        written_suffix = next((x for x in ROAD_SUFFIXES if parsed is not None and raw.endswith(x)), "")
        written = raw[: len(raw) - len(written_suffix)]
        scored: list[tuple[float, int]] = []
        best_road, best_score = "", -1.0
        for road in sorted(self._roads_by_number.get((lane, number), ())):
            stem = _road_stem(road)
            n = len(stem)
            best = 0.0
            for k in (n - 1, n, n + 1):
                if 1 < k <= len(written):
                    alike = similarity(written[-k:], stem)
                    # A tail of another length than the name's assumes a dropped or an extra
                    # character: it must beat the same-length reading clearly.
                    best = max(best, alike if k == n else alike * LENGTH_PENALTY)
            if written_suffix and road[n:] != written_suffix:
                best *= LENGTH_PENALTY  # 闽江路 for 闽江街: callers mix them, but less likely
            if best >= self.min_score - MARGIN:
                scored += [(best, i) for i in self._houses[(road, lane, number)]]
                if best > best_score:
                    best_road, best_score = road if parsed is not None else stem, best
        if not scored or self._closer_road_lacks_it(raw, best_road, lane, number, parsed is not None):
            return None
        return self._decide(scored, district, "fuzzy")

    def _closer_road_lacks_it(self, raw: str, chosen: str, lane: int | None, number: int, suffixed: bool) -> bool:
        """Whether a road WITHOUT this lane and number is written more like ``raw`` than ``chosen`` is.

        Sounds can bring a far road near (上海 and 忠山 share "san" with 模糊音): when 中山路 has no
        number 14, 忠山路14号 must stay 未定位, not become 上海路14号.
        """
        having = self._roads_by_number.get((lane, number), set())
        tail = raw[-len(chosen):]
        own = fuzz.ratio(tail, chosen)
        names = self._road_list if suffixed else self._stem_list
        for name, alike, _ in rf_process.extract(tail, names, scorer=fuzz.ratio, limit=10, score_cutoff=own):
            roads = [name] if suffixed else self._stems.get(name, set())
            if alike > own and not any(r in having for r in roads):
                return True
        return False

    @staticmethod
    def _core_score(written: str, road: str, lane: int | None, number: int) -> float:
        tail = (f"{lane}弄" if lane is not None else "") + f"{number}号"
        return similarity(written + tail, road + tail)

    def _poi(self, text: str, district: str | None, *, named_whole: bool = False) -> Geocoded | None:
        if not self._poi_keys or len(text) < 2:
            return None
        found = rf_process.extract(text, self._poi_keys, scorer=fuzz.partial_ratio, limit=12, score_cutoff=50)
        scored: list[tuple[float, int]] = []
        said_types = {t for t in POI_TYPES if t in text}
        for key, _, index in found:
            kind = key[len(self._poi_stems[index]):]
            if said_types and kind and kind not in said_types:
                continue  # 人民医院 is no 人民公园, however alike they sound
            cover = min(1.0, len(text) / len(key))
            if key in text:
                score = 100.0
            elif named_whole:
                continue
            else:
                # The whole name, and its distinctive part (the name without its type word):
                # 银河社区卫生服务中心 and 丁香社区卫生服务中心 share nine characters of ten.
                score = max(similarity(text, key), partial_similarity(key, text) * cover)
                stem = self._poi_stems[index]
                if stem != key:
                    score = min(score, partial_similarity(stem, text))
            scored += [(score, i) for i in self._poi_ids[index]]
        return self._decide(scored, district, "fuzzy") if scored else None
