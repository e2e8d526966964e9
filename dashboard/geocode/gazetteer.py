"""The stored gazetteer in memory: its places and the names of the city's divisions.

Read once by :meth:`dashboard.geocode.matcher.Geocoder.load`; the table is written by
``dashboard/store/gazetteer.py`` (``gridhall import gazetteer``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.geocode.address import Divisions
from dashboard.store.cityname import META_KEY
from dashboard.store.models import GazetteerEntry, Meta, Region

__all__ = ["KIND_LABELS", "Place", "load_divisions", "load_places"]

#: kind as stored → as people read it.
KIND_LABELS = {"house": "门牌", "poi": "POI"}


@dataclass(frozen=True)
class Place:
    """One gazetteer entry: a 门牌 (``house``) or a POI (``poi``) with its point and unit grid."""

    kind: str
    address: str
    name: str | None
    district: str | None
    street: str | None
    community: str | None
    lon: float
    lat: float
    grid_code: str


def load_places(session: Session) -> list[Place]:
    """Every stored gazetteer entry, in id order."""
    rows = session.execute(select(
        GazetteerEntry.kind, GazetteerEntry.address, GazetteerEntry.name, GazetteerEntry.district,
        GazetteerEntry.street, GazetteerEntry.community, GazetteerEntry.lon, GazetteerEntry.lat,
        GazetteerEntry.grid_code).order_by(GazetteerEntry.id)).all()
    return [Place(*row) for row in rows]


def load_divisions(session: Session, city_name: str | None = None) -> Divisions:
    """The city's name (``city_name``, else the imported one) and its districts, streets and communities."""
    stored = session.get(Meta, META_KEY)
    cities = [n for n in (city_name, stored.value if stored else None) if n]
    regions = session.execute(select(Region.name, Region.level)).all()
    districts = [name for name, level in regions if level == "district"]
    others = [name for name, level in regions if level != "district"]
    places = session.execute(select(GazetteerEntry.district, GazetteerEntry.street,
                                    GazetteerEntry.community).distinct()).all()
    districts += [d for d, _, _ in places if d]
    others += [n for _, s, c in places for n in (s, c) if n]
    return Divisions.of(cities, districts, others)
