"""Import a city's regions, unit grids, units and staff from a directory of files.

The directory format is described in ``docs/city-data.md``. The import runs in two phases:

1. *check*: every file is read and every row validated, including references to rows in
   other files and to what the database already holds. All problems are collected (as
   ``file:line: reason``, or ``file#feature N`` for GeoJSON) and raised together in a
   :class:`CityImportError`; nothing is written.
2. *write*: regions (parents first), grids, units (parents first), people and their grid
   assignments are upserted by code in ONE transaction, with bulk statements.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from shapely.geometry import Point
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from dashboard.rules.codes import CodeError, check_grid_in_community, check_region_code
from dashboard.rules.geo import (
    GeometryError,
    Polygonal,
    geodesic_area_m2,
    polygon_from_geojson,
    to_geojson,
)
from dashboard.rules.vocab import AreaClass, RegionLevel, Role, UnitKind
from dashboard.store.cityname import MAX_LENGTH as CITY_NAME_MAX
from dashboard.store.cityname import store_city_name
from dashboard.store.models import Grid, Person, Region, Unit, person_grids

CITY_TOML = "city.toml"
REGIONS_FILE = "regions.geojson"
GRIDS_FILE = "grids.geojson"
UNITS_FILE = "units.csv"
PEOPLE_FILE = "people.csv"

UNIT_COLUMNS = ("code", "name", "kind", "region_code", "parent_code")
PEOPLE_COLUMNS = ("code", "name", "role", "region_code", "grids")

# A unit grid is "about 10,000 m²"; outside this range it is almost surely a unit or
# coordinate mistake (degrees read as metres, a whole street drawn as one grid, ...).
MIN_GRID_AREA_M2 = 100.0
MAX_GRID_AREA_M2 = 1_000_000.0

MAX_PROBLEMS = 200

# Column widths of the schema; PostgreSQL enforces them, SQLite does not, so we check here
# to fail in the check phase rather than halfway through the write.
_REGION_NAME_MAX = 100
_UNIT_NAME_MAX = 100
_PERSON_NAME_MAX = 50
_CODE_MAX = 32
_LAND_USE_MAX = 50

# GeoJSON (RFC 7946) has no "crs" member, but GIS tools still write the 2008 one. These
# names mean WGS84 or CGCS2000 lon/lat (the latter within centimetres of WGS84).
_LONLAT_CRS_SUFFIXES = ("CRS84", ":4326", ":4490")

# Rows per statement when a list of codes or ids goes into an IN (...) clause; well below
# SQLite's and PostgreSQL's bound-parameter limits.
_CHUNK = 500

_PARENT_LEVEL = {
    RegionLevel.STREET: RegionLevel.DISTRICT,
    RegionLevel.COMMUNITY: RegionLevel.STREET,
}

Progress = Callable[[str, int, int], None]


class CityImportError(Exception):
    """The city data has problems; ``problems`` lists each as ``file:line: reason``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"城市数据有 {len(problems)} 处问题：\n" + "\n".join(problems))


@dataclass
class KindCounts:
    """Rows of one kind written by an import."""

    inserted: int = 0
    updated: int = 0

    @property
    def total(self) -> int:
        return self.inserted + self.updated


@dataclass
class ImportSummary:
    """What an import wrote. ``updated`` counts rows that already existed (matched by code)."""

    city_name: str | None = None
    regions: KindCounts = field(default_factory=KindCounts)
    grids: KindCounts = field(default_factory=KindCounts)
    units: KindCounts = field(default_factory=KindCounts)
    people: KindCounts = field(default_factory=KindCounts)
    grid_assignments: int = 0  # person→grid rows written (supervisors' grids)
    elapsed_s: float = 0.0

    def __str__(self) -> str:
        # One plain line (no rich markup) for people, e.g. the CLI's closing message:
        # "测试市: imported regions 4 new; grids 120 new, 3 updated; … in 0.4 s".
        parts = "; ".join(
            f"{kind} " + ", ".join([f"{ins:,} new"] * bool(ins or not upd) + [f"{upd:,} updated"] * bool(upd))
            for kind, ins, upd in self.rows()
        )
        city = f"{self.city_name}: " if self.city_name else ""
        return (f"{city}imported {parts}; {self.grid_assignments:,} supervisor grid assignments "
                f"in {self.elapsed_s:.1f} s")

    def rows(self) -> list[tuple[str, int, int]]:
        """(kind, inserted, updated) per kind, for a summary table."""
        return [
            (name, counts.inserted, counts.updated)
            for name, counts in (
                ("regions", self.regions),
                ("grids", self.grids),
                ("units", self.units),
                ("people", self.people),
            )
        ]


