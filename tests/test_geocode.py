"""地理编码 without a database: normalisation, parsing and the matcher's guards (docs/geocoding.md)."""

from __future__ import annotations

import pytest

from dashboard.geocode.address import Divisions, chinese_number, normalise, parse
from dashboard.geocode.gazetteer import Place
from dashboard.geocode.matcher import Geocoder, similarity, sound

DIVISIONS = Divisions.of(["演示市"], ["青山区", "临江区"], ["翠屏街道", "翠竹社区", "三元社区"])


def house(address: str, grid: str, district: str = "青山区", lon: float = 118.78, lat: float = 32.04) -> Place:
    return Place("house", address, None, district, "翠屏街道", "翠竹社区", lon, lat, grid)


def poi(name: str, address: str, grid: str, district: str = "青山区") -> Place:
    return Place("poi", address, name, district, "翠屏街道", "翠竹社区", 118.79, 32.05, grid)


PLACES = [
    house("青山区中山路12号", "G-ZS-12"),
    house("青山区中山路14号", "G-ZS-14"),
    house("青山区中山路58弄3号", "G-ZS-58-3"),
    house("青山区华山路12号", "G-HS-12"),
    house("临江区闽江街318号", "G-MJ-318", district="临江区"),
    house("临江区汉江街318号", "G-HJ-318", district="临江区"),
    house("青山区延安路7号", "G-YA-7"),
    house("临江区延安路9号", "G-YA-9", district="临江区"),
    poi("翠竹小区", "青山区中山路14号", "G-ZS-14"),
    poi("青山区人民医院", "青山区华山路12号", "G-HS-12"),
    poi("临江区人民医院", "临江区延安路9号", "G-YA-9", district="临江区"),
    poi("翠竹社区卫生服务中心", "青山区延安路7号", "G-YA-7"),
    poi("三元社区卫生服务中心", "青山区中山路58弄3号", "G-ZS-58-3"),
    poi("梧桐花园", "青山区中山路12号", "G-ZS-12"),
    house("青山区上海路16号", "G-SH-16"),
    poi("人民公园", "青山区上海路16号", "G-SH-16"),
]


@pytest.fixture(scope="module")
def geocoder() -> Geocoder:
    return Geocoder(PLACES, DIVISIONS, min_score=75)


# -- normalisation ---------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected", "district"), [
    ("江苏省演示市青山区中山路１２号", "中山路12号", "青山区"),  # full-width, province, city, district
    ("演示市 青山区 中山路 12 号", "中山路12号", "青山区"),  # spaces
    ("青山中山路12号", "中山路12号", "青山区"),  # a district's short name at the start
    ("青山路12号", "青山路12号", None),  # … but never a road's name
    ("中山路一百二十三号", "中山路123号", None),  # Chinese numerals before a unit
    ("中山路五十八弄三号", "中山路58弄3号", None),
    ("三元社区卫生服务中心", "卫生服务中心", None),  # a community's name is a division: out
    ("三元里", "三元里", None),  # names keep their numerals
    ("中山路12号3号楼2单元301", "中山路12号3栋2单元301室", None),  # canonical 栋 and 室
    ("中山路12號5幢", "中山路12号5栋", None),
    ("临江区翠屏街道（翠竹社区）某处", "某处", "临江区"),  # brackets out, their content kept
    ("鼓楼菜场", "鼓楼菜市场", None),  # a facility's short word
    ("青山一中", "第一中学", "青山区"),
])
def test_normalise(text: str, expected: str, district: str | None) -> None:
    got = normalise(text, DIVISIONS)
    assert (got.text, got.district) == (expected, district)


def test_a_road_named_after_the_city_keeps_its_name() -> None:
    nanjing = Divisions.of(["南京市"], ["鼓楼区"], [])
    assert normalise("南京市鼓楼区南京路1号", nanjing).text == "南京路1号"
    assert normalise("南京鼓楼区中山路1号", nanjing).text == "中山路1号"


def test_normalise_can_keep_the_divisions() -> None:
    assert normalise("演示市三元社区卫生服务中心", DIVISIONS, strip_divisions=False).text == "三元社区卫生服务中心"


@pytest.mark.parametrize(("text", "value"), [("一百二十三", 123), ("十五", 15), ("二十", 20), ("一二三", 123),
                                             ("三千零五", 3005), ("两百", 200), ("路", None)])
def test_chinese_number(text: str, value: int | None) -> None:
    assert chinese_number(text) == value


def test_parse_finds_road_lane_and_number() -> None:
    p = parse("报警人称中山路58弄3号门口")
    assert p is not None and (p.road, p.lane, p.number) == ("报警人称中山路", 58, 3)
    p = parse("中山路12")  # 号 left off at the end
    assert p is not None and (p.road, p.lane, p.number) == ("中山路", None, 12)
    assert parse("翠竹小区东门") is None


