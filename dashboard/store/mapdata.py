"""Map layers of the wall as GeoJSON, built once per process and served as static files.

The heatmap sends geometry once: the browser fetches these collections by URL (cached by
ETag) and the live updates only recolour features by grid code. The ETag is a hash of the
rows a layer is built from (and of this module's code), so :func:`layer_etag` answers a
browser's revalidation (304) without building the layer — a worker that has just started
does not make a reloading wall wait for its GeoJSON. A feature's only property
is its code (``c``) plus, for boundaries, its level (``l``) and name (``n``): everything else
the screens need travels with the live figures, keyed by the same code.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.store.models import Grid, Region
from dashboard.store.scope import CITY, Scope, grid_condition, region_condition

# 5 decimals of a degree is about 1 m: plenty for a 100 m grid cell on a wall, and it cuts
# the text of 100,000 cells by a sixth compared with the stored 6 decimals.
PRECISION = 5
# The outlines drawn over the grids, by the level of the wall's scope: the city wall shows its
# districts and streets, a district's wall the district, its streets and communities, a street's
# wall the street and its communities (a community's, itself).
BOUNDARY_LEVELS: dict[str, tuple[str, ...]] = {
    "city": ("district", "street"),
    "district": ("district", "street", "community"),
    "street": ("street", "community"),
    "community": ("community",),
}


def _code_hash() -> bytes:
    try:
        return hashlib.blake2b(Path(__file__).read_bytes(), digest_size=8).digest()
    except OSError:
        return b""


_CODE = _code_hash()  # a change in how layers are built changes every ETag


@dataclass(frozen=True)
class Layer:
    """One GeoJSON FeatureCollection, serialised and gzipped, with an ETag."""

    body: bytes
    gzipped: bytes
    etag: str
    features: int
    bounds: tuple[float, float, float, float] | None  # min lon, min lat, max lon, max lat


def _round(coords: object) -> object:
    if isinstance(coords, list):
        if coords and isinstance(coords[0], (int, float)):
            return [round(float(c), PRECISION) for c in coords]
        return [_round(c) for c in coords]
    return coords


def _extend(bounds: list[float], coords: object) -> None:
    if isinstance(coords, list) and coords:
        if isinstance(coords[0], (int, float)):
            x, y = float(coords[0]), float(coords[1])
            bounds[0] = min(bounds[0], x)
            bounds[1] = min(bounds[1], y)
            bounds[2] = max(bounds[2], x)
            bounds[3] = max(bounds[3], y)
        else:
            for c in coords:
                _extend(bounds, c)


def _tag(rows: Iterable[Sequence[Any]]) -> str:
    """The ETag of a layer: a hash of the rows it is built from."""
    h = hashlib.blake2b(_CODE, digest_size=12)
    for row in rows:
        h.update("\x1f".join("" if v is None else str(v) for v in row).encode())
        h.update(b"\x1e")
    return '"' + h.hexdigest() + '"'


def _grid_rows(session: Session, scope: Scope = CITY) -> list[Sequence[Any]]:
    return list(session.execute(
        select(Grid.code, Grid.geometry).where(grid_condition(scope)).order_by(Grid.code)).all())


# Drawn bottom to top: communities, streets, districts (the coarser outline on top).
_LEVEL_ORDER = {"community": 0, "street": 1, "district": 2}


def _boundary_rows(session: Session, scope: Scope = CITY) -> list[Sequence[Any]]:
    rows = session.execute(
        select(Region.code, Region.name, Region.level, Region.geometry)
        .where(Region.level.in_(BOUNDARY_LEVELS[scope.level]), Region.geometry.is_not(None),
               region_condition(scope))
        .order_by(Region.code)
    ).all()
    return sorted(rows, key=lambda r: (_LEVEL_ORDER.get(r[2], 0), r[0]))  # (code, name, level, geometry)


def layer_etag(name: str, session: Session, scope: Scope = CITY) -> str:
    """The ETag the layer ``name`` ("grids", "boundaries") of ``scope`` has, without building it."""
    return _tag({"grids": _grid_rows, "boundaries": _boundary_rows}[name](session, scope))


def _layer(features: list[dict[str, Any]], etag: str) -> Layer:
    bounds = [180.0, 90.0, -180.0, -90.0]
    for f in features:
        _extend(bounds, f["geometry"]["coordinates"])
    body = json.dumps({"type": "FeatureCollection", "features": features},
                      separators=(",", ":"), ensure_ascii=False).encode()
    return Layer(
        body=body,
        gzipped=gzip.compress(body, compresslevel=6, mtime=0),
        etag=etag,
        features=len(features),
        bounds=(bounds[0], bounds[1], bounds[2], bounds[3]) if features else None,
    )


def grid_layer(session: Session, scope: Scope = CITY) -> Layer:
    """Every unit grid of ``scope`` as a polygon with its code, ordered by code."""
    rows = _grid_rows(session, scope)
    features: list[dict[str, Any]] = []
    for code, geometry in rows:
        geom = json.loads(geometry)
        features.append({"type": "Feature", "properties": {"c": code},
                         "geometry": {"type": geom["type"], "coordinates": _round(geom["coordinates"])}})
    return _layer(features, _tag(rows))


def boundary_layer(session: Session, scope: Scope = CITY) -> Layer:
    """The outlines of ``scope``'s regions at BOUNDARY_LEVELS (those that carry a geometry),
    the coarsest last (on top)."""
    rows = _boundary_rows(session, scope)
    features: list[dict[str, Any]] = []
    for code, name, level, geometry in rows:
        if geometry is None:  # excluded by the query; narrows the column's type
            continue
        geom = json.loads(geometry)
        features.append({"type": "Feature", "properties": {"c": code, "l": level, "n": name},
                         "geometry": {"type": geom["type"], "coordinates": _round(geom["coordinates"])}})
    return _layer(features, _tag(rows))