# -- problem collection ---------------------------------------------------------------------
class _Problems:
    """Collects problems; lists them by file and line, the first MAX_PROBLEMS of them."""

    _FILE_ORDER = (CITY_TOML, REGIONS_FILE, GRIDS_FILE, UNITS_FILE, PEOPLE_FILE)
    _WHERE = re.compile(r"([^:#\s]+)(?::|#feature )?(\d+)?")

    def __init__(self) -> None:
        self._items: list[tuple[int, int, int, str]] = []

    @property
    def total(self) -> int:
        return len(self._items)

    def add(self, where: str, reason: str) -> None:
        # Cross-reference problems are found after all files are read; sorting puts each
        # next to the other problems of its file and row.
        match = self._WHERE.match(where)
        name, number = (match.group(1), match.group(2)) if match else (where, None)
        rank = self._FILE_ORDER.index(name) if name in self._FILE_ORDER else len(self._FILE_ORDER)
        key = (rank, int(number) if number else -1, len(self._items))
        self._items.append((*key, f"{where}: {reason}"))

    def __bool__(self) -> bool:
        return bool(self._items)

    def as_list(self) -> list[str]:
        ordered = [text for *_key, text in sorted(self._items)]
        if len(ordered) > MAX_PROBLEMS:
            return [*ordered[:MAX_PROBLEMS], f"……另有 {len(ordered) - MAX_PROBLEMS} 处问题未列出"]
        return ordered


# -- parsed rows ----------------------------------------------------------------------------
@dataclass
class _RegionRow:
    where: str
    code: str
    name: str
    level: RegionLevel
    parent_code: str | None
    geometry: str | None


@dataclass
class _GridRow:
    where: str
    code: str
    community_code: str
    area_class: str
    land_use: str | None
    valid_from: date | None
    valid_to: date | None
    geometry: str
    area_m2: float
    centroid_lon: float
    centroid_lat: float


@dataclass
class _UnitRow:
    where: str
    code: str
    name: str
    kind: str
    region_code: str | None
    parent_code: str | None


@dataclass
class _PersonRow:
    where: str
    code: str
    name: str
    role: str
    region_code: str | None
    grids: list[str]


@dataclass
class _Parsed:
    """Everything read from the directory; ``*_ok`` is False when a file was unusable."""

    city_name: str | None = None
    regions: list[_RegionRow] = field(default_factory=list)
    grids: list[_GridRow] = field(default_factory=list)
    units: list[_UnitRow] = field(default_factory=list)
    people: list[_PersonRow] = field(default_factory=list)
    # Codes seen in the files, valid rows or not: references to a row that has its own
    # problem are not reported a second time as "missing".
    region_levels: dict[str, RegionLevel | None] = field(default_factory=dict)
    grid_codes: set[str] = field(default_factory=set)
    unit_codes: set[str] = field(default_factory=set)
    regions_ok: bool = True
    grids_ok: bool = True
    units_ok: bool = True


