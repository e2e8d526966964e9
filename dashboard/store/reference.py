"""Reference data an event is checked against: grids, units and the active classification.

Loaded once per process from SQL and reloaded when a code is missing (a grid imported after
the ingest started must not be dead-lettered for ever).
"""

from __future__ import annotations

import json
import time
import tomllib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shapely.geometry import shape
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from dashboard.rules.classification import Classification
from dashboard.rules.deadlines import Timing
from dashboard.rules.gridindex import GridIndex
from dashboard.settings import ConfigError, load_settings
from dashboard.store.models import ClassificationEntry, Grid, Meta, Region, Unit

if TYPE_CHECKING:
    from dashboard.settings import Settings


@dataclass
class Reference:
    """Codes known to this city, for validating and resolving case events."""

    classification: Classification
    grid_ids: dict[str, int] = field(default_factory=dict)
    unit_ids: dict[str, int] = field(default_factory=dict)
    index: GridIndex | None = None
    loaded_at: float = 0.0
    # Limits table, working calendar, grid area classes and due-soon ratio: what the casebook
    # needs to compute deadlines (dashboard.rules.deadlines). Loaded once, in load().
    timing: Timing | None = None
    # grid id → its district's region id (the hall an alert of the grid goes to; dashboard/store/alerts.py)
    grid_districts: dict[int, int] = field(default_factory=dict)
    _codes_by_id: dict[int, str] = field(default_factory=dict, repr=False)
    _units_by_id: dict[int, str] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, sessions: sessionmaker[Session], classification: Classification,
             settings: Settings | None = None) -> Reference:
        """Load codes from SQL, and the limits table and calendar from ``settings``.

        Without ``settings`` the deployment's settings are read (GRIDHALL_* environment).
        Raises LimitsError / ConfigError (one line naming the file or setting) when the
        limits table or the holiday file is unusable.
        """
        ref = cls(classification=classification)
        ref.timing = Timing.from_settings(settings if settings is not None else load_settings(), classification)
        ref.reload(sessions)
        return ref

    def reload(self, sessions: sessionmaker[Session]) -> None:
        with sessions() as session:
            rows = session.execute(select(Grid.id, Grid.code, Grid.geometry, Grid.area_class)).all()
            self.unit_ids = dict(session.execute(select(Unit.code, Unit.id)).all())
            regions = {r.id: (r.parent_id, r.level) for r in session.execute(
                select(Region.id, Region.parent_id, Region.level))}
            communities = dict(session.execute(select(Grid.id, Grid.community_id)).all())
        self.grid_districts = {}
        for gid, region in communities.items():
            while region is not None and region in regions and regions[region][1] != "district":
                region = regions[region][0]
            if region is not None and region in regions:
                self.grid_districts[gid] = region
        self.grid_ids = {code: gid for gid, code, _, _ in rows}
        if self.timing is not None:
            self.timing.area_classes = {code: area for _, code, _, area in rows if area}
        if rows:
            self.index = GridIndex(
                [code for _, code, _, _ in rows], [shape(json.loads(g)) for _, _, g, _ in rows]
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


def timing_for(settings: Settings | None = None, session: Session | None = None) -> Timing:
    """The deployment's timing (``Timing.from_settings``), with the grids' area classes when given a ``session``.

    Without ``settings`` the deployment's are read (GRIDHALL_* environment). Reference.load
    reads the area classes itself, with its grids.
    """
    timing = Timing.from_settings(settings if settings is not None else load_settings())
    if session is not None:
        timing.area_classes = {c: a for c, a in session.execute(select(Grid.code, Grid.area_class)) if a}
    return timing


@dataclass(frozen=True)
class RulesVersion:
    """A version of the rules (limits, calendar, classification) and when it became valid."""

    label: str  # its valid_from as written, or "current" (the settings themselves)
    valid_from: datetime | None
    overrides: dict[str, Any]  # settings fields it sets (paths resolved against the versions file)


_VERSION_KEYS = ("limits_file", "holiday_file", "working_periods", "classification", "classification_extension",
                 "due_soon_ratio")
_PATH_KEYS = ("limits_file", "holiday_file", "classification_extension")


def rules_versions(settings: Settings) -> list[RulesVersion]:
    """The versions of GRIDHALL_RULES_VERSIONS, oldest first (empty when unset).

    The file (TOML) lists ``[[version]]`` tables, each with ``valid_from`` (an ISO instant; a date or
    a time without offset is city time) and any of :data:`_VERSION_KEYS`; relative paths are
    relative to the file. A key a version leaves out is the current setting's. Raises ConfigError
    (one line naming the file) when it is unusable.
    """
    path = settings.rules_versions
    if path is None:
        return []
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        out = []
        for entry in data.get("version", []):
            raw = str(entry["valid_from"])
            valid_from = datetime.fromisoformat(raw)
            if valid_from.tzinfo is None:
                valid_from = valid_from.replace(tzinfo=settings.tz)
            unknown = set(entry) - {"valid_from", *_VERSION_KEYS}
            if unknown:
                raise ValueError(f"unknown key(s) {sorted(unknown)}")
            overrides = {k: entry[k] for k in _VERSION_KEYS if k in entry}
            for k in _PATH_KEYS:
                if k in overrides:
                    overrides[k] = (Path(path).parent / overrides[k]).resolve()
            out.append(RulesVersion(raw, valid_from.astimezone(UTC), overrides))
    except (OSError, ValueError, KeyError, TypeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"GRIDHALL_RULES_VERSIONS={path}: {exc}") from None
    return sorted(out, key=lambda v: v.valid_from or datetime.min.replace(tzinfo=UTC))


def rules_version_at(settings: Settings, at: datetime) -> RulesVersion:
    """The version valid at ``at``: the latest whose valid_from is ≤ ``at``; the current settings when none is."""
    valid = [v for v in rules_versions(settings) if v.valid_from is not None and v.valid_from <= at]
    return valid[-1] if valid else RulesVersion("current", None, {})


_TIMINGS: dict[str, Timing] = {}  # rules version (with the settings it was read with) → its timing
_TIMINGS_KEPT = 16
_AREAS: dict[str, tuple[tuple[Any, ...], dict[str, str]]] = {}


def timing_at(settings: Settings, at: datetime, session: Session | None = None) -> Timing:
    """:func:`timing_for` with the rules version valid at ``at`` (:func:`rules_version_at`).

    The limits, calendar and classification of a version are read once per process (a replay
    asks for them on every instant); the grids' area classes are read from ``session`` each time.
    """
    version = rules_version_at(settings, at)
    used = settings.model_copy(update=version.overrides) if version.overrides else settings
    key = used.model_dump_json()
    base = _TIMINGS.get(key)
    if base is None:
        base = Timing.from_settings(used)
        if len(_TIMINGS) >= _TIMINGS_KEPT:
            _TIMINGS.clear()
        _TIMINGS[key] = base
    timing = replace(base, area_classes={})
    if session is not None:
        # The grids' area classes, read again only when the grids changed (their count or highest id).
        mark = tuple(session.execute(select(func.count(Grid.id), func.max(Grid.id))).one())
        cached = _AREAS.get("grids")
        if cached is None or cached[0] != mark:
            cached = _AREAS["grids"] = (mark, {c: a for c, a in session.execute(
                select(Grid.code, Grid.area_class)) if a})
        timing.area_classes = cached[1]
    return timing


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
