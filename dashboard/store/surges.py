"""Surge alerts (突增预警) in the store: read the cases, run the detector, raise and end surges.

Only ``gridhall housekeeping`` calls :func:`evaluate` (one owner under its Redis lock, every
``GRIDHALL_SURGE_STEP_MINUTES``), so a surge is raised once however many web workers and
ingests run; the partial unique index ``uq_surges_open`` makes a second open row of a place ×
group impossible even so. A new surge gets an alert (reason ``surge``) through
:func:`dashboard.store.alerts.raise_alerts`, so the halls see, escalate and acknowledge it like
any other; its case is the latest case of the surge. The method: ``dashboard/rules/surges.py``
and docs/foresight.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session, aliased

from dashboard.rules.alerts import AlertReason, AlertRules, AlertStep
from dashboard.rules.classgroups import OTHER_EVENT_GROUP, class_group
from dashboard.rules.classification import Classification
from dashboard.rules.surges import (
    Arrival,
    Baseline,
    Key,
    PlaceLevel,
    SurgeFinding,
    SurgeSettings,
    find_surges,
    keys_of,
    surge_text,
)
from dashboard.store.alerts import AlertCandidate, note_notices, raise_alerts
from dashboard.store.hallcontrol import NOTICES_KEY
from dashboard.store.models import Alert, Case, Grid, Region
from dashboard.store.models import Surge as SurgeRow
from dashboard.store.scope import Scope

SURGE_NOTICE = "surge"  # the control notices' kind of a surge raised or ended (the walls list them)


def note_surge(session: Session, level: PlaceLevel, place: str, group: str, step: str) -> None:
    """Note a control notice for a surge that started or ended, sent after the commit (the walls
    read their surges again at once, whether or not an alert went with it)."""
    notices: list[tuple[str, str]] = session.info.setdefault(NOTICES_KEY, [])
    notices.append((SURGE_NOTICE, f"{level.value}:{place}:{group}:{step}"))


def arrivals(session: Session, classification: Classification, start: datetime, end: datetime) -> list[Arrival]:
    """The cases reported in [start, end) as the detector sees them, by time."""
    community, street = aliased(Region), aliased(Region)
    rows = session.execute(
        select(Case.case_id, Case.reported_at, Case.kind, Case.class_code, Grid.code, street.code)
        .outerjoin(Grid, Grid.id == Case.grid_id)
        .outerjoin(community, community.id == Grid.community_id)
        .outerjoin(street, street.id == community.parent_id)
        .where(Case.reported_at >= start, Case.reported_at < end)
        .order_by(Case.reported_at))
    groups: dict[tuple[str | None, str | None], str] = {}
    out = []
    for case_id, at, kind, code, grid, street_code in rows:
        if at is None:  # not reachable through the WHERE; for the type checker
            continue
        group = groups.get((kind, code))
        if group is None:
            entry = classification.get(kind, code) if kind and code else None
            group = groups[(kind, code)] = class_group(entry) if entry is not None else OTHER_EVENT_GROUP
        out.append(Arrival(at, grid or "", street_code or "", group, case_id))
    return out


def past_surges(session: Session, since: datetime) -> list[tuple[Key, datetime, datetime]]:
    """Surges since ``since`` (key, from, to): what a baseline leaves out."""
    rows = session.execute(select(SurgeRow.level, SurgeRow.place, SurgeRow.class_group, SurgeRow.started_at,
                                  SurgeRow.last_seen_at).where(SurgeRow.last_seen_at >= since))
    return [((PlaceLevel(level), place, group), lo, hi) for level, place, group, lo, hi in rows]


@dataclass
class SurgeWatch:
    """The evaluator of one housekeeping process: settings, and the day's baseline (learnt once a day)."""

    settings: SurgeSettings
    classification: Classification
    rules: AlertRules
    tz: ZoneInfo
    _baseline: tuple[date, Baseline] | None = field(default=None, repr=False)

    def baseline(self, session: Session, now: datetime) -> Baseline:
        """The baseline of ``now``'s local day: learnt from the ``history_weeks`` before its midnight."""
        day = now.astimezone(self.tz).date()
        if self._baseline is None or self._baseline[0] != day:
            midnight = datetime.combine(day, datetime.min.time(), self.tz)
            since = midnight - timedelta(weeks=self.settings.history_weeks)
            base = Baseline.learn(arrivals(session, self.classification, since, midnight), since, midnight,
                                  self.tz, self.settings, past_surges(session, since))
            self._baseline = (day, base)
        return self._baseline[1]

    def evaluate(self, session: Session, now: datetime) -> EvaluationResult:
        """One evaluation at ``now`` in the caller's transaction: raise new surges, follow and end open ones."""
        s = self.settings
        recent = arrivals(session, self.classification, now - s.window, now)
        findings = find_surges(self.baseline(session, now), recent, now)
        open_rows = {(PlaceLevel(r.level), r.place, r.class_group): r
                     for r in session.scalars(select(SurgeRow).where(SurgeRow.ended_at.is_(None)))}
        result = EvaluationResult(len(findings))
        districts = _grid_districts(session, {a.grid for a in recent if a.grid})
        taken: set[str] = set()
        for f in findings:
            row = open_rows.get(f.key)
            if row is not None:
                row.last_seen_at = now
                if f.chance < row.chance:
                    row.observed, row.expected, row.chance = f.observed, f.expected, f.chance
                    row.window_minutes = round((f.end - f.start).total_seconds() / 60)
                continue
            alert_id = self._raise(session, f, recent, districts, taken, now)
            session.add(SurgeRow(level=f.level.value, place=f.place, class_group=f.group, started_at=f.start,
                                 last_seen_at=now, observed=f.observed, expected=f.expected,
                                 window_minutes=round((f.end - f.start).total_seconds() / 60), chance=f.chance,
                                 alert_id=alert_id))
            note_surge(session, f.level, f.place, f.group, "raised")
            result.raised.append(f)
        quiet = timedelta(minutes=s.quiet_minutes)
        for row in open_rows.values():
            if now - row.last_seen_at >= quiet:
                row.ended_at = now
                result.ended += 1
                note_surge(session, PlaceLevel(row.level), row.place, row.class_group, "ended")
                if row.alert_id is not None:
                    cleared = list(session.execute(
                        update(Alert).where(Alert.id == row.alert_id, Alert.acknowledged_at.is_(None),
                                            Alert.cleared_at.is_(None)).values(cleared_at=now)
                        .returning(Alert.id)).scalars())
                    note_notices(session, cleared, AlertStep.CLEARED)
        session.flush()
        return result

    def _raise(self, session: Session, f: SurgeFinding, recent: Iterable[Arrival],
               districts: dict[str, tuple[int, int]],
               taken: set[str], now: datetime) -> int | None:
        """The surge's alert, on its latest case that has no surge alert yet; its id (None: no case free)."""
        mine = [a for a in recent if f.start <= a.at < f.end and f.key in keys_of(a) and a.case_id not in taken]
        for a in sorted(mine, key=lambda a: a.at, reverse=True):
            grid_id, district = districts.get(a.grid, (None, None))
            ids = raise_alerts(session, [AlertCandidate(a.case_id, AlertReason.SURGE, None, grid_id)], self.rules,
                               {grid_id: district} if grid_id is not None and district is not None else {}, now)
            taken.add(a.case_id)
            if ids:
                note_notices(session, ids, AlertStep.RAISED)
                return ids[0]
        return None