# -- entry point ----------------------------------------------------------------------------
def import_city(
    directory: Path,
    sessions: sessionmaker[Session],
    *,
    progress: Progress | None = None,
) -> ImportSummary:
    """Validate a city directory and upsert it in one transaction.

    Raises :class:`CityImportError` with every problem found (nothing is written).
    ``progress(stage, done, total)`` is called as the import goes; stages are ``read``,
    ``check grids``, ``check references``, ``write regions``, ``write grids``,
    ``write units`` and ``write people``.
    """
    started = time.perf_counter()
    report: Progress = progress or (lambda _stage, _done, _total: None)
    directory = Path(directory)
    problems = _Problems()
    if not directory.is_dir():
        raise CityImportError([f"{directory}: 不是目录"])

    parsed = _read_directory(directory, problems, report)

    with sessions() as session, session.begin():
        # Cross-references are checked inside the write transaction, so they see exactly
        # the database state the write builds on.
        existing = _Existing.load(session)
        _check_references(parsed, existing, problems, report)
        if problems:
            raise CityImportError(problems.as_list())
        summary = ImportSummary(city_name=parsed.city_name)
        summary.regions = _write_regions(session, parsed.regions, existing, report)
        summary.grids = _write_grids(session, parsed.grids, existing, report)
        summary.units = _write_units(session, parsed.units, existing, report)
        summary.people, summary.grid_assignments = _write_people(
            session, parsed.people, existing, report
        )
        store_city_name(session, parsed.city_name)  # what the screens and reports show
    summary.elapsed_s = time.perf_counter() - started
    return summary


# -- reading --------------------------------------------------------------------------------
def _read_directory(directory: Path, problems: _Problems, report: Progress) -> _Parsed:
    parsed = _Parsed()
    steps = 5
    report("read", 0, steps)
    parsed.city_name = _read_city_toml(directory / CITY_TOML, problems)
    report("read", 1, steps)

    features = _read_features(directory / REGIONS_FILE, problems)
    parsed.regions_ok = features is not None
    _parse_regions(features or [], parsed, problems)
    report("read", 2, steps)

    features = _read_features(directory / GRIDS_FILE, problems)
    parsed.grids_ok = features is not None
    report("read", 3, steps)

    rows = _read_csv(directory / UNITS_FILE, UNIT_COLUMNS, problems)
    parsed.units_ok = rows is not None
    _parse_units(rows or [], parsed, problems)
    report("read", 4, steps)

    rows = _read_csv(directory / PEOPLE_FILE, PEOPLE_COLUMNS, problems)
    _parse_people(rows or [], parsed, problems)
    report("read", 5, steps)

    # Grids last: their geometry checks are the slow part and get their own progress stage.
    _parse_grids(features or [], parsed, problems, report)
    return parsed


def _read_city_toml(path: Path, problems: _Problems) -> str | None:
    """Read the optional city.toml; return the city name if given."""
    if not path.exists():
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        problems.add(CITY_TOML, f"无法解析TOML：{exc}")
        return None
    name = data.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        problems.add(CITY_TOML, "name 应为非空字符串")
        name = None
    elif isinstance(name, str) and len(name.strip()) > CITY_NAME_MAX:
        problems.add(CITY_TOML, f"name 不应超过 {CITY_NAME_MAX} 个字符")
        name = None
    center = data.get("center")
    if center is not None:
        ok = (
            isinstance(center, list)
            and len(center) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in center)
        )
        if not ok or not (-180 <= center[0] <= 180 and -90 <= center[1] <= 90):
            problems.add(CITY_TOML, f"center 应为 [经度, 纬度]（WGS84），而不是 {center!r}")
    source = data.get("source")
    if source is not None and not isinstance(source, str):
        problems.add(CITY_TOML, "source 应为字符串")
    return name.strip() if isinstance(name, str) else None


def _read_features(path: Path, problems: _Problems) -> list[tuple[str, dict[str, Any], Any]] | None:
    """Read a GeoJSON FeatureCollection as (where, properties, geometry) per feature.

    Returns None when the file cannot be used at all (missing, not JSON, wrong shape).
    """
    name = path.name
    if not path.is_file():
        problems.add(name, "文件不存在")
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        problems.add(name, f"不是UTF-8编码的文本（第 {exc.start} 字节）")
        return None
    except json.JSONDecodeError as exc:
        problems.add(f"{name}:{exc.lineno}", f"JSON格式错误：{exc.msg}（第 {exc.colno} 列）")
        return None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        problems.add(name, "应为 GeoJSON FeatureCollection（顶层 \"type\": \"FeatureCollection\"）")
        return None
    features = data.get("features")
    if not isinstance(features, list):
        problems.add(name, "缺少 features 数组")
        return None
    crs_name = _crs_name(data.get("crs"))
    if crs_name is not None and not crs_name.upper().endswith(_LONLAT_CRS_SUFFIXES):
        problems.add(
            name,
            f"坐标系 {crs_name} 不受支持：应为WGS84（EPSG:4326）或CGCS2000（EPSG:4490）经纬度，"
            "投影坐标需先转换",
        )
        return None
    out: list[tuple[str, dict[str, Any], Any]] = []
    for index, feature in enumerate(features):
        where = f"{name}#feature {index}"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            problems.add(where, "不是 GeoJSON Feature")
            continue
        props = feature.get("properties")
        if props is None:
            props = {}
        if not isinstance(props, dict):
            problems.add(where, "properties 应为对象")
            continue
        out.append((where, props, feature.get("geometry")))
    return out


