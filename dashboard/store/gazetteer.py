"""Import the city's address gazetteer (门牌 and POI with points) from CSV or GeoJSON (docs/geocoding.md).

The file is checked whole first: every bad row is a problem ``file:line: reason`` (CSV) or
``file#feature N: reason`` (GeoJSON) and a file with any problem writes nothing
(:class:`GazetteerError`). A good file REPLACES the stored set in one transaction, so importing
the same file again gives the same table. Each point's unit grid is resolved with the grid
index of the stored grids (``dashboard/rules/gridindex.py``); a point outside every grid is
skipped and counted (:class:`GazetteerSummary`), as is a row whose district, street or
community is left empty (filled from its grid's regions).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shapely.geometry import shape
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from dashboard.rules.gridindex import GridIndex
from dashboard.store.models import GazetteerEntry, Grid, Region

__all__ = ["CSV_COLUMNS", "KINDS", "GazetteerError", "GazetteerSummary", "import_gazetteer", "read_gazetteer"]

#: The CSV's header (docs/geocoding.md); name, district, street and community may be empty.
CSV_COLUMNS = ("kind", "address", "name", "district", "street", "community", "lon", "lat")
REQUIRED_COLUMNS = ("kind", "address", "lon", "lat")
#: What a file may write in ``kind`` → what is stored.
KINDS = {"门牌": "house", "house": "house", "poi": "poi", "POI": "poi", "兴趣点": "poi"}
MAX_PROBLEMS = 200
_ADDRESS_MAX, _NAME_MAX, _REGION_MAX = 200, 100, 100
_CHUNK = 2000


class GazetteerError(Exception):
    """The file has problems (each ``where: reason``); nothing was imported."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"地名地址文件有 {len(problems)} 处问题：\n" + "\n".join(problems))


@dataclass
class GazetteerSummary:
    """What an import wrote."""

    houses: int = 0
    pois: int = 0
    replaced: int = 0  # rows of the previous set
    outside: list[str] = field(default_factory=list)  # where of rows whose point is in no grid
    elapsed_s: float = 0.0

    def __str__(self) -> str:
        skipped = f"; {len(self.outside):,} outside every grid skipped" if self.outside else ""
        return (f"gazetteer: {self.houses:,} 门牌 and {self.pois:,} POI imported "
                f"(replacing {self.replaced:,}){skipped} in {self.elapsed_s:.1f} s")


@dataclass(frozen=True)
class _Row:
    where: str
    kind: str
    address: str
    name: str | None
    district: str | None
    street: str | None
    community: str | None
    lon: float
    lat: float


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError
    return str(value).strip() or None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _check(where: str, props: dict[str, Any], lon: Any, lat: Any, problems: list[str]) -> _Row | None:
    """One row from its fields; a problem added and None when it is bad."""
    texts: dict[str, str | None] = {}
    for key in ("kind", "address", "name", "district", "street", "community"):
        try:
            texts[key] = _text(props.get(key))
        except TypeError:
            problems.append(f"{where}: {key} 应为字符串，而不是 {props.get(key)!r}")
            return None
    kind = KINDS.get(texts["kind"] or "")
    if kind is None:
        problems.append(f"{where}: kind {texts['kind']!r} 应为 门牌 或 POI")
        return None
    address, name = texts["address"], texts["name"]
    if kind == "poi" and not name:
        problems.append(f"{where}: POI 缺少 name")
        return None
    if not address:
        if kind == "house":
            problems.append(f"{where}: 门牌 缺少 address")
            return None
        address = name
    assert address is not None
    if len(address) > _ADDRESS_MAX or (name and len(name) > _NAME_MAX):
        problems.append(f"{where}: address 不应超过 {_ADDRESS_MAX} 个字符、name 不应超过 {_NAME_MAX} 个字符")
        return None
    for key in ("district", "street", "community"):
        if (texts[key] or "") and len(texts[key] or "") > _REGION_MAX:
            problems.append(f"{where}: {key} 不应超过 {_REGION_MAX} 个字符")
            return None
    x, y = _number(lon), _number(lat)
    if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
        problems.append(f"{where}: 经纬度 lon={lon!r} lat={lat!r} 应为数字")
        return None
    if not (-180 <= x <= 180 and -90 <= y <= 90):
        problems.append(f"{where}: 经纬度 ({x}, {y}) 超出范围：应为WGS84经度、纬度（经度在前）")
        return None
    return _Row(where, kind, address, name, texts["district"], texts["street"], texts["community"], x, y)


def _read_csv(path: Path, text: str, problems: list[str]) -> list[_Row]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    rows: list[_Row] = []
    line_end = 0
    try:
        for record in reader:
            line_start, line_end = line_end + 1, reader.line_num
            if not record or all(not cell.strip() for cell in record):
                continue
            where = f"{path.name}:{line_start}"
            if header is None:
                header = [cell.strip().lstrip("\ufeff") for cell in record]
                missing = [c for c in REQUIRED_COLUMNS if c not in header]
                if missing:
                    problems.append(f"{where}: 缺少列 {', '.join(missing)}（表头应为 {','.join(CSV_COLUMNS)}）")
                    return []
                continue
            if len(record) != len(header):
                problems.append(f"{where}: 应有 {len(header)} 个字段，实际 {len(record)} 个")
                continue
            props = dict(zip(header, record, strict=True))
            row = _check(where, props, props.get("lon"), props.get("lat"), problems)
            if row is not None:
                rows.append(row)
    except csv.Error as exc:
        problems.append(f"{path.name}:{reader.line_num}: CSV格式错误：{exc}")
        return []
    if header is None:
        problems.append(f"{path.name}: 文件为空，应至少有表头 {','.join(CSV_COLUMNS)}")
    return rows


