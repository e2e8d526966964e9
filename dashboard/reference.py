"""Reference data an event is checked against: grids, units and the active classification.

Loaded once per process from SQL and reloaded when a code is missing (a grid imported after
the ingest started must not be dead-lettered for ever).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from shapely.geometry import shape
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, sessionmaker

from .classification import Classification
from .gridindex import GridIndex
from .models import ClassificationEntry, Grid, Meta, Region, Unit


@dataclass
class Reference:
    """Codes known to this city, for validating and resolving case events."""

    classification: Classification
    grid_ids: dict[str, int] = field(default_factory=dict)
    unit_ids: dict[str, int] = field(default_factory=dict)
    index: GridIndex | None = None
    loaded_at: float = 0.0
    _codes_by_id: dict[int, str] = field(default_factory=dict, repr=False)
    _units_by_id: dict[int, str] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, sessions: sessionmaker[Session], classification: Classification) -> "Reference":
        ref = cls(classification=classification)
        ref.reload(sessions)
        return ref

    def reload(self, sessions: sessionmaker[Session]) -> None:
        with sessions() as session:
            rows = session.execute(select(Grid.id, Grid.code, Grid.geometry)).all()
            self.unit_ids = dict(session.execute(select(Unit.code, Unit.id)).all())
        self.grid_ids = {code: gid for gid, code, _ in rows}
        if rows:
            self.index = GridIndex(
                [code for _, code, _ in rows], [shape(json.loads(g)) for _, _, g in rows]
            )
        else:
            self.index = None
        self.loaded_at = time.monotonic()

    def grid_code(self, grid_id: int) -> str:
        if len(self._codes_by_id) != len(self.grid_ids):
            self._codes_by_id = {v: k for k, v in self.grid_ids.items()}
        return self._codes_by_id.get(grid_id, "")

    def unit_code(self, unit_id: int) -> str:
        if len(self._units_by_id) != len(self.unit_ids):
            self._units_by_id = {v: k for k, v in self.unit_ids.items()}
        return self._units_by_id.get(unit_id, "")

    def locate(self, lon: float, lat: float) -> str | None:
        return self.index.locate(lon, lat) if self.index is not None else None


def sync_classification(session: Session, classification: Classification) -> int:
    """Mirror the active scheme into SQL (for joins in queries); returns the row count."""
    session.execute(delete(ClassificationEntry).where(ClassificationEntry.scheme == classification.name))
    rows = [
        {
            "scheme": classification.name,
            "kind": e.kind.value,
            "major_code": e.major_code,
            "major_name": e.major_name,
            "minor_code": e.minor_code,
            "minor_name": e.minor_name,
            "extension": e.extension,
            "provenance": e.provenance,
        }
        for e in classification
    ]
    if rows:
        session.execute(insert(ClassificationEntry), rows)
    return len(rows)


def get_meta(session: Session, key: str) -> str | None:
    row = session.get(Meta, key)
    return row.value if row else None


def set_meta(session: Session, key: str, value: str) -> None:
    session.merge(Meta(key=key, value=value))


def region_names(session: Session) -> dict[str, str]:
    """code → name of every region (small: a city has at most a few thousand)."""
    return dict(session.execute(select(Region.code, Region.name)).all())