def _crs_name(crs: Any) -> str | None:
    if isinstance(crs, dict) and isinstance(crs.get("properties"), dict):
        value = crs["properties"].get("name")
        return str(value) if value is not None else None
    return None


def _read_csv(
    path: Path, columns: Sequence[str], problems: _Problems
) -> list[tuple[str, dict[str, str]]] | None:
    """Read a CSV with a header as (``file:line``, row) pairs; None when unusable.

    Line numbers are physical lines of the file (the header is line 1), so a quoted field
    spanning several lines still points at where its record starts.
    """
    name = path.name
    if not path.is_file():
        problems.add(name, "文件不存在")
        return None
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.add(name, f"不是UTF-8编码的文本（第 {exc.start} 字节；Excel请另存为“CSV UTF-8”）")
        return None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[str, dict[str, str]]] = []
    header: list[str] | None = None
    line_end = 0
    try:
        for record in reader:
            line_start, line_end = line_end + 1, reader.line_num
            if not record or all(not cell.strip() for cell in record):
                continue  # blank lines (and Excel's ",,,," rows) carry nothing
            if header is None:
                header = [cell.strip() for cell in record]
                missing = [c for c in columns if c not in header]
                if missing:
                    problems.add(f"{name}:{line_start}", f"缺少列 {', '.join(missing)}")
                    return None
                continue
            where = f"{name}:{line_start}"
            if len(record) != len(header):
                problems.add(where, f"应有 {len(header)} 个字段，实际 {len(record)} 个")
                continue
            rows.append((where, {key: value.strip() for key, value in zip(header, record, strict=False)}))
    except csv.Error as exc:
        problems.add(f"{name}:{reader.line_num}", f"CSV格式错误：{exc}")
        return None
    if header is None:
        problems.add(name, f"文件为空，应至少有表头 {','.join(columns)}")
        return None
    return rows


def _text(value: Any) -> str | None:
    """A property as stripped text; None for null/empty. Integers are accepted as digits.

    Raises TypeError for other JSON types (floats, lists, ...).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError
    if isinstance(value, int):
        # Spreadsheets and GIS tools turn code columns into numbers; Chinese region codes
        # never start with 0, so no digits are lost.
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    raise TypeError


def _prop(
    props: dict[str, Any], key: str, where: str, problems: _Problems
) -> tuple[bool, str | None]:
    """(ok, text) of a property, reporting values of the wrong JSON type."""
    try:
        return True, _text(props.get(key))
    except TypeError:
        problems.add(where, f"{key} 应为字符串，而不是 {props.get(key)!r}")
        return False, None


def _describe(where: str, code: str | None) -> str:
    return f"{where} ({code})" if code else where


# -- per-file parsing -----------------------------------------------------------------------
def _parse_regions(
    features: Iterable[tuple[str, dict[str, Any], Any]], parsed: _Parsed, problems: _Problems
) -> None:
    first_seen: dict[str, str] = {}
    for where, props, geometry in features:
        before = problems.total
        ok, code = _prop(props, "code", where, problems)
        location, where = where, _describe(where, code)
        _, name = _prop(props, "name", where, problems)
        _, level_text = _prop(props, "level", where, problems)
        _, parent_code = _prop(props, "parent_code", where, problems)

        level: RegionLevel | None = None
        if level_text is not None and level_text in RegionLevel._value2member_map_:
            level = RegionLevel(level_text)
        elif level_text is None:
            problems.add(where, "缺少 level")
        else:
            problems.add(where, f"level {level_text!r} 应为 district、street 或 community")

        if code is None:
            if ok:
                problems.add(where, "缺少 code")
        elif code in first_seen:
            problems.add(where, f"区域代码 {code} 重复（首次出现于 {first_seen[code]}）")
        else:
            first_seen[code] = location
            parsed.region_levels[code] = level

        if not name:
            problems.add(where, "缺少 name")
        elif len(name) > _REGION_NAME_MAX:
            problems.add(where, f"name 超过 {_REGION_NAME_MAX} 字")

        if level is not None and code is not None:
            if level is RegionLevel.DISTRICT:
                if parent_code is not None:
                    problems.add(where, f"区的 parent_code 应为空，而不是 {parent_code}")
            elif parent_code is None:
                problems.add(where, f"{level.label}缺少 parent_code")
            try:
                parent = parent_code if level is not RegionLevel.DISTRICT else None
                check_region_code(code, level, parent)
            except CodeError as exc:
                problems.add(where, str(exc))

        stored: str | None = None
        if geometry is not None:
            try:
                stored = to_geojson(_polygon(geometry))
            except GeometryError as exc:
                problems.add(where, str(exc))

        if problems.total == before and code and name and level:
            parsed.regions.append(_RegionRow(where, code, name, level, parent_code, stored))


def _polygon(geometry: Any) -> Polygonal:
    """A validated polygon from a feature's geometry member (GeometryError otherwise)."""
    if not isinstance(geometry, dict):
        raise GeometryError(f"geometry 应为 GeoJSON 几何对象，而不是 {type(geometry).__name__}")
    return polygon_from_geojson(geometry)