def test_sound_merges_fuzzy_pinyin() -> None:
    assert sound("闽江") == sound("敏江") == ["min", "jian"]
    assert sound("中山") == sound("忠衫") and sound("民主") == sound("明主")
    assert similarity("敏江街318号", "闽江街318号") == 100.0


# -- exact, fuzzy, threshold -----------------------------------------------------------------
def test_exact_matches_whatever_the_writing(geocoder: Geocoder) -> None:
    for text in ("青山区中山路12号", "江苏省演示市青山区中山路１２号", "中山路十二号", "在中山路12号门口",
                 "中山路12号3栋2单元301"):
        got = geocoder.geocode(text)
        assert got is not None, text
        assert (got.grid_code, got.method, got.score) == ("G-ZS-12", "exact", 100.0), text
    got = geocoder.geocode("中山路五十八弄三号")
    assert got is not None and got.grid_code == "G-ZS-58-3" and got.matched == "青山区中山路58弄3号"


def test_pois_by_name_alias_and_with_extra_words(geocoder: Geocoder) -> None:
    for text in ("翠竹小区", "翠竹小区东门垃圾桶满了", "市民反映三元社区卫生服务中心"):
        got = geocoder.geocode(text)
        assert got is not None, text
        assert got.grid_code == ("G-ZS-58-3" if "三元" in text else "G-ZS-14"), text
    alias = geocoder.geocode("梧桐")  # the name without its type word, when only one place has it
    assert alias is not None and (alias.grid_code, alias.method) == ("G-ZS-12", "exact")
    assert geocoder.geocode("翠竹") is None  # 翠竹小区 or 翠竹社区卫生服务中心?
    with_park = Geocoder([*PLACES, poi("延安公园", "青山区延安路7号", "G-YA-7")], DIVISIONS)
    assert with_park.geocode("延安") is None  # 延安公园 or 延安路?
    hospital = geocoder.geocode("临江区人民医院门口")
    assert hospital is not None and hospital.grid_code == "G-YA-9"


def test_fuzzy_typos_and_a_road_without_its_suffix(geocoder: Geocoder) -> None:
    for text, grid in (("临江区敏江街318号", "G-MJ-318"), ("中山12号", "G-ZS-12"), ("忠山路14号", "G-ZS-14"),
                       ("翠竺小区", "G-ZS-14")):
        got = geocoder.geocode(text)
        assert got is not None, text
        assert (got.grid_code, got.method) == (grid, "fuzzy"), text
        assert 75 <= got.score <= 100
    assert geocoder.geocode("翠林小区") is None  # half of the distinctive name wrong


def test_below_the_threshold_is_none(geocoder: Geocoder) -> None:
    strict = Geocoder(PLACES, DIVISIONS, min_score=99)
    got = geocoder.geocode("中山12号")
    assert got is not None and got.score < 99
    assert strict.geocode("中山12号") is None
    assert strict.geocode("中山路12号") is not None  # exact is 100
    assert geocoder.geocode("完全无关的文字") is None
    assert geocoder.geocode("") is None and geocoder.geocode("12345") is None


def test_house_numbers_must_agree(geocoder: Geocoder) -> None:
    assert geocoder.geocode("中山路13号") is None  # a known road, a number it does not have: no neighbour
    assert geocoder.geocode("中山路58弄4号") is None


def test_ambiguous_is_none_unless_the_district_decides(geocoder: Geocoder) -> None:
    assert geocoder.geocode("人民医院") is None  # two districts have one
    assert geocoder.geocode("中华路12号") is None  # 中山路 and 华山路 equally alike, different grids
    assert geocoder.geocode("延安路7号") is not None


def test_a_sound_alike_road_never_stands_in_for_the_one_written(geocoder: Geocoder) -> None:
    # 上海 and 忠山 share "san" under 模糊音 (shang/shan); 中山路 is the road meant, and it has no 16.
    assert geocoder.geocode("忠山路16号") is None
    assert geocoder.geocode("上海路16号") is not None


def test_an_unknown_road_is_not_a_road_sharing_its_suffix_or_a_character(geocoder: Geocoder) -> None:
    assert geocoder.geocode("泰山路12号") is None  # 华山路12号 shares 山路12号, but 泰山 is not 华山
    assert geocoder.geocode("苏州路12号") is None


def test_a_refused_house_number_is_not_made_up_for_by_a_poi(geocoder: Geocoder) -> None:
    assert geocoder.geocode("青山区人民路99号") is None  # not 青山区人民医院
    both = geocoder.geocode("中山路99号翠竹小区")  # …but a POI named whole still places it
    assert both is not None and both.grid_code == "G-ZS-14"


def test_a_poi_of_another_type_is_no_match(geocoder: Geocoder) -> None:
    # 人民医院 sounds three syllables of four like 人民公园; two districts have a 人民医院.
    assert geocoder.geocode("人民医院") is None
    park = geocoder.geocode("人民公园门口")
    assert park is not None and park.grid_code == "G-SH-16"


def test_an_empty_gazetteer_places_nothing() -> None:
    assert Geocoder([], DIVISIONS).geocode("中山路12号") is None
