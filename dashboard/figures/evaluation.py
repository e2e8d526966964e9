"""综合考评: regions, units and positions scored on the stored case history of a period.

Domain only (no Dash/Flask). One entry point for the wall, /view, /explore, the API and the
monthly report, so they all show the same figures::

    evaluate(session, scope, ObjectKind.STREET, Period.month(2026, 10, tz), weights)

Every figure is a SQL aggregate (``COUNT … GROUP BY``) over ``cases`` (its stored stage,
timestamps, counters and on-time flags, which the lifecycle fold keeps) and, for positions,
over ``case_events`` (who acted: ``actor`` joined to ``people.code``), filtered by the region
scope (:func:`dashboard.store.scope.case_condition`). Python only adds up per-grid rows into regions
and scores the rows. The rules, in short (docs/evaluation.md has them all):

- **Cohort:** the "rate" indicators look at the cases **filed (立案) in the period** and at
  what had happened to them **by its end** (``min(end, now)``), as the stored timestamps say.
- **Events** (上报, 核实, 派遣, …) count when they occurred in the period.
- **Ratings** (社会评价) count when the call-back was given in the period.
- A ratio with a zero denominator is None (n/a); an object whose sample is below
  ``min_cases`` is marked 样本不足 and not ranked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, not_, or_, select
from sqlalchemy.orm import Session

from dashboard.figures.scoped import tally
from dashboard.rules.clock import utcnow
from dashboard.rules.evalspec import INDICATORS, INSUFFICIENT, SAMPLE_OF, Weights, grade, load_weights
from dashboard.rules.lifecycle import EventType, Stage
from dashboard.rules.vocab import PUBLIC_SOURCES, LabelledEnum, Role
from dashboard.store.archive import require_online
from dashboard.store.models import Case, CaseEvent, Grid, Person, Region, Unit, person_grids
from dashboard.store.scope import Scope, case_condition, grid_condition, region_condition

__all__ = ["INSUFFICIENT", "Evaluation", "EvaluationRow", "ObjectKind", "Period", "RANKED_BELOW", "evaluate"]


class ObjectKind(LabelledEnum):
    """What is evaluated: the four region levels, units, and the four positions (岗位)."""

    DISTRICT = "district", "区"
    STREET = "street", "街道"
    COMMUNITY = "community", "社区"
    GRID = "grid", "网格"
    UNIT = "unit", "部门/处置单位"
    SUPERVISOR = "supervisor", "监督员"
    ACCEPTOR = "acceptor", "受理员"
    SHIFT_LEAD = "shift_lead", "值班长"
    DISPATCHER = "dispatcher", "派遣员"

    @property
    def group(self) -> str:
        """The weight group (``evalspec.GROUPS``): the region levels share ``region``."""
        return "region" if self in _REGION_KINDS else self.value


_REGION_KINDS = frozenset({ObjectKind.DISTRICT, ObjectKind.STREET, ObjectKind.COMMUNITY, ObjectKind.GRID})
# What a scope's ranking ranks: the level below it (a community's, its grids). /view and the
# wall's ranking panel.
RANKED_BELOW: dict[str, ObjectKind] = {"city": ObjectKind.DISTRICT, "district": ObjectKind.STREET,
                                       "street": ObjectKind.COMMUNITY, "community": ObjectKind.GRID}
MAX_PERIOD_DAYS = 366  # the longest evaluation period: one (leap) year (docs/evaluation.md)


@dataclass(frozen=True)
class Period:
    """A half-open interval of local calendar days [first, end) in the city's zone, as UTC.

    ``start``/``end`` are aware UTC instants of local midnights (DST-safe); ``label`` is
    ``2026-10`` for a calendar month, else ``2026-10-01..2026-10-15`` (last day inclusive).
    At most :data:`MAX_PERIOD_DAYS` days (ValueError beyond: the API answers 400).
    """

    first: date
    end_day: date  # exclusive
    start: datetime
    end: datetime
    label: str

    @classmethod
    def days(cls, first: date, end_day: date, tz: tzinfo) -> Period:
        """Local days ``first`` … ``end_day`` − 1."""
        if end_day <= first:
            raise ValueError(f"empty period: {first} .. {end_day}")
        if (end_day - first).days > MAX_PERIOD_DAYS:
            # One evaluation scans every case of the period: a century would tie a worker up.
            raise ValueError(f"period too long: {(end_day - first).days} days, at most {MAX_PERIOD_DAYS}")
        start = datetime.combine(first, time.min, tzinfo=tz).astimezone(UTC)
        end = datetime.combine(end_day, time.min, tzinfo=tz).astimezone(UTC)
        last = date.fromordinal(end_day.toordinal() - 1)
        is_month = first.day == 1 and end_day == _next_month(first)
        label = f"{first:%Y-%m}" if is_month else f"{first.isoformat()}..{last.isoformat()}"
        return cls(first, end_day, start, end, label)

    @classmethod
    def month(cls, year: int, month: int, tz: tzinfo) -> Period:
        first = date(year, month, 1)
        return cls.days(first, _next_month(first), tz)

    @classmethod
    def parse(cls, text: str, tz: tzinfo) -> Period:
        """``2026-10`` (a month) or ``2026-10-01..2026-10-15`` (days, the last inclusive)."""
        text = text.strip()
        if m := re.fullmatch(r"(\d{4})-(\d{2})", text):
            return cls.month(int(m[1]), int(m[2]), tz)
        if m := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", text):
            first, last = date.fromisoformat(m[1]), date.fromisoformat(m[2])
            return cls.days(first, date.fromordinal(last.toordinal() + 1), tz)
        raise ValueError(f"period must be YYYY-MM or YYYY-MM-DD..YYYY-MM-DD, not {text!r}")


def _next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


@dataclass(frozen=True)
class EvaluationRow:
    """One evaluated object.

    - ``code``/``name``: region or grid code, unit code, or staff code, and its name;
    - ``indicators``: key → value (``evalspec.INDICATORS[group]`` gives the labels and the
      measure: counts are ints, rates are shares 0–1, None is n/a — a zero denominator);
    - ``points``: key → 0–100 points of each composite term (None: n/a, dropped);
    - ``composite``: 综合指标值 0–100 (2 decimals), None when no weighted term has a value or
      the sample is 0 (an object with no cases is not judged: shown as —);
    - ``grade``: A–E, ``rank``: 1 = best (ties share a rank), both None when the sample is
      below ``min_cases`` (``sample_ok`` False, shown as 样本不足) or there is no composite;
    - ``sample``: the count the sample size is judged on (``evalspec.SAMPLE_OF``).
    """

    code: str
    name: str
    indicators: Mapping[str, float | int | None]
    points: Mapping[str, float | None]
    composite: float | None
    grade: str | None
    rank: int | None
    sample: int
    sample_ok: bool


@dataclass(frozen=True)
class Evaluation:
    """The ranking of one object kind in one scope and period.

    ``rows``: ranked objects by rank (then code), then the unranked ones by code.
    ``as_of``: the instant outcomes were judged at, ``min(period.end, now)``.
    ``weights_source``: the weights file used.
    """

    kind: ObjectKind
    period: Period
    scope_code: str | None
    scope_name: str
    as_of: datetime
    weights_source: str
    min_cases: int
    rows: tuple[EvaluationRow, ...] = field(default=())

    @property
    def indicator_keys(self) -> tuple[str, ...]:
        return tuple(i.key for i in INDICATORS[self.kind.group])

    def row(self, code: str) -> EvaluationRow | None:
        return next((r for r in self.rows if r.code == code), None)


# -- the conditions every kind shares (docs/evaluation.md §1) -----------------------------------
@dataclass(frozen=True)
class _Window:
    start: datetime
    end: datetime  # min(period end, now)

    def during(self, column: Any) -> ColumnElement[bool]:
        return and_(column >= self.start, column < self.end)

    def before_end(self, column: Any) -> ColumnElement[bool]:
        return and_(column.is_not(None), column < self.end)

    @property
    def active(self) -> ColumnElement[bool]:
        """The case has an event at or after the period's start: true of every case that an event of
        the period (``problem IS NULL``) belongs to, since ``last_event_at`` is the time of the case's
        latest applied event and the fold applies events in time order. Redundant for the result; it
        lets the planner read the cases of the period through ``ix_cases_last_event_at`` (0012; covering
        on PostgreSQL since 0016: every column of ``cases`` these statements read is in it, see
        ``ACTIVE_COVERS`` in dashboard/store/models.py) instead of every case of years of history
        (docs/history.md)."""
        return Case.last_event_at >= self.start

    @property
    def filed(self) -> ColumnElement[bool]:
        """立案 in the period: the cohort of every rate."""
        return self.during(Case.filed_at)

    @property
    def voided(self) -> ColumnElement[bool]:
        """作废 by the end (closed_at stamps 作废 too)."""
        return and_(Case.stage == Stage.VOIDED.value, self.before_end(Case.closed_at))

    @property
    def suspended(self) -> ColumnElement[bool]:
        """挂账 at the end: still 挂账, since before the end (outside the time limit)."""
        return and_(Case.stage == Stage.SUSPENDED.value, self.before_end(Case.paused_at))

    @property
    def due(self) -> ColumnElement[bool]:
        """应结案: filed in the period, neither 作废 nor 挂账 at its end."""
        return and_(self.filed, not_(or_(self.voided, self.suspended)))

    @property
    def closed(self) -> ColumnElement[bool]:
        return and_(Case.stage == Stage.CLOSED.value, self.before_end(Case.closed_at))

    @property
    def untimed(self) -> ColumnElement[bool]:
        """处置 under a 不限时 limit (docs/lifecycle.md): dispatched, with no 按时处置 verdict, and
        either its 处置 clock runs with no deadline or the 处置 is done. Left out of 按期 rates."""
        return and_(Case.dispatched_at.is_not(None), Case.on_time_handle.is_(None),
                    or_(and_(Case.clock_stage == "handle", Case.deadline_at.is_(None)),
                        Case.handled_at.is_not(None)))

    @property
    def due_timed(self) -> ColumnElement[bool]:
        """应结案 with a 处置 time limit: the denominator of the 按期/按时 rates."""
        return and_(self.due, not_(self.untimed))

    @property
    def closed_on_time(self) -> ColumnElement[bool]:
        """按期结案: closed, and no clock after 立案 (派遣, 处置, 核查, 结案) finished late."""
        flags = (Case.on_time_dispatch, Case.on_time_handle, Case.on_time_check, Case.on_time_close)
        return and_(self.closed, not_(self.untimed), *(flag.is_not(False) for flag in flags))


def _window(period: Period, now: datetime | None) -> _Window:
    now = now or utcnow()
    end = min(period.end, now)
    return _Window(period.start, max(end, period.start))


def _ratings(session: Session, scope: Scope, w: _Window, key: Any) -> dict[Any, tuple[int, int, int]]:
    """key → (回访数, 满意及基本满意数, sum of scores) of the call-backs given in the period."""
    rows = session.execute(
        select(key, func.count(), tally(Case.satisfaction >= 3), func.sum(Case.satisfaction))
        .where(w.during(Case.rated_at), Case.satisfaction.is_not(None), case_condition(scope))
        .group_by(key)
    ).all()
    return {r[0]: (r[1], r[2], int(r[3] or 0)) for r in rows}


def _satisfaction(rated: int, satisfied: int, total: int) -> dict[str, float | int | None]:
    return {
        "rated": rated,
        "satisfied": satisfied,
        "satisfaction_rate": _ratio(satisfied, rated),
        # the 1–5 mean mapped onto 0–100: 1 → 0, 3 → 50, 5 → 100
        "satisfaction": None if rated == 0 else 100.0 * (total - rated) / (4 * rated),
    }


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


# -- 区域 ---------------------------------------------------------------------------------------
_GRID_FIGURES = ("filed", "public_filed", "due_close", "closed", "closed_on_time", "due_timed")


def grid_figures(session: Session, scope: Scope, w: _Window) -> dict[int, tuple[int, ...]]:
    """grid id → (立案数, 监督举报核实数, 应结案数, 结案数, 按期结案数, 应结案数 with a 处置 limit):
    one GROUP BY."""
    public = [s.value for s in PUBLIC_SOURCES]
    rows = session.execute(
        select(Case.grid_id, func.count(), tally(Case.source.in_(public)), tally(w.due), tally(w.closed),
               tally(w.closed_on_time), tally(w.due_timed))
        .where(w.filed, Case.grid_id.is_not(None), case_condition(scope))
        .group_by(Case.grid_id)
    ).all()
    return {r[0]: tuple(r[1:]) for r in rows}


def _regions(session: Session, scope: Scope, kind: ObjectKind, period: Period, w: _Window,
             weights: Weights) -> list[EvaluationRow]:
    figures = grid_figures(session, scope, w)
    ratings = _ratings(session, scope, w, Case.grid_id)
    # Grids in force at some time in the period (valid_to is the last valid day).
    grids = session.execute(
        select(Grid.id, Grid.code, Grid.community_id, Grid.area_m2)
        .where(grid_condition(scope), or_(Grid.valid_from.is_(None), Grid.valid_from < period.end_day),
               or_(Grid.valid_to.is_(None), Grid.valid_to >= period.first))
    ).all()
    parent = dict(session.execute(select(Region.id, Region.parent_id)).all())
    if kind is ObjectKind.GRID:
        objects = {g.id: (g.code, g.code) for g in grids}
        owner = {g.id: g.id for g in grids}
    else:
        objects = {r.id: (r.code, r.name) for r in session.execute(
            select(Region.id, Region.code, Region.name).where(Region.level == kind.value, region_condition(scope)))}
        up = {ObjectKind.COMMUNITY: 0, ObjectKind.STREET: 1, ObjectKind.DISTRICT: 2}[kind]
        owner = {}
        for g in grids:
            region = g.community_id
            for _ in range(up):
                region = parent.get(region)
            owner[g.id] = region
    # Add up the grids' figures into their region (sums first, ratios after).
    n = len(_GRID_FIGURES)  # then 3 rating sums, the grid count and the area
    sums: dict[int, list[float]] = {oid: [0.0] * (n + 5) for oid in objects}
    area = {g.id: g.area_m2 for g in grids}
    for gid, oid in owner.items():
        acc = sums.get(oid)
        if acc is None:
            continue
        for i, value in enumerate(figures.get(gid, ())):
            acc[i] += value
        rated = ratings.get(gid)
        if rated:
            for i, value in enumerate(rated):
                acc[n + i] += value
        acc[n + 3] += 1
        acc[n + 4] += area[gid] or 0.0
    rows = []
    for oid, (code, name) in objects.items():
        acc = sums[oid]
        filed, public_filed, due, closed, on_time, due_timed = (int(v) for v in acc[:n])
        n_grids, km2 = int(acc[n + 3]), acc[n + 4] / 1e6
        values: dict[str, float | int | None] = {
            "filed": filed, "public_filed": public_filed, "report_rate": _ratio(public_filed, filed),
            "due_close": due, "closed": closed, "close_rate": _ratio(closed, due),
            "closed_on_time": on_time, "on_time_close_rate": _ratio(on_time, due_timed),
            "grids": n_grids, "area_km2": km2, "incidence": filed / km2 if km2 > 0 else None,
            "filed_per_grid": filed / n_grids if n_grids else None,
            **_satisfaction(int(acc[n]), int(acc[n + 1]), int(acc[n + 2])),
        }
        rows.append((code, name, values))
    return _score(kind, rows, weights)


# -- 部门 / 处置单位 ------------------------------------------------------------------------------
def _units(session: Session, scope: Scope, w: _Window, weights: Weights) -> list[EvaluationRow]:
    handled = or_(w.before_end(Case.handled_at), w.closed)
    on_time, late = Case.on_time_handle.is_(True), Case.on_time_handle.is_(False)
    cohort = and_(w.filed, Case.unit_id.is_not(None), Case.dispatched_at.is_not(None))
    figures = {r[0]: tuple(r[1:]) for r in session.execute(
        select(Case.unit_id, tally(w.due), tally(and_(w.due, handled)), tally(and_(w.due, handled, on_time)),
               tally(and_(w.due, handled, late)), tally(w.closed), tally(and_(w.due, Case.rework_count > 0)),
               tally(and_(w.due, Case.extension_count > 0)), tally(w.suspended), tally(w.due_timed))
        .where(cohort, case_condition(scope)).group_by(Case.unit_id)
    )}
    # 回退 is the returning unit's (the case has moved on): the actor of the returned event.
    returned = dict(session.execute(
        select(Unit.id, func.count(func.distinct(CaseEvent.case_id)))
        .select_from(CaseEvent).join(Case, Case.case_id == CaseEvent.case_id).join(Unit, Unit.code == CaseEvent.actor)
        .where(CaseEvent.type == EventType.RETURNED.value, w.during(CaseEvent.occurred_at),
               CaseEvent.problem.is_(None), w.active, case_condition(scope))
        .group_by(Unit.id)
    ).all())
    ratings = _ratings(session, scope, w, Case.unit_id)
    rows = []
    # The scope's own units, and any other unit that worked on the scope's cases.
    for u in session.execute(select(Unit.id, Unit.code, Unit.name, Unit.region_id)):
        seen = u.id in figures or u.id in returned or u.id in ratings
        if not (scope.is_city or seen or u.region_id in scope.region_ids):
            continue
        due, handled_n, on_time_n, late_n, closed, reworked, extended, suspended, timed = figures.get(u.id, (0,) * 9)
        back = returned.get(u.id, 0)
        values: dict[str, float | int | None] = {
            "assigned": due, "handled": handled_n, "handled_on_time": on_time_n,
            "on_time_handle_rate": _ratio(on_time_n, timed), "handled_late": late_n,
            "closed": closed, "close_rate": _ratio(closed, due),
            "reworked": reworked, "rework_rate": _ratio(reworked, due),
            "extended": extended, "extension_rate": _ratio(extended, due),
            "returned": back, "return_rate": _ratio(back, due + back),
            "suspended": suspended,
            **_satisfaction(*ratings.get(u.id, (0, 0, 0))),
        }
        rows.append((u.code, u.name, values))
    return _score(ObjectKind.UNIT, rows, weights)


# -- 岗位 ---------------------------------------------------------------------------------------
def _acted(w: _Window, scope: Scope, role: Role, types: Iterable[EventType]) -> Any:
    """case_events of ``types`` in the period by staff of ``role``, joined to their cases."""
    return (
        select().select_from(CaseEvent)
        .join(Case, Case.case_id == CaseEvent.case_id)
        .join(Person, Person.code == CaseEvent.actor)
        .where(CaseEvent.type.in_([t.value for t in types]), w.during(CaseEvent.occurred_at),
               CaseEvent.problem.is_(None), w.active, Person.role == role.value, case_condition(scope))
        .group_by(Person.id)
    )


def _cases_where(condition: ColumnElement[bool]) -> Any:
    """COUNT(DISTINCT case) of the rows meeting ``condition`` (one case acted on twice counts once)."""
    return func.count(func.distinct(case((condition, Case.id))))


def _is(*types: EventType) -> ColumnElement[bool]:
    return CaseEvent.type.in_([t.value for t in types])


def _supervisors(session: Session, scope: Scope, w: _Window) -> dict[int, dict[str, int]]:
    rep, ver, chk = _is(EventType.REPORTED), _is(EventType.VERIFIED), _is(EventType.CHECKED_OK, EventType.REWORK)
    valid = and_(or_(w.before_end(Case.filed_at), w.before_end(Case.handled_at)), not_(w.voided))
    stmt = _acted(w, scope, Role.SUPERVISOR, (EventType.REPORTED, EventType.VERIFIED, EventType.CHECKED_OK,
                                              EventType.REWORK)).add_columns(
        Person.id, _cases_where(rep), _cases_where(and_(rep, valid)), _cases_where(ver),
        _cases_where(and_(ver, Case.on_time_verify.is_(True))), _cases_where(chk),
        _cases_where(and_(chk, Case.on_time_check.is_(True))))
    keys = ("reports", "valid_reports", "to_verify", "verified_on_time", "to_check", "checked_on_time")
    out = {r[0]: dict(zip(keys, r[1:], strict=False)) for r in session.execute(stmt)}
    # 漏报: public reports filed in the supervisor's grids (every supervisor of a shared grid).
    figures = grid_figures(session, scope, w)
    for pid, gid in session.execute(
        select(person_grids.c.person_id, person_grids.c.grid_id).join(Person, Person.id == person_grids.c.person_id)
        .where(Person.role == Role.SUPERVISOR.value)
    ):
        f = figures.get(gid)
        if f:
            acc = out.setdefault(pid, {})
            acc["grid_filed"] = acc.get("grid_filed", 0) + f[0]
            acc["missed"] = acc.get("missed", 0) + f[1]
    return out


def _supervisor_values(f: Mapping[str, int]) -> dict[str, float | int | None]:
    g = {k: f.get(k, 0) for k in ("reports", "valid_reports", "to_verify", "verified_on_time", "to_check",
                                  "checked_on_time", "grid_filed", "missed")}
    return {**g, "valid_rate": _ratio(g["valid_reports"], g["reports"]),
            "on_time_verify_rate": _ratio(g["verified_on_time"], g["to_verify"]),
            "on_time_check_rate": _ratio(g["checked_on_time"], g["to_check"]),
            "missed_rate": _ratio(g["missed"], g["grid_filed"])}


def _acceptors(session: Session, scope: Scope, w: _Window) -> dict[int, dict[str, int]]:
    rep = _is(EventType.REPORTED)
    stmt = _acted(w, scope, Role.ACCEPTOR, (EventType.REPORTED, EventType.RATED)).add_columns(
        Person.id, _cases_where(rep), _cases_where(and_(rep, Case.on_time_verify.is_not(None))),
        _cases_where(and_(rep, Case.on_time_verify.is_(True))),
        _cases_where(and_(rep, Case.on_time_check.is_not(None))),
        _cases_where(and_(rep, Case.on_time_check.is_(True))), _cases_where(_is(EventType.RATED)))
    keys = ("accepted", "to_verify", "verified_on_time", "to_check", "checked_on_time", "callbacks")
    return {r[0]: dict(zip(keys, r[1:], strict=False)) for r in session.execute(stmt)}


def _acceptor_values(f: Mapping[str, int]) -> dict[str, float | int | None]:
    g = {k: f.get(k, 0) for k in ("accepted", "to_verify", "verified_on_time", "to_check", "checked_on_time",
                                  "callbacks")}
    return {**g, "verify_dispatch_rate": _ratio(g["verified_on_time"], g["to_verify"]),
            "check_dispatch_rate": _ratio(g["checked_on_time"], g["to_check"])}


def _shift_leads(session: Session, scope: Scope, w: _Window) -> dict[int, dict[str, int]]:
    filed, closed = _is(EventType.FILED), _is(EventType.CLOSED)
    stmt = _acted(w, scope, Role.SHIFT_LEAD, (EventType.FILED, EventType.CLOSED)).add_columns(
        Person.id, _cases_where(filed), _cases_where(and_(filed, Case.on_time_file.is_(True))),
        _cases_where(and_(filed, w.voided)), _cases_where(closed),
        _cases_where(and_(closed, Case.on_time_close.is_(True))))
    keys = ("filed", "filed_on_time", "voided", "closed", "closed_on_time")
    return {r[0]: dict(zip(keys, r[1:], strict=False)) for r in session.execute(stmt)}


def _shift_lead_values(f: Mapping[str, int]) -> dict[str, float | int | None]:
    g = {k: f.get(k, 0) for k in ("filed", "filed_on_time", "voided", "closed", "closed_on_time")}
    return {"filed": g["filed"], "filed_on_time": g["filed_on_time"],
            "on_time_file_rate": _ratio(g["filed_on_time"], g["filed"]), "voided": g["voided"],
            "accurate_file_rate": _ratio(g["filed"] - g["voided"], g["filed"]),
            "closed": g["closed"], "closed_on_time": g["closed_on_time"],
            "on_time_close_rate": _ratio(g["closed_on_time"], g["closed"])}


def _dispatchers(session: Session, scope: Scope, w: _Window) -> dict[int, dict[str, int]]:
    # Each 派遣 in the period, and whether the case's next 派遣/回退 event in the period is a
    # 回退 (the unit sent it back: a wrong dispatch). "dispatched" < "returned" as text, which
    # is also their lifecycle order at equal times.
    moves = (
        select(CaseEvent.case_id, CaseEvent.actor, CaseEvent.type,
               func.lead(CaseEvent.type).over(partition_by=CaseEvent.case_id,
                                              order_by=(CaseEvent.occurred_at, CaseEvent.type)).label("next"))
        .where(_is(EventType.DISPATCHED, EventType.RETURNED), w.during(CaseEvent.occurred_at),
               CaseEvent.problem.is_(None))
        .subquery()
    )
    stmt = (
        select(Person.id, func.count(), tally(Case.on_time_dispatch.is_(True)),
               tally(moves.c.next == EventType.RETURNED.value))
        .select_from(moves).join(Case, Case.case_id == moves.c.case_id).join(Person, Person.code == moves.c.actor)
        .where(moves.c.type == EventType.DISPATCHED.value, Person.role == Role.DISPATCHER.value, w.active,
               case_condition(scope))
        .group_by(Person.id)
    )
    keys = ("dispatched", "dispatched_on_time", "returned")
    return {r[0]: dict(zip(keys, r[1:], strict=False)) for r in session.execute(stmt)}


def _dispatcher_values(f: Mapping[str, int]) -> dict[str, float | int | None]:
    g = {k: f.get(k, 0) for k in ("dispatched", "dispatched_on_time", "returned")}
    return {**g, "on_time_dispatch_rate": _ratio(g["dispatched_on_time"], g["dispatched"]),
            "accurate_dispatch_rate": _ratio(g["dispatched"] - g["returned"], g["dispatched"])}


_POSITIONS = {
    ObjectKind.SUPERVISOR: (Role.SUPERVISOR, _supervisors, _supervisor_values),
    ObjectKind.ACCEPTOR: (Role.ACCEPTOR, _acceptors, _acceptor_values),
    ObjectKind.SHIFT_LEAD: (Role.SHIFT_LEAD, _shift_leads, _shift_lead_values),
    ObjectKind.DISPATCHER: (Role.DISPATCHER, _dispatchers, _dispatcher_values),
}


def _positions(session: Session, scope: Scope, kind: ObjectKind, w: _Window, weights: Weights) -> list[EvaluationRow]:
    role, figures_of, values_of = _POSITIONS[kind]
    figures = figures_of(session, scope, w)
    rows = []
    # Staff of the scope's regions, and anyone else who acted on the scope's cases (the
    # centre's staff belong to no district).
    for pid, code, name, region_id in session.execute(
        select(Person.id, Person.code, Person.name, Person.region_id).where(Person.role == role.value)
    ):
        if pid in figures or scope.is_city or region_id in scope.region_ids:
            rows.append((code, name, values_of(figures.get(pid, {}))))
    return _score(kind, rows, weights)


# -- scoring and ranking ------------------------------------------------------------------------
def _score(kind: ObjectKind, rows: list[tuple[str, str, dict[str, float | int | None]]],
           weights: Weights) -> list[EvaluationRow]:
    group = kind.group
    out = []
    for code, name, values in rows:
        scored = dict(values)
        if "rated" in values and int(values["rated"] or 0) < weights.min_ratings:
            scored["satisfaction"] = None  # too few call-backs to weigh
        composite, points = weights.composite(group, scored)
        sample = int(values[SAMPLE_OF[group]] or 0)
        if sample == 0:
            # Nothing to judge: its counts are zero, so "0 超期" would score a perfect 100.00.
            composite = None
        ok = sample >= weights.min_cases
        out.append(EvaluationRow(code, name, values, points, composite, grade(composite) if ok else None,
                                 None, sample, ok))
    ranked = sorted((r for r in out if r.sample_ok and r.composite is not None),
                    key=lambda r: (-(r.composite or 0.0), r.code))  # composite is not None here
    final: list[EvaluationRow] = []
    for i, r in enumerate(ranked):
        same = final and final[-1].composite == r.composite
        final.append(_with_rank(r, final[-1].rank if same else i + 1))
    done = {r.code for r in final}
    return final + sorted((r for r in out if r.code not in done), key=lambda r: r.code)


def _with_rank(row: EvaluationRow, rank: int | None) -> EvaluationRow:
    return replace(row, rank=rank)


def evaluate(session: Session, scope: Scope, kind: ObjectKind | str, period: Period,
             weights: Weights | None = None, *, now: datetime | None = None) -> Evaluation:
    """Evaluate every object of ``kind`` inside ``scope`` for ``period`` (see the module doc).

    ``weights``: from :func:`dashboard.rules.evalspec.weights_from_settings` (None: the shipped
    default). ``now``: the instant outcomes are judged at when the period has not ended yet.
    """
    kind = ObjectKind(kind)
    require_online(session, period.first, period.label)  # PeriodArchived before the archive's cutoff
    weights = weights or load_weights()
    w = _window(period, now)
    if kind in _REGION_KINDS:
        rows = _regions(session, scope, kind, period, w, weights)
    elif kind is ObjectKind.UNIT:
        rows = _units(session, scope, w, weights)
    else:
        rows = _positions(session, scope, kind, w, weights)
    return Evaluation(kind, period, scope.code, scope.name, w.end, weights.source, weights.min_cases, tuple(rows))