def _parse_grids(
    features: Sequence[tuple[str, dict[str, Any], Any]],
    parsed: _Parsed,
    problems: _Problems,
    report: Progress,
) -> None:
    first_seen: dict[str, str] = {}
    total = len(features)
    report("check grids", 0, total)
    for index, (where, props, geometry) in enumerate(features, start=1):
        before = problems.total
        ok, code = _prop(props, "code", where, problems)
        location, where = where, _describe(where, code)
        community_ok, community = _prop(props, "community_code", where, problems)
        _, area_class = _prop(props, "area_class", where, problems)
        _, land_use = _prop(props, "land_use", where, problems)
        _, from_text = _prop(props, "valid_from", where, problems)
        _, to_text = _prop(props, "valid_to", where, problems)

        if code is None:
            if ok:
                problems.add(where, "缺少 code")
        elif code in first_seen:
            problems.add(where, f"单元网格代码 {code} 重复（首次出现于 {first_seen[code]}）")
        else:
            first_seen[code] = location
            parsed.grid_codes.add(code)
        if community is None and community_ok:
            problems.add(where, "缺少 community_code")
        if code is not None and community is not None:
            try:
                check_grid_in_community(code, community)
            except CodeError as exc:
                problems.add(where, str(exc))

        area_class = area_class or AreaClass.B.value
        if area_class not in AreaClass._value2member_map_:
            problems.add(where, f"area_class {area_class!r} 应为 A、B 或 C")
        if land_use is not None and len(land_use) > _LAND_USE_MAX:
            problems.add(where, f"land_use 超过 {_LAND_USE_MAX} 字")
        valid_from = _iso_date(from_text, "valid_from", where, problems)
        valid_to = _iso_date(to_text, "valid_to", where, problems)
        if valid_from and valid_to and valid_to < valid_from:
            problems.add(where, f"valid_to {valid_to} 早于 valid_from {valid_from}")

        stored: str | None = None
        area = 0.0
        centroid: Point | None = None
        if geometry is None:
            problems.add(where, "缺少 geometry（单元网格必须有多边形）")
        else:
            try:
                geom = _polygon(geometry)
            except GeometryError as exc:
                problems.add(where, str(exc))
            else:
                area = geodesic_area_m2(geom)
                if not MIN_GRID_AREA_M2 <= area <= MAX_GRID_AREA_M2:
                    problems.add(
                        where,
                        f"面积 {area:,.0f} m² 超出单元网格允许范围 "
                        f"{MIN_GRID_AREA_M2:,.0f}–{MAX_GRID_AREA_M2:,.0f} m²"
                        "（坐标单位或多边形是否有误？）",
                    )
                stored = to_geojson(geom)
                centroid = geom.centroid

        if problems.total == before and code and community and stored and centroid is not None:
            parsed.grids.append(
                _GridRow(
                    where=where,
                    code=code,
                    community_code=community,
                    area_class=area_class,
                    land_use=land_use,
                    valid_from=valid_from,
                    valid_to=valid_to,
                    geometry=stored,
                    area_m2=round(area, 1),
                    centroid_lon=round(centroid.x, 7),
                    centroid_lat=round(centroid.y, 7),
                )
            )
        if index % 250 == 0 or index == total:
            report("check grids", index, total)


