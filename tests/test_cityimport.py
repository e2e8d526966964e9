"""City import: a hand-made small city, re-import semantics, and every class of bad input.

Bad input must name the file and line (CSV) or feature (GeoJSON) and leave the database
exactly as it was.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dashboard.store.cityimport import (
    MAX_PROBLEMS,
    CityImportError,
    ImportSummary,
    KindCounts,
    import_city,
)
from dashboard.store.models import Base, Grid, Person, Region, Unit, person_grids

SMALL_CITY = Path(__file__).parent / "data" / "city-small"
TABLES = ("regions", "grids", "units", "people", "person_grids")


# -- helpers --------------------------------------------------------------------------------
@pytest.fixture
def small_city_copy(tmp_path: Path) -> Path:
    """A writable copy of the small city, for tests that break it."""
    target = tmp_path / "city"
    shutil.copytree(SMALL_CITY, target)
    return target


def snapshot(sessions: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the city tables, to prove a failed import changed nothing."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with sessions() as session:
        for name in TABLES:
            table = Base.metadata.tables[name]
            rows = session.execute(select(table).order_by(*table.primary_key.columns)).all()
            out[name] = [tuple(r) for r in rows]
    return out


def counts(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions() as session:
        return {
            name: session.scalar(select(func.count()).select_from(Base.metadata.tables[name]))
            or 0
            for name in TABLES
        }


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def save(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def edit_features(city: Path, name: str, change: Callable[[list[dict[str, Any]]], None]) -> None:
    data = load(city / name)
    change(data["features"])
    save(city / name, data)


def replace_line(city: Path, name: str, line: int, text: str) -> None:
    """Replace a 1-based line of a CSV file."""
    lines = (city / name).read_text(encoding="utf-8").splitlines()
    lines[line - 1] = text
    (city / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def square(lon: float, lat: float, dlon: float = 0.001, dlat: float = 0.0009) -> dict[str, Any]:
    ring = [[lon, lat], [lon + dlon, lat], [lon + dlon, lat + dlat], [lon, lat + dlat], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def problems_of(city: Path, sessions: sessionmaker[Session]) -> list[str]:
    with pytest.raises(CityImportError) as info:
        import_city(city, sessions)
    assert info.value.problems, "CityImportError without problems"
    return info.value.problems


# -- the valid small city -------------------------------------------------------------------
def test_small_city_imports_with_its_relations(sessions: sessionmaker[Session]) -> None:
    summary = import_city(SMALL_CITY, sessions)

    assert summary.city_name == "测试市"
    assert summary.regions == KindCounts(inserted=6, updated=0)
    assert summary.grids == KindCounts(inserted=12, updated=0)
    assert summary.units == KindCounts(inserted=3, updated=0)
    assert summary.people == KindCounts(inserted=4, updated=0)
    assert summary.grid_assignments == 6
    assert summary.elapsed_s > 0
    assert counts(sessions) == {
        "regions": 6,
        "grids": 12,
        "units": 3,
        "people": 4,
        "person_grids": 6,
    }

    with sessions() as session:
        regions = {r.code: r for r in session.scalars(select(Region))}
        assert regions["320102"].parent is None
        assert regions["320102"].geometry is None  # region geometry is optional
        assert regions["320102001"].parent is regions["320102"]
        assert regions["320102002001"].parent is regions["320102002"]
        assert regions["320102002001"].level == "community"
        assert json.loads(regions["320102001001"].geometry or "")["type"] == "Polygon"

        grid = session.scalars(select(Grid).where(Grid.code == "320102001001001")).one()
        assert grid.community.code == "320102001001"
        assert 9_000 < grid.area_m2 < 10_000  # 0.001° × 0.0009° at 32°N
        assert grid.area_class == "A"
        assert grid.land_use == "居住用地"
        assert grid.valid_from == date(2024, 1, 1) and grid.valid_to is None
        # The NW grid of its community (numbered west→east, north→south).
        assert 118.780 < grid.centroid_lon < 118.781 and 32.0409 < grid.centroid_lat < 32.0418

        default_class = session.scalars(select(Grid).where(Grid.code == "320102002001004")).one()
        assert default_class.area_class == "B" and default_class.valid_from is None

        people = {p.code: p for p in session.scalars(select(Person))}
        assert sorted(g.code for g in people["S001"].grids) == [
            f"320102001001{n:03d}" for n in range(1, 5)
        ]
        assert {g.code for g in people["S002"].grids} == {"320102002001001", "320102002001002"}
        assert people["S002"].region is regions["320102002"]
        assert people["A001"].role == "acceptor" and people["A001"].grids == []
        assert people["L001"].region is None

        units = {u.code: u for u in session.scalars(select(Unit))}
        assert units["CG01-HW"].parent is units["CG01"]
        assert units["CG01-HW"].region is regions["320102001"]
        assert units["CG01"].parent is None and units["CG01"].kind == "department"
        assert units["JD02"].kind == "street_office"


def test_progress_reports_every_stage_to_completion(sessions: sessionmaker[Session]) -> None:
    calls: list[tuple[str, int, int]] = []
    import_city(SMALL_CITY, sessions, progress=lambda *call: calls.append(call))

    stages = list(dict.fromkeys(stage for stage, _, _ in calls))
    assert stages == [
        "read",
        "check grids",
        "check references",
        "write regions",
        "write grids",
        "write units",
        "write people",
    ]
    for stage in stages:
        done, total = [(d, t) for s, d, t in calls if s == stage][-1]
        assert done == total, stage
    assert ("check grids", 12, 12) in calls


def test_reimporting_the_same_city_changes_nothing(sessions: sessionmaker[Session]) -> None:
    import_city(SMALL_CITY, sessions)
    before = snapshot(sessions)
    again = import_city(SMALL_CITY, sessions)
    assert again.regions == KindCounts(inserted=0, updated=6)
    assert again.grids == KindCounts(inserted=0, updated=12)
    assert again.units == KindCounts(inserted=0, updated=3)
    assert again.people == KindCounts(inserted=0, updated=4)
    assert snapshot(sessions) == before


def test_reimport_updates_by_code_and_adds_new(small_city_copy: Path, sessions: sessionmaker[Session]) -> None:
    import_city(small_city_copy, sessions)
    with sessions() as session:
        ids_before = dict(session.execute(select(Grid.code, Grid.id)).all())

    def change_regions(features: list[dict[str, Any]]) -> None:
        features[0]["properties"]["name"] = "玄武区（新）"
        features[0]["geometry"] = square(118.780, 32.0382, 0.004, 0.0036)

    def change_grids(features: list[dict[str, Any]]) -> None:
        features[0]["properties"]["area_class"] = "C"
        features[0]["properties"]["land_use"] = None
        features.append(
            {
                "type": "Feature",
                "properties": {"code": "320102002001005", "community_code": "320102002001"},
                "geometry": square(118.780, 32.0373),
            }
        )

    edit_features(small_city_copy, "regions.geojson", change_regions)
    edit_features(small_city_copy, "grids.geojson", change_grids)
    replace_line(small_city_copy, "units.csv", 3, "CG01-HW,玄武区环境卫生管理所,disposal,320102001,CG01")
    # S002 loses a grid and gains the new one: assignments are replaced, not merged.
    replace_line(
        small_city_copy, "people.csv", 3, "S002,李娜娜,supervisor,320102002,320102002001001;320102002001005"
    )

    summary = import_city(small_city_copy, sessions)

    assert summary.regions == KindCounts(inserted=0, updated=6)
    assert summary.grids == KindCounts(inserted=1, updated=12)
    assert summary.units == KindCounts(inserted=0, updated=3)
    assert summary.people == KindCounts(inserted=0, updated=4)
    assert counts(sessions) == {
        "regions": 6,
        "grids": 13,
        "units": 3,
        "people": 4,
        "person_grids": 6,
    }
    with sessions() as session:
        district = session.scalars(select(Region).where(Region.code == "320102")).one()
        assert district.name == "玄武区（新）" and district.geometry is not None
        grid = session.scalars(select(Grid).where(Grid.code == "320102001001001")).one()
        assert grid.area_class == "C" and grid.land_use is None
        assert grid.id == ids_before[grid.code]  # updated in place, not re-created
        unit = session.scalars(select(Unit).where(Unit.code == "CG01-HW")).one()
        assert unit.name == "玄武区环境卫生管理所"
        person = session.scalars(select(Person).where(Person.code == "S002")).one()
        assert person.name == "李娜娜"
        assert {g.code for g in person.grids} == {"320102002001001", "320102002001005"}


def test_rows_already_in_the_database_satisfy_references(
    small_city_copy: Path, sessions: sessionmaker[Session]
) -> None:
    """A later import may list only new rows whose parents were imported before."""
    import_city(SMALL_CITY, sessions)
    new_community = {
        "type": "Feature",
        "properties": {
            "code": "320102002002",
            "name": "菊园社区",
            "level": "community",
            "parent_code": "320102002",
        },
        "geometry": None,
    }
    new_grid = {
        "type": "Feature",
        "properties": {"code": "320102002002001", "community_code": "320102002002"},
        "geometry": square(118.782, 32.0391),
    }
    save(small_city_copy / "regions.geojson", {"type": "FeatureCollection", "features": [new_community]})
    save(small_city_copy / "grids.geojson", {"type": "FeatureCollection", "features": [new_grid]})
    (small_city_copy / "units.csv").write_text(
        "code,name,kind,region_code,parent_code\nCG01-LH,绿化所,disposal,320102,CG01\n",
        encoding="utf-8",
    )
    (small_city_copy / "people.csv").write_text(
        "code,name,role,region_code,grids\nS003,赵磊,supervisor,320102002002,"
        "320102002002001;320102001001001\n",
        encoding="utf-8",
    )

    summary = import_city(small_city_copy, sessions)

    assert summary.regions.inserted == 1 and summary.grids.inserted == 1
    with sessions() as session:
        unit = session.scalars(select(Unit).where(Unit.code == "CG01-LH")).one()
        assert unit.parent is not None and unit.parent.code == "CG01"
        person = session.scalars(select(Person).where(Person.code == "S003")).one()
        assert {g.code for g in person.grids} == {"320102002002001", "320102001001001"}
    assert counts(sessions)["grids"] == 13


def test_legacy_14_digit_grid_code_is_accepted_as_given(
    small_city_copy: Path, sessions: sessionmaker[Session]
) -> None:
    edit_features(
        small_city_copy,
        "grids.geojson",
        lambda f: f.append(
            {
                "type": "Feature",
                "properties": {"code": "32010200200105", "community_code": "320102002001"},
                "geometry": square(118.780, 32.0373),
            }
        ),
    )
    summary = import_city(small_city_copy, sessions)
    assert summary.grids.inserted == 13
    with sessions() as session:
        assert session.scalar(select(Grid.code).where(Grid.code == "32010200200105"))


def test_integer_codes_from_gis_tools_are_read_as_digits(
    small_city_copy: Path, sessions: sessionmaker[Session]
) -> None:
    def to_int(features: list[dict[str, Any]]) -> None:
        for feature in features:
            feature["properties"]["code"] = int(feature["properties"]["code"])

    edit_features(small_city_copy, "grids.geojson", to_int)
    assert import_city(small_city_copy, sessions).grids.inserted == 12


# -- bad input ------------------------------------------------------------------------------
def _set(name: str, index: int, key: str, value: Any) -> Callable[[Path], None]:
    def change(city: Path) -> None:
        edit_features(city, name, lambda f: f[index]["properties"].__setitem__(key, value))

    return change


def _geometry(index: int, geometry: Any) -> Callable[[Path], None]:
    def change(city: Path) -> None:
        edit_features(city, "grids.geojson", lambda f: f[index].__setitem__("geometry", geometry))

    return change


def _line(name: str, line: int, text: str) -> Callable[[Path], None]:
    return lambda city: replace_line(city, name, line, text)


def _drop_region(index: int) -> Callable[[Path], None]:
    return lambda city: edit_features(city, "regions.geojson", lambda f: f.pop(index))


def _trailing_comma(city: Path) -> None:
    lines = (city / "grids.geojson").read_text(encoding="utf-8").splitlines()
    assert lines[-1] == "]}" and len(lines) == 14
    lines[-2] += ","  # the last feature, line 13; the parser fails on line 14
    (city / "grids.geojson").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _drop_column(city: Path) -> None:
    (city / "units.csv").write_text(
        "code,name,kind,region_code\nCG01,玄武区城市管理局,department,320102\n", encoding="utf-8"
    )


def _projected_crs(city: Path) -> None:
    data = load(city / "grids.geojson")
    data["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4547"}}
    save(city / "grids.geojson", data)


def _multiline_then_bad_role(city: Path) -> None:
    # The quoted name spans lines 2–3, so the bad role on the next record is on line 4.
    (city / "people.csv").write_text(
        'code,name,role,region_code,grids\nA001,"王\n芳",acceptor,,\nX001,某人,inspector,,\n',
        encoding="utf-8",
    )


BOWTIE = {
    "type": "Polygon",
    "coordinates": [
        [
            [118.780, 32.0409],
            [118.781, 32.0418],
            [118.781, 32.0409],
            [118.780, 32.0418],
            [118.780, 32.0409],
        ]
    ],
}
# The same square in CGCS2000 / 3-degree Gauss-Kruger CM 120E metres (EPSG:4547).
PROJECTED = {
    "type": "Polygon",
    "coordinates": [
        [
            [385000, 3546000],
            [385100, 3546000],
            [385100, 3546100],
            [385000, 3546100],
            [385000, 3546000],
        ]
    ],
}

BAD_INPUT: list[tuple[str, Callable[[Path], None], str, str]] = [
    # (case, how to break the city, where the problem must point, words it must contain)
    (
        "grid code not matching community",
        _set("grids.geojson", 0, "community_code", "320102001002"),
        "grids.geojson#feature 0 (320102001001001)",
        "与所属社区代码 320102001002 不一致",
    ),
    (
        "duplicate grid code",
        _set("grids.geojson", 5, "code", "320102001002001"),
        "grids.geojson#feature 5 (320102001002001)",
        "重复（首次出现于 grids.geojson#feature 4）",
    ),
    (
        "grid code of 13 digits",
        _set("grids.geojson", 2, "code", "3201020010010"),
        "grids.geojson#feature 2",
        "应为15位数字",
    ),
    (
        "bad region code length",
        _set("regions.geojson", 3, "code", "32010200101"),
        "regions.geojson#feature 3 (32010200101)",
        "应为12位数字",
    ),
    (
        "missing parent",
        _drop_region(2),  # street 320102002; its community is then feature 4
        "regions.geojson#feature 4 (320102002001)",
        "上级区域 320102002 在 regions.geojson 和数据库中都不存在",
    ),
    (
        "parent of the wrong level",
        _set("regions.geojson", 5, "parent_code", "320102"),
        "regions.geojson#feature 5 (320102002001)",
        "是区，应为街道(镇)",
    ),
    (
        "code not extending its parent's code",
        _set("regions.geojson", 5, "parent_code", "320102001"),
        "regions.geojson#feature 5 (320102002001)",
        "与上级代码 '320102001' 不一致",
    ),
    (
        "district with a parent",
        _set("regions.geojson", 0, "parent_code", "320100"),
        "regions.geojson#feature 0 (320102)",
        "parent_code 应为空",
    ),
    (
        "unknown level",
        _set("regions.geojson", 1, "level", "town"),
        "regions.geojson#feature 1 (320102001)",
        "level 'town'",
    ),
    (
        "projected coordinates",
        _geometry(3, PROJECTED),
        "grids.geojson#feature 3 (320102001001004)",
        "投影坐标需先转换",
    ),
    (
        "projected CRS declared",
        _projected_crs,
        "grids.geojson",
        "EPSG::4547 不受支持",
    ),
    (
        "self-intersecting polygon",
        _geometry(1, BOWTIE),
        "grids.geojson#feature 1 (320102001001002)",
        "Self-intersection",
    ),
    (
        "grid far too small",
        _geometry(6, square(118.782, 32.0400, 0.00003, 0.00003)),
        "grids.geojson#feature 6 (320102001002003)",
        "超出单元网格允许范围 100–1,000,000 m²",
    ),
    (
        "grid far too large",
        _geometry(6, square(118.70, 32.00, 0.02, 0.02)),
        "grids.geojson#feature 6 (320102001002003)",
        "超出单元网格允许范围",
    ),
    ("grid without geometry", _geometry(7, None), "grids.geojson#feature 7", "缺少 geometry"),
    (
        "point geometry",
        _geometry(7, {"type": "Point", "coordinates": [118.78, 32.04]}),
        "grids.geojson#feature 7",
        "Polygon",
    ),
    (
        "unknown area class",
        _set("grids.geojson", 8, "area_class", "D"),
        "grids.geojson#feature 8",
        "area_class 'D'",
    ),
    (
        "bad date",
        _set("grids.geojson", 8, "valid_to", "2024-13-01"),
        "grids.geojson#feature 8",
        "valid_to '2024-13-01'",
    ),
    (
        "unknown role",
        _line("people.csv", 4, "A001,王芳,inspector,320102,"),
        "people.csv:4",
        "role 'inspector'",
    ),
    (
        "unknown supervisor grid",
        _line("people.csv", 2, "S001,张伟,supervisor,320102001,320102001001001;320102001001099"),
        "people.csv:2",
        "320102001001099 在 grids.geojson 和数据库中都不存在",
    ),
    (
        "grids for a non-supervisor",
        _line("people.csv", 5, "L001,刘洋,shift_lead,,320102001001001"),
        "people.csv:5",
        "只有监督员",
    ),
    (
        "person in unknown region",
        _line("people.csv", 5, "L001,刘洋,shift_lead,320102009,"),
        "people.csv:5",
        "320102009",
    ),
    (
        "duplicate person",
        _line("people.csv", 5, "S001,刘洋,shift_lead,,"),
        "people.csv:5",
        "重复（首次出现于 people.csv:2）",
    ),
    ("wrong field count", _line("people.csv", 5, "L001,刘洋,shift_lead"), "people.csv:5", "应有 5 个字段"),
    ("quoted multi-line field", _multiline_then_bad_role, "people.csv:4", "role 'inspector'"),
    (
        "unknown unit kind",
        _line("units.csv", 2, "CG01,玄武区城市管理局,bureau,320102,"),
        "units.csv:2",
        "kind 'bureau'",
    ),
    (
        "missing unit parent",
        _line("units.csv", 3, "CG01-HW,环卫所,disposal,320102001,CG99"),
        "units.csv:3",
        "上级单位 CG99",
    ),
    (
        "unit parent cycle",
        _line("units.csv", 2, "CG01,玄武区城市管理局,department,320102,CG01-HW"),
        "units.csv:2",
        "循环",
    ),
    (
        "unit code too long",
        _line("units.csv", 4, "J" * 33 + ",街道办,street_office,,"),
        "units.csv:4",
        "超过 32",
    ),
    ("malformed JSON", _trailing_comma, "grids.geojson:14", "JSON格式错误"),
    ("missing column", _drop_column, "units.csv:1", "缺少列 parent_code"),
    ("missing file", lambda city: (city / "people.csv").unlink(), "people.csv", "文件不存在"),
    (
        "bad city.toml",
        lambda city: (city / "city.toml").write_text("name = \n"),
        "city.toml",
        "TOML",
    ),
]


@pytest.mark.parametrize(
    ("break_city", "where", "words"),
    [pytest.param(b, w, words, id=case) for case, b, w, words in BAD_INPUT],
)
def test_bad_input_is_reported_and_nothing_is_written(
    small_city_copy: Path,
    sessions: sessionmaker[Session],
    break_city: Callable[[Path], None],
    where: str,
    words: str,
) -> None:
    break_city(small_city_copy)
    problems = problems_of(small_city_copy, sessions)
    # A GeoJSON location may carry the feature's code: "grids.geojson#feature 3 (3201…): …".
    matching = [p for p in problems if p.startswith((f"{where}: ", f"{where} (")) and words in p]
    assert matching, "\n".join(problems)
    assert counts(sessions) == dict.fromkeys(TABLES, 0)


def test_bad_reimport_leaves_the_earlier_import_untouched(
    small_city_copy: Path, sessions: sessionmaker[Session]
) -> None:
    import_city(small_city_copy, sessions)
    before = snapshot(sessions)
    # Many good changes and one bad row: none of the good ones may be written.
    edit_features(small_city_copy, "regions.geojson", lambda f: f[0]["properties"].__setitem__("name", "改名区"))
    replace_line(small_city_copy, "units.csv", 2, "CG01,改名局,department,320102,")
    replace_line(small_city_copy, "people.csv", 4, "A001,王芳,inspector,320102,")
    with pytest.raises(CityImportError) as info:
        import_city(small_city_copy, sessions)
    assert info.value.problems == [
        "people.csv:4: role 'inspector' 应为 supervisor、acceptor、shift_lead、dispatcher 之一"
    ]
    assert snapshot(sessions) == before


def test_all_problems_of_all_files_are_reported_together(
    small_city_copy: Path, sessions: sessionmaker[Session]
) -> None:
    _set("grids.geojson", 0, "community_code", "320102001002")(small_city_copy)
    _geometry(3, PROJECTED)(small_city_copy)
    _set("regions.geojson", 3, "code", "32010200101")(small_city_copy)
    _line("units.csv", 2, "CG01,玄武区城市管理局,bureau,320102,")(small_city_copy)
    _line("people.csv", 4, "A001,王芳,inspector,320102,")(small_city_copy)
    problems = problems_of(small_city_copy, sessions)
    for where in (
        "grids.geojson#feature 0",
        "grids.geojson#feature 3",
        "regions.geojson#feature 3",
        "units.csv:2",
        "people.csv:4",
    ):
        assert any(p.startswith(where) for p in problems), (where, problems)


def test_problem_list_is_capped(small_city_copy: Path, sessions: sessionmaker[Session]) -> None:
    rows = "".join(f"X{n:03d},某人,inspector,,\n" for n in range(300))
    (small_city_copy / "people.csv").write_text("code,name,role,region_code,grids\n" + rows, encoding="utf-8")
    problems = problems_of(small_city_copy, sessions)
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[0].startswith("people.csv:2: ")
    assert "另有 100 处问题" in problems[-1]


def test_database_failure_mid_write_leaves_nothing(sessions: sessionmaker[Session]) -> None:
    """Regions and grids are already written when the people stage fails: all rolled back."""

    def fail_at_people(stage: str, _done: int, _total: int) -> None:
        if stage == "write people":
            raise RuntimeError("connection lost")

    with pytest.raises(RuntimeError, match="connection lost"):
        import_city(SMALL_CITY, sessions, progress=fail_at_people)
    assert counts(sessions) == dict.fromkeys(TABLES, 0)


def test_not_a_directory(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    with pytest.raises(CityImportError, match="不是目录"):
        import_city(tmp_path / "nowhere", sessions)


# -- scale ----------------------------------------------------------------------------------
def _feature(geometry: dict[str, Any] | None, **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def _write_big_city(directory: Path, communities: int = 60, per_community: int = 84) -> int:
    """A city of square ~100 m grids, 12 per row in each community; returns the grid count."""
    directory.mkdir()
    street = "320102001"
    regions = [
        _feature(None, code="320102", name="区", level="district", parent_code=None),
        _feature(None, code=street, name="街道", level="street", parent_code="320102"),
    ]
    grids: list[dict[str, Any]] = []
    people = ["code,name,role,region_code,grids"]
    dlon, dlat = 0.00106, 0.0009
    for c in range(communities):
        community = f"{street}{c + 1:03d}"
        regions.append(
            _feature(None, code=community, name=f"社区{c}", level="community", parent_code=street)
        )
        codes = [f"{community}{n + 1:03d}" for n in range(per_community)]
        for n, code in enumerate(codes):
            # Communities in a 10-wide block layout; grids west→east, north→south inside.
            lon = 118.70 + ((c % 10) * 12 + n % 12) * dlon
            lat = 32.10 - ((c // 10) * 8 + n // 12) * dlat
            polygon = square(lon, lat, dlon, dlat)
            grids.append(_feature(polygon, code=code, community_code=community))
        people.append(f"S{c:03d},监督员,supervisor,{community},{';'.join(codes)}")
    save(directory / "regions.geojson", {"type": "FeatureCollection", "features": regions})
    save(directory / "grids.geojson", {"type": "FeatureCollection", "features": grids})
    (directory / "units.csv").write_text("code,name,kind,region_code,parent_code\n", "utf-8")
    (directory / "people.csv").write_text("\n".join(people) + "\n", encoding="utf-8")
    return len(grids)


@pytest.mark.slow
def test_five_thousand_grids_import_in_seconds(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    n = _write_big_city(tmp_path / "big")
    started = time.perf_counter()
    summary: ImportSummary = import_city(tmp_path / "big", sessions)
    first = time.perf_counter() - started
    assert summary.grids.inserted == n == 5040
    assert summary.grid_assignments == n
    again = import_city(tmp_path / "big", sessions)
    assert again.grids == KindCounts(inserted=0, updated=n)
    # Generous bound for slow CI machines; a row-by-row ORM import takes far longer.
    assert first < 20 and again.elapsed_s < 20, (first, again.elapsed_s)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(person_grids)) == n