@dataclass
class EvaluationResult:
    """What one evaluation did."""

    findings: int
    raised: list[SurgeFinding] = field(default_factory=list)
    ended: int = 0

    def summary(self) -> str:
        said = "; ".join(f"{f.level.label} {f.place} {f.group} {surge_text(f.observed, f.expected)}"
                         for f in self.raised)
        return (f"{self.findings} places surging, {len(self.raised)} new, {self.ended} ended"
                + (f": {said}" if said else ""))


def _grid_districts(session: Session, codes: set[str]) -> dict[str, tuple[int, int]]:
    """grid code → (grid id, its district's region id), for the grids given."""
    if not codes:
        return {}
    community, street = aliased(Region), aliased(Region)
    rows = session.execute(
        select(Grid.code, Grid.id, street.parent_id)
        .join(community, community.id == Grid.community_id)
        .join(street, street.id == community.parent_id)
        .where(Grid.code.in_(sorted(codes))))
    return {code: (gid, district) for code, gid, district in rows if district is not None}


@dataclass(frozen=True)
class SurgeView:
    """A surge as a wall or /explore lists it."""

    id: int
    level: PlaceLevel
    place: str  # grid code or street code
    place_name: str  # the street's name, or the grid's code
    group: str
    started_at: datetime
    last_seen_at: datetime
    ended_at: datetime | None
    observed: int
    expected: float
    alert_id: int | None

    @property
    def text(self) -> str:
        return surge_text(self.observed, self.expected)