def _iso_date(text: str | None, key: str, where: str, problems: _Problems) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.add(where, f"{key} {text!r} 应为ISO日期，如 2024-01-01")
        return None


def _check_code(code: str, where: str, problems: _Problems) -> bool:
    if not code:
        problems.add(where, "缺少 code")
        return False
    if len(code) > _CODE_MAX:
        problems.add(where, f"code {code!r} 超过 {_CODE_MAX} 个字符")
        return False
    return True


def _check_name(name: str, limit: int, where: str, problems: _Problems) -> None:
    if not name:
        problems.add(where, "缺少 name")
    elif len(name) > limit:
        problems.add(where, f"name 超过 {limit} 字")


def _parse_units(
    rows: Iterable[tuple[str, dict[str, str]]], parsed: _Parsed, problems: _Problems
) -> None:
    first_seen: dict[str, str] = {}
    for where, row in rows:
        before = problems.total
        code = row["code"]
        if _check_code(code, where, problems):
            if code in first_seen:
                problems.add(where, f"单位代码 {code} 重复（首次出现于 {first_seen[code]}）")
            else:
                first_seen[code] = where
                parsed.unit_codes.add(code)
        _check_name(row["name"], _UNIT_NAME_MAX, where, problems)
        if row["kind"] not in UnitKind._value2member_map_:
            problems.add(
                where, f"kind {row['kind']!r} 应为 {'、'.join(k.value for k in UnitKind)} 之一"
            )
        parent = row["parent_code"] or None
        if parent is not None and parent == code:
            problems.add(where, "parent_code 不能是自己")
        if problems.total == before:
            parsed.units.append(
                _UnitRow(where, code, row["name"], row["kind"], row["region_code"] or None, parent)
            )


def _parse_people(
    rows: Iterable[tuple[str, dict[str, str]]], parsed: _Parsed, problems: _Problems
) -> None:
    first_seen: dict[str, str] = {}
    for where, row in rows:
        before = problems.total
        code = row["code"]
        if _check_code(code, where, problems):
            if code in first_seen:
                problems.add(where, f"人员代码 {code} 重复（首次出现于 {first_seen[code]}）")
            else:
                first_seen[code] = where
        _check_name(row["name"], _PERSON_NAME_MAX, where, problems)
        role = row["role"]
        if role not in Role._value2member_map_:
            problems.add(where, f"role {role!r} 应为 {'、'.join(r.value for r in Role)} 之一")
        # Order kept, duplicates dropped: "a;b;a" assigns a and b once each.
        grids = list(dict.fromkeys(g.strip() for g in row["grids"].split(";") if g.strip()))
        if grids and role != Role.SUPERVISOR.value:
            problems.add(where, f"只有监督员(supervisor)可以分配网格，{role} 的 grids 应为空")
        if problems.total == before:
            parsed.people.append(
                _PersonRow(where, code, row["name"], role, row["region_code"] or None, grids)
            )


# -- cross-references -----------------------------------------------------------------------
@dataclass
class _Existing:
    """Codes → ids (and region levels) already in the database."""

    regions: dict[str, int]
    region_levels: dict[str, str]
    grids: dict[str, int]
    units: dict[str, int]
    people: dict[str, int]

    @classmethod
    def load(cls, session: Session) -> _Existing:
        regions: dict[str, int] = {}
        levels: dict[str, str] = {}
        for code, id_, level in session.execute(select(Region.code, Region.id, Region.level)):
            regions[code] = id_
            levels[code] = level
        return cls(
            regions=regions,
            region_levels=levels,
            grids=dict(session.execute(select(Grid.code, Grid.id)).all()),
            units=dict(session.execute(select(Unit.code, Unit.id)).all()),
            people=dict(session.execute(select(Person.code, Person.id)).all()),
        )


