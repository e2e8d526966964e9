"""Geometry helpers: GeoJSON ↔ shapely, geodesic areas, coordinate sanity.

Coordinates are WGS84 longitude/latitude (EPSG:4326). CGCS2000 differs from WGS84 by
centimetres and is accepted as is; GCJ-02 ("Mars" coordinates) is offset by hundreds of
metres and must be converted by the city before import (see docs/city-data.md).
"""

from __future__ import annotations

import json
from typing import Any, TypeAlias

import shapely
from pyproj import Geod
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry

_GEOD = Geod(ellps="WGS84")

Polygonal: TypeAlias = Polygon | MultiPolygon


class GeometryError(ValueError):
    """A geometry that is not a usable WGS84 polygon."""


def geodesic_area_m2(geom: BaseGeometry) -> float:
    """Area on the WGS84 ellipsoid in m² (pyproj's geodesic algorithm, not a projection)."""
    area, _perimeter = _GEOD.geometry_area_perimeter(shapely.orient_polygons(geom))
    return abs(area)


def polygon_from_geojson(obj: dict[str, Any] | str) -> Polygonal:
    """Parse a GeoJSON Polygon/MultiPolygon (or a Feature holding one) and validate it."""
    data: dict[str, Any] = json.loads(obj) if isinstance(obj, str) else obj
    if data.get("type") == "Feature":
        data = data.get("geometry") or {}
    if data.get("type") not in ("Polygon", "MultiPolygon"):
        raise GeometryError(f"几何类型应为 Polygon 或 MultiPolygon，而不是 {data.get('type')!r}")
    try:
        geom = shape(data)
    except Exception as exc:  # shapely raises several types on malformed coordinates
        raise GeometryError(f"几何坐标无法解析：{exc}") from None
    check_lonlat(geom)
    if geom.is_empty:
        raise GeometryError("几何为空")
    if not geom.is_valid:
        raise GeometryError(f"多边形无效：{shapely.is_valid_reason(geom)}")
    return geom


def check_lonlat(geom: BaseGeometry) -> None:
    """Reject coordinates that cannot be longitude/latitude (e.g. projected metres)."""
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise GeometryError(
            f"坐标超出经纬度范围 {geom.bounds}：应为WGS84经度/纬度（投影坐标需先转换）"
        )


def to_geojson(geom: BaseGeometry, precision: int = 6) -> str:
    """Compact GeoJSON text; 6 decimals of a degree is about 0.1 m."""
    rounded = shapely.set_precision(geom, 10**-precision) if precision else geom
    return json.dumps(mapping(rounded), separators=(",", ":"))