def _read_geojson(path: Path, text: str, problems: list[str]) -> list[_Row]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(f"{path.name}:{exc.lineno}: JSON格式错误：{exc.msg}（第 {exc.colno} 列）")
        return []
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" or not isinstance(
            data.get("features"), list):
        problems.append(f"{path.name}: 应为 GeoJSON FeatureCollection"
                        "（顶层 \"type\": \"FeatureCollection\" 与 features 数组）")
        return []
    rows: list[_Row] = []
    for index, feature in enumerate(data["features"]):
        where = f"{path.name}#feature {index}"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            problems.append(f"{where}: 不是 GeoJSON Feature")
            continue
        props = feature.get("properties") or {}
        geometry = feature.get("geometry")
        if not isinstance(props, dict):
            problems.append(f"{where}: properties 应为对象")
            continue
        coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
        if (not isinstance(geometry, dict) or geometry.get("type") != "Point" or not isinstance(coords, list)
                or len(coords) < 2):
            problems.append(f"{where}: geometry 应为 Point（[经度, 纬度]）")
            continue
        row = _check(where, props, coords[0], coords[1], problems)
        if row is not None:
            rows.append(row)
    return rows


def read_gazetteer(path: Path) -> list[_Row]:
    """The rows of a CSV (``.csv``) or GeoJSON (``.geojson``/``.json``) gazetteer; raises GazetteerError."""
    path = Path(path)
    problems: list[str] = []
    if not path.is_file():
        raise GazetteerError([f"{path}: 文件不存在"])
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise GazetteerError([f"{path.name}: 不是UTF-8编码的文本（第 {exc.start} 字节；"
                              "Excel请另存为“CSV UTF-8”）"]) from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _read_csv(path, text, problems)
    elif suffix in (".geojson", ".json"):
        rows = _read_geojson(path, text, problems)
    else:
        raise GazetteerError([f"{path.name}: 应为 .csv 或 .geojson 文件"])
    if not rows and not problems:
        problems.append(f"{path.name}: 没有任何地址")
    if problems:
        extra = len(problems) - MAX_PROBLEMS
        raise GazetteerError(problems[:MAX_PROBLEMS] + ([f"……另有 {extra} 处问题未列出"] if extra > 0 else []))
    return rows


def _grid_regions(session: Session) -> tuple[GridIndex | None, dict[str, tuple[str | None, str | None, str | None]]]:
    """The grid index of the stored grids, and grid code → (district, street, community) names."""
    grids = session.execute(select(Grid.code, Grid.geometry, Grid.community_id)).all()
    if not grids:
        return None, {}
    regions = {r.id: (r.name, r.parent_id) for r in session.execute(select(Region.id, Region.name, Region.parent_id))}
    names: dict[str, tuple[str | None, str | None, str | None]] = {}
    for code, _, community_id in grids:
        chain: list[str | None] = []
        rid: int | None = community_id
        while rid is not None and rid in regions and len(chain) < 3:
            name, rid = regions[rid]
            chain.append(name)
        chain += [None] * (3 - len(chain))
        names[code] = (chain[2], chain[1], chain[0])
    index = GridIndex([g.code for g in grids], [shape(json.loads(g.geometry)) for g in grids])
    return index, names


def import_gazetteer(path: Path, sessions: sessionmaker[Session]) -> GazetteerSummary:
    """Check ``path`` and replace the stored gazetteer with it in one transaction; raises GazetteerError."""
    started = time.perf_counter()
    rows = read_gazetteer(path)
    summary = GazetteerSummary()
    with sessions() as session, session.begin():
        index, names = _grid_regions(session)
        if index is None:
            raise GazetteerError(["数据库中还没有单元网格：请先导入城市数据（gridhall import city）"])
        codes = index.locate_many([r.lon for r in rows], [r.lat for r in rows])
        values = []
        for row, code in zip(rows, codes, strict=True):
            if code is None:
                summary.outside.append(row.where)
                continue
            district, street, community = names.get(code, (None, None, None))
            values.append({
                "kind": row.kind, "address": row.address, "name": row.name,
                "district": row.district or district, "street": row.street or street,
                "community": row.community or community,
                "lon": round(row.lon, 7), "lat": round(row.lat, 7), "grid_code": code,
            })
            if row.kind == "house":
                summary.houses += 1
            else:
                summary.pois += 1
        summary.replaced = session.scalar(select(func.count()).select_from(GazetteerEntry)) or 0
        session.execute(delete(GazetteerEntry))
        for start in range(0, len(values), _CHUNK):
            session.execute(insert(GazetteerEntry), values[start:start + _CHUNK])
    summary.elapsed_s = time.perf_counter() - started
    return summary