def _check_references(
    parsed: _Parsed, existing: _Existing, problems: _Problems, report: Progress
) -> None:
    total = len(parsed.regions) + len(parsed.grids) + len(parsed.units) + len(parsed.people)
    report("check references", 0, total)

    def region_level(code: str) -> RegionLevel | None | Literal[False]:
        """The level of a region in the file or database; False when it exists nowhere."""
        if code in parsed.region_levels:
            return parsed.region_levels[code]
        if code in existing.region_levels:
            return RegionLevel(existing.region_levels[code])
        return False

    def check_region(where: str, code: str, wanted: RegionLevel | None, what: str) -> None:
        level = region_level(code)
        if level is False:
            if parsed.regions_ok:  # else regions.geojson already has its own problem
                problems.add(where, f"{what} {code} 在 {REGIONS_FILE} 和数据库中都不存在")
        elif wanted is not None and isinstance(level, RegionLevel) and level is not wanted:
            problems.add(where, f"{what} {code} 是{level.label}，应为{wanted.label}")

    for region_row in parsed.regions:
        if region_row.parent_code is not None:
            check_region(region_row.where, region_row.parent_code, _PARENT_LEVEL[region_row.level], "上级区域")
    for grid_row in parsed.grids:
        check_region(grid_row.where, grid_row.community_code, RegionLevel.COMMUNITY, "所属社区")
    report("check references", len(parsed.regions) + len(parsed.grids), total)

    unit_codes = parsed.unit_codes | existing.units.keys()
    for unit_row in parsed.units:
        if unit_row.region_code is not None:
            check_region(unit_row.where, unit_row.region_code, None, "所属区域")
        if unit_row.parent_code is not None and unit_row.parent_code not in unit_codes and parsed.units_ok:
            problems.add(unit_row.where, f"上级单位 {unit_row.parent_code} 在 {UNITS_FILE} 和数据库中都不存在")
    for cycle_row in _unit_cycles(parsed.units):
        problems.add(cycle_row.where, f"上级单位形成循环（{cycle_row.code} 经上级又回到自己）")

    grid_codes = parsed.grid_codes | existing.grids.keys()
    for person in parsed.people:
        if person.region_code is not None:
            check_region(person.where, person.region_code, None, "所属区域")
        if parsed.grids_ok:
            missing = [g for g in person.grids if g not in grid_codes]
            if missing:
                problems.add(
                    person.where,
                    f"分配的网格 {'、'.join(missing)} 在 {GRIDS_FILE} 和数据库中都不存在",
                )
    report("check references", total, total)


def _unit_cycles(units: Sequence[_UnitRow]) -> list[_UnitRow]:
    """Units of the file whose parent chain (within the file) loops back on itself."""
    by_code = {u.code: u for u in units}
    in_cycle: list[_UnitRow] = []
    for unit in units:
        seen = {unit.code}
        parent = unit.parent_code
        while parent in by_code:
            if parent == unit.code:
                in_cycle.append(unit)
                break
            if parent in seen:
                break  # a loop further up; reported for the units on it
            seen.add(parent)
            parent = by_code[parent].parent_code
    return in_cycle


# -- writing --------------------------------------------------------------------------------
def _upsert(
    session: Session,
    model: type[Any],
    rows: list[dict[str, Any]],
    ids: dict[str, int],
) -> KindCounts:
    """Insert rows whose code is new and update (by primary key) those that exist.

    Both go as one executemany each; ``ids`` is then refreshed with the new rows' ids.
    """
    new = [r for r in rows if r["code"] not in ids]
    old = [{"id": ids[r["code"]], **r} for r in rows if r["code"] in ids]
    if new:
        session.execute(insert(model), new)
        codes = [r["code"] for r in new]
        for chunk in _chunks(codes):
            found = session.execute(select(model.code, model.id).where(model.code.in_(chunk)))
            ids.update(found.all())
    if old:
        session.execute(update(model), old)
    return KindCounts(inserted=len(new), updated=len(old))


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _write_regions(
    session: Session, rows: list[_RegionRow], existing: _Existing, report: Progress
) -> KindCounts:
    counts = KindCounts()
    ids = existing.regions
    report("write regions", 0, len(rows))
    done = 0
    # Parents first: each level's parent ids are known once the level above is written.
    for level in (RegionLevel.DISTRICT, RegionLevel.STREET, RegionLevel.COMMUNITY):
        batch = [
            {
                "code": r.code,
                "name": r.name,
                "level": r.level.value,
                "parent_id": ids[r.parent_code] if r.parent_code else None,
                "geometry": r.geometry,
            }
            for r in rows
            if r.level is level
        ]
        written = _upsert(session, Region, batch, ids)
        counts.inserted += written.inserted
        counts.updated += written.updated
        done += len(batch)
        report("write regions", done, len(rows))
    return counts