def list_surges(session: Session, since: datetime, *, open_only: bool = False) -> list[SurgeView]:
    """Surges that lasted into [since, now] (open ones only with ``open_only``), newest first."""
    condition = SurgeRow.ended_at.is_(None) if open_only else SurgeRow.last_seen_at >= since
    rows = list(session.scalars(select(SurgeRow).where(condition).order_by(SurgeRow.started_at.desc())))
    wanted = sorted({r.place for r in rows if r.level == PlaceLevel.STREET.value})
    streets = {code: name for code, name in session.execute(
        select(Region.code, Region.name).where(Region.code.in_(wanted)))} if wanted else {}
    return [SurgeView(r.id, PlaceLevel(r.level), r.place, streets.get(r.place, r.place), r.class_group, r.started_at,
                      r.last_seen_at, r.ended_at, r.observed, r.expected, r.alert_id) for r in rows]


@dataclass(frozen=True)
class WallSurge:
    """A surge under way as a wall lists and rings it (layouts/assets/wallsurges.js)."""

    id: int
    level: PlaceLevel
    place: str  # grid code or street code: what the ring is drawn around
    street: str  # the street's name (a grid's street)
    community: str  # a grid's community ("" for a street)
    group: str
    observed: int
    expected: float
    started_at: datetime
    last_seen_at: datetime

    @property
    def text(self) -> str:
        return surge_text(self.observed, self.expected)


def wall_surges(session: Session, scope: Scope, now: datetime, quiet_minutes: int) -> list[WallSurge]:
    """The surges a wall of ``scope`` shows at ``now``: open, and not quiet for ``quiet_minutes``
    (a surge housekeeping has not ended yet, e.g. because it stopped, expires on the wall all the
    same), strongest first (observed ÷ usual), then newest.

    Scope as the rest of the wall: a grid's surge on the walls whose region holds the grid; a
    street's on the city's, its district's and its own wall — not on a community's, whose wall
    shows nothing counted over cases outside it.
    """
    cutoff = now - timedelta(minutes=quiet_minutes)
    rows = list(session.scalars(select(SurgeRow).where(SurgeRow.ended_at.is_(None),
                                                       SurgeRow.last_seen_at > cutoff)))
    mine = [r for r in rows if scope.is_city or (
        r.place in scope.grid_codes if r.level == PlaceLevel.GRID.value
        else r.place in scope.region_codes and scope.level in ("district", "street"))]
    if not mine:
        return []
    community, street = aliased(Region), aliased(Region)
    grids = sorted({r.place for r in mine if r.level == PlaceLevel.GRID.value})
    grid_names = {code: (s or "", c or "") for code, c, s in session.execute(
        select(Grid.code, community.name, street.name)
        .join(community, community.id == Grid.community_id)
        .outerjoin(street, street.id == community.parent_id)
        .where(Grid.code.in_(grids)))} if grids else {}
    streets = sorted({r.place for r in mine if r.level == PlaceLevel.STREET.value})
    street_names = {code: name for code, name in session.execute(
        select(Region.code, Region.name).where(Region.code.in_(streets)))} if streets else {}
    out = []
    for r in mine:
        level = PlaceLevel(r.level)
        names = (grid_names.get(r.place, ("", "")) if level is PlaceLevel.GRID
                 else (street_names.get(r.place, r.place), ""))
        out.append(WallSurge(r.id, level, r.place, names[0], names[1], r.class_group, r.observed, r.expected,
                             r.started_at, r.last_seen_at))
    out.sort(key=lambda w: (-w.observed / max(w.expected, 0.05), -w.started_at.timestamp(), w.id))
    return out