def _write_grids(
    session: Session, rows: list[_GridRow], existing: _Existing, report: Progress
) -> KindCounts:
    report("write grids", 0, len(rows))
    batch = [
        {
            "code": r.code,
            "community_id": existing.regions[r.community_code],
            "geometry": r.geometry,
            "area_m2": r.area_m2,
            "area_class": r.area_class,
            "land_use": r.land_use,
            "centroid_lon": r.centroid_lon,
            "centroid_lat": r.centroid_lat,
            "valid_from": r.valid_from,
            "valid_to": r.valid_to,
        }
        for r in rows
    ]
    counts = _upsert(session, Grid, batch, existing.grids)
    report("write grids", len(rows), len(rows))
    return counts


def _write_units(
    session: Session, rows: list[_UnitRow], existing: _Existing, report: Progress
) -> KindCounts:
    counts = KindCounts()
    ids = existing.units
    report("write units", 0, len(rows))
    done = 0
    for batch_rows in _unit_generations(rows):
        batch = [
            {
                "code": r.code,
                "name": r.name,
                "kind": r.kind,
                "region_id": existing.regions[r.region_code] if r.region_code else None,
                "parent_id": ids[r.parent_code] if r.parent_code else None,
            }
            for r in batch_rows
        ]
        written = _upsert(session, Unit, batch, ids)
        counts.inserted += written.inserted
        counts.updated += written.updated
        done += len(batch)
        report("write units", done, len(rows))
    return counts


def _unit_generations(rows: list[_UnitRow]) -> list[list[_UnitRow]]:
    """Units grouped so that every unit's parent is in an earlier group or already stored.

    Cycles were rejected in the check phase, so this terminates.
    """
    in_file = {r.code: r for r in rows}
    depth: dict[str, int] = {}

    def depth_of(row: _UnitRow) -> int:
        chain = []
        current: _UnitRow | None = row
        while current is not None and current.code not in depth:
            chain.append(current)
            current = in_file.get(current.parent_code) if current.parent_code else None
        base = depth[current.code] + 1 if current is not None else 0
        for offset, item in enumerate(reversed(chain)):
            depth[item.code] = base + offset
        return depth[row.code]

    generations: list[list[_UnitRow]] = []
    for row in rows:
        level = depth_of(row)
        while len(generations) <= level:
            generations.append([])
        generations[level].append(row)
    return generations


def _write_people(
    session: Session, rows: list[_PersonRow], existing: _Existing, report: Progress
) -> tuple[KindCounts, int]:
    report("write people", 0, len(rows))
    batch = [
        {
            "code": r.code,
            "name": r.name,
            "role": r.role,
            "region_id": existing.regions[r.region_code] if r.region_code else None,
        }
        for r in rows
    ]
    counts = _upsert(session, Person, batch, existing.people)
    # The file is the whole truth about a listed person's grids: replace, don't merge, so
    # a grid taken away from a supervisor in the file is taken away in the database too.
    person_ids = [existing.people[r.code] for r in rows]
    for chunk in _chunks(person_ids):
        session.execute(delete(person_grids).where(person_grids.c.person_id.in_(chunk)))
    pairs = [
        {"person_id": existing.people[r.code], "grid_id": existing.grids[g]}
        for r in rows
        for g in r.grids
    ]
    if pairs:
        session.execute(insert(person_grids), pairs)
    report("write people", len(rows), len(rows))
    return counts, len(pairs)
