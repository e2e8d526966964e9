"""Alerts for 突发事件 in the store: raised, cleared, escalated, acknowledged, read (docs/halls.md).

The rules are ``dashboard/rules/alerts.py``. Who writes what, and when:

- **raise** and **clear**: the ingest, in the transaction of the case change that made the case
  qualify (:func:`raise_alerts`) or end (:func:`clear_ended`). One row per (case, reason), a
  unique key: a redelivered or concurrent batch inserts nothing twice (``ON CONFLICT DO
  NOTHING``), and the ids it *did* insert come back for the control notice after the commit.
- **escalate**: the ingest loop, every second (:func:`escalate_due`): one ``UPDATE … WHERE
  escalated_at IS NULL AND acknowledged_at IS NULL …``; several ingest processes may run it at
  once, the ``WHERE`` makes only one of them set each row and announce it.
- **acknowledge**: a shift lead within scope or an admin (:func:`acknowledge`); once. The change
  is noted on the session, so that ``feeds/control.py``'s ``ControlPublisher.commit`` announces
  it after the commit.

Every step is announced on the control channel as ``{kind: alert, ref: "<id>:<step>"}``
(:func:`notice_ref`), so every web worker learns of it within a second.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from dashboard.rules.alerts import AlertLevel, AlertReason, AlertRules, AlertStep
from dashboard.rules.classification import Classification
from dashboard.rules.surges import surge_text
from dashboard.store.hallcontrol import NOTICES_KEY
from dashboard.store.models import Alert, Case, Grid, Region, Surge, User
from dashboard.store.scope import Scope, grid_id_condition, user_scope
from dashboard.store.users import UserRole

ALERT_NOTICE = "alert"  # the control notices' kind of an alert's step


class AlertError(ValueError):
    """An alert request that cannot be done; one line for people."""


class AlertDenied(AlertError):
    """The user may not do this (the web layer answers 403)."""


def notice_ref(alert_id: int, step: AlertStep) -> str:
    """The control notice's ``ref`` of one step of one alert: ``"12:raised"``."""
    return f"{alert_id}:{step.value}"


def parse_notice_ref(ref: str) -> tuple[int, AlertStep] | None:
    """``"12:raised"`` → (12, RAISED); None for anything else."""
    head, _, tail = ref.partition(":")
    if not head.isdigit() or tail not in AlertStep.labels():
        return None
    return int(head), AlertStep(tail)


def note_notices(session: Session, alert_ids: Iterable[int], step: AlertStep) -> None:
    """Note alert steps for the control notice that whoever commits this session sends after the commit."""
    notices: list[tuple[str, str]] = session.info.setdefault(NOTICES_KEY, [])
    notices.extend((ALERT_NOTICE, notice_ref(i, step)) for i in alert_ids)


# -- raising and clearing (the ingest) ------------------------------------------------------
@dataclass(frozen=True)
class AlertCandidate:
    """A case that qualified for ``reason`` in this batch (it did not before): what the casebook saw."""

    case_id: str
    reason: AlertReason
    class_code: str | None
    grid_id: int | None


def raise_alerts(session: Session, candidates: Collection[AlertCandidate], rules: AlertRules,
                 districts: dict[int, int], now: datetime) -> list[int]:
    """Insert an alert per candidate, in the caller's transaction; returns the ids really inserted.

    ``districts`` maps a grid id to its district's region id (``Reference.grid_districts``). A
    (case, reason) already stored is skipped by the unique key, so a redelivered batch, or two
    ingests racing, never make a second row. One INSERT, and only when there are candidates.
    """
    if not candidates:
        return []
    rows: list[dict[str, Any]] = []
    for c in candidates:
        district = districts.get(c.grid_id) if c.grid_id is not None else None
        rows.append({"case_id": c.case_id, "reason": c.reason.value,
                     "level": rules.level(c.class_code, district).value,
                     "district_id": district, "grid_id": c.grid_id, "raised_at": now})
    table = Alert.__table__
    stmt: postgresql.Insert | sqlite.Insert
    if session.get_bind().dialect.name == "postgresql":
        stmt = postgresql.insert(table).on_conflict_do_nothing(index_elements=["case_id", "reason"])
    else:
        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=["case_id", "reason"])
    return sorted(session.connection().execute(stmt.returning(table.c.id), rows).scalars())


def clear_ended(session: Session, case_ids: Collection[str], now: datetime) -> list[int]:
    """Cases that ended (结案, 不予立案, 作废): their alerts nobody acknowledged are cleared; their ids."""
    if not case_ids:
        return []
    t = Alert.__table__
    # A surge alert ends with its surge (dashboard/store/surges.py), not with the case it was put on.
    return sorted(session.execute(
        update(t).where(t.c.case_id.in_(sorted(case_ids)), t.c.acknowledged_at.is_(None), t.c.cleared_at.is_(None),
                        t.c.reason != AlertReason.SURGE.value)
        .values(cleared_at=now).returning(t.c.id)).scalars())


def escalate_due(session: Session, rules: AlertRules, now: datetime) -> list[int]:
    """Escalate the district alerts nobody acknowledged within ``rules.escalate_s``; the ids this call set.

    Safe with several ingest processes: the ``WHERE`` repeats every condition, so a row another
    process escalated first is not set (nor returned) again. A read first, so that the usual
    answer — nothing due — takes no write lock (SQLite) and writes nothing.
    """
    t = Alert.__table__
    due = and_(t.c.level == AlertLevel.DISTRICT.value, t.c.escalated_at.is_(None), t.c.acknowledged_at.is_(None),
               t.c.cleared_at.is_(None), t.c.raised_at < rules.escalate_before(now))
    ids = list(session.execute(select(t.c.id).where(due)).scalars())
    if not ids:
        return []
    return sorted(session.execute(
        update(t).where(t.c.id.in_(ids), due).values(escalated_at=now).returning(t.c.id)).scalars())


# -- what a wall shows ----------------------------------------------------------------------
@dataclass(frozen=True)
class ActiveAlert:
    """One alert as a wall shows it: the case, its place, when and why, whether escalated."""

    id: int
    case_id: str
    number: str | None  # 案件编号
    kind: str | None
    class_code: str | None
    major_name: str  # 大类 ("" when the scheme does not know the code)
    minor_name: str  # 小类 (the code itself when unknown)
    urgency: str
    grid_code: str | None  # None: 未定位
    community: str  # names; "" when unknown
    street: str
    district: str
    lon: float | None
    lat: float | None
    raised_at: datetime
    reason: AlertReason
    reason_label: str  # 紧急案件 / 安全隐患类 (a field, so that asdict and JSON carry it)
    level: AlertLevel
    escalated: bool
    escalated_at: datetime | None
    detail: str = ""  # a surge's group and figures: "小广告 23 件 / 通常 4.5 件" ("" for a case's alert)

    @property
    def headline(self) -> str:
        """What a wall prints as the alert's reason: the label, and a surge's figures."""
        return f"{self.reason_label} {self.detail}" if self.detail else self.reason_label


def waiting() -> ColumnElement[bool]:
    """An alert nobody acknowledged whose case has not ended."""
    return and_(Alert.acknowledged_at.is_(None), Alert.cleared_at.is_(None))


def shown_in(scope: Scope) -> ColumnElement[bool]:
    """The alerts a hall of ``scope`` is concerned with.

    The city: city-level alerts and escalated ones. A district: every alert of the district
    (city-level ones too: it is the district's ground). A street (or community): the alerts
    whose grid lies in it — a region's wall never shows another region's case.
    """
    if scope.is_city:
        return or_(Alert.level == AlertLevel.CITY.value, Alert.escalated_at.is_not(None))
    if scope.level == "district":
        return Alert.district_id == scope.region_id
    return grid_id_condition(scope, Alert.grid_id)


def active_alerts(session: Session, scope: Scope, now: datetime, *,
                  classification: Classification | None = None) -> list[ActiveAlert]:
    """What a wall of ``scope`` shows now: its waiting alerts, oldest first.

    ``classification`` names the classes (without it: the code as the 小类 name).
    """
    return _read(session, and_(waiting(), shown_in(scope), Alert.raised_at <= now), classification)


def _read(session: Session, condition: ColumnElement[bool], classification: Classification | None,
          limit: int | None = None, newest_first: bool = False) -> list[ActiveAlert]:
    community, street, district = aliased(Region), aliased(Region), aliased(Region)
    query = (
        select(Alert, Case.number, Case.kind, Case.class_code, Case.urgency, Case.lon, Case.lat, Grid.code,
               community.name, street.name, district.name, Surge.class_group, Surge.observed, Surge.expected)
        .join(Case, Case.case_id == Alert.case_id)
        .outerjoin(Surge, Surge.alert_id == Alert.id)
        .outerjoin(Grid, Grid.id == Alert.grid_id)
        .outerjoin(community, community.id == Grid.community_id)
        .outerjoin(street, street.id == community.parent_id)
        .outerjoin(district, district.id == street.parent_id)
        .where(condition)
    )
    order = (Alert.raised_at.desc(), Alert.id.desc()) if newest_first else (Alert.raised_at, Alert.id)
    query = query.order_by(*order)
    if limit is not None:
        query = query.limit(limit)
    out = []
    for a, number, kind, code, urgency, lon, lat, grid_code, cname, sname, dname, group, observed, expected \
            in session.execute(query):
        major, minor = _class_names(classification, kind, code)
        reason = AlertReason(a.reason)
        out.append(ActiveAlert(
            id=a.id, case_id=a.case_id, number=number, kind=kind, class_code=code, major_name=major,
            minor_name=minor, urgency=urgency, grid_code=grid_code, community=cname or "", street=sname or "",
            district=dname or "", lon=lon, lat=lat, raised_at=a.raised_at, reason=reason,
            reason_label=reason.label, level=AlertLevel(a.level), escalated=a.escalated_at is not None,
            escalated_at=a.escalated_at,
            detail=f"{group} {surge_text(observed, expected)}" if group is not None else ""))
    return out


def _class_names(classification: Classification | None, kind: str | None, code: str | None) -> tuple[str, str]:
    if not code:
        return "", ""
    if classification is not None and kind:
        try:
            entry = classification.get(kind, code)
        except ValueError:
            entry = None
        if entry is not None:
            return entry.major_name, entry.minor_name
    return "", code


# -- acknowledging ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Acknowledged:
    """What :func:`acknowledge` found: whether this call did it, and who did it when."""

    alert_id: int
    done_now: bool  # False: someone had acknowledged it already (nothing changed)
    by: str  # username ("" when that user is gone)
    at: datetime
    scope_level: str


def may_acknowledge(user: User, scope: Scope, alert: Alert) -> bool:
    """Admins any alert; a shift lead one within their scope: a city-level alert only a city-wide
    shift lead, a district alert one whose scope holds the district (or, for a street's shift lead,
    the case's grid). Leaders and displays never."""
    role = UserRole(user.role)
    if user.disabled:
        return False
    if role is UserRole.ADMIN:
        return True
    if role is not UserRole.SHIFT_LEAD:
        return False
    if scope.is_city:
        return True
    if alert.level == AlertLevel.CITY.value:
        return False  # a city-level alert is the city hall's to acknowledge
    if scope.level == "district":
        return alert.district_id == scope.region_id
    return scope.allows_grid_id(alert.grid_id)


def acknowledge(session: Session, alert_id: int, user: User, now: datetime) -> Acknowledged:
    """Acknowledge an alert as ``user``, in the caller's transaction.

    Refused with :class:`AlertDenied` for leaders and displays (and shift leads outside scope),
    :class:`AlertError` for an unknown id. An alert acknowledged already is left as it is and the
    answer says who did it and when (``done_now`` False). An alert cleared (its case ended) may
    still be acknowledged: it records that someone looked. The step is noted for the control
    notice after the commit.
    """
    alert = session.get(Alert, alert_id, with_for_update=True)
    if alert is None:
        raise AlertError(f"没有编号为 {alert_id} 的预警 / no alert {alert_id}")
    scope = user_scope(session, user)
    if not may_acknowledge(user, scope, alert):
        role = UserRole(user.role)
        why = ("只有值班长和管理员可以确认预警" if role not in (UserRole.SHIFT_LEAD, UserRole.ADMIN)
               else "值班长只能确认其辖区内的预警")
        raise AlertDenied(f"{why} / {user.username} ({role.value}, scope {scope.name}) may not acknowledge "
                          f"alert {alert_id}")
    if alert.acknowledged_at is not None:
        by = alert.acknowledger.username if alert.acknowledger is not None else ""
        return Acknowledged(alert.id, False, by, alert.acknowledged_at, alert.acknowledged_scope or "")
    alert.acknowledged_at = now
    alert.acknowledged_by = user.id
    alert.acknowledged_scope = scope.level if scope.level in ("city", "district") else "street"
    session.flush()
    note_notices(session, [alert.id], AlertStep.ACKNOWLEDGED)
    return Acknowledged(alert.id, True, user.username, now, alert.acknowledged_scope)


# -- lists and the case's timeline ----------------------------------------------------------
@dataclass(frozen=True)
class AlertRow:
    """One alert with all its steps (the CLI's list, a handover report)."""

    alert: ActiveAlert
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledged_scope: str | None
    cleared_at: datetime | None

    @property
    def state(self) -> str:
        if self.acknowledged_at is not None:
            return AlertStep.ACKNOWLEDGED.value
        if self.cleared_at is not None:
            return AlertStep.CLEARED.value
        return AlertStep.ESCALATED.value if self.alert.escalated else AlertStep.RAISED.value


def list_alerts(session: Session, scope: Scope, now: datetime, *, include_done: bool = False, limit: int = 200,
                classification: Classification | None = None) -> list[AlertRow]:
    """Alerts of ``scope`` (newest first): the waiting ones it shows, with ``include_done`` every
    alert whose place lies in the scope (the city: all), acknowledged and cleared ones too."""
    if include_done:
        condition = (Alert.id.is_not(None) if scope.is_city else
                     Alert.district_id == scope.region_id if scope.level == "district" else shown_in(scope))
    else:
        condition = and_(waiting(), shown_in(scope))
    return _with_steps(session, _read(session, and_(condition, Alert.raised_at <= now), classification, limit,
                                      newest_first=True))


def alerts_in_period(session: Session, start: datetime, end: datetime, *,
                     classification: Classification | None = None) -> list[AlertRow]:
    """Every alert (the city's) raised, escalated, acknowledged or cleared in [start, end), oldest
    raised first: what a shift handover lists. Steps after ``end`` are left out, so a report
    rebuilt later says what was known when the shift ended."""
    def within(column: Any) -> ColumnElement[bool]:
        return and_(column >= start, column < end)

    condition = or_(within(Alert.raised_at), within(Alert.escalated_at), within(Alert.acknowledged_at),
                    within(Alert.cleared_at))
    rows = _with_steps(session, _read(session, condition, classification))
    return [_as_of(r, end) for r in rows]


def _as_of(row: AlertRow, end: datetime) -> AlertRow:
    def before(at: datetime | None) -> datetime | None:
        return at if at is not None and at < end else None

    acked = before(row.acknowledged_at)
    escalated = before(row.alert.escalated_at)
    alert = replace(row.alert, escalated=escalated is not None, escalated_at=escalated)
    return AlertRow(alert, acked, row.acknowledged_by if acked else None, row.acknowledged_scope if acked else None,
                    before(row.cleared_at))


def _with_steps(session: Session, shown: list[ActiveAlert]) -> list[AlertRow]:
    extra = {a.id: (a.acknowledged_at, a.acknowledger.username if a.acknowledger else None, a.acknowledged_scope,
                    a.cleared_at)
             for a in session.scalars(select(Alert).where(Alert.id.in_([s.id for s in shown])))} if shown else {}
    return [AlertRow(s, *extra[s.id]) for s in shown]


@dataclass(frozen=True)
class AlertEntry:
    """One step of an alert in a case's timeline: 预警, 升级, 确认 or 解除."""

    alert_id: int
    step: str  # AlertStep value
    label: str  # 预警 / 升级 / 确认 / 解除
    at: datetime
    reason: str  # AlertReason value
    reason_label: str
    level: str  # AlertLevel value
    actor: str | None  # who acknowledged (username); None for the system's steps


def case_alert_entries(session: Session, case_id: str) -> tuple[AlertEntry, ...]:
    """Every step of every alert of a case, in time order (the case's timeline on /explore)."""
    out: list[AlertEntry] = []
    for a in session.scalars(select(Alert).where(Alert.case_id == case_id).order_by(Alert.id)):
        out.append(_entry(a, AlertStep.RAISED, a.raised_at))
        if a.escalated_at is not None:
            out.append(_entry(a, AlertStep.ESCALATED, a.escalated_at))
        if a.acknowledged_at is not None:
            out.append(_entry(a, AlertStep.ACKNOWLEDGED, a.acknowledged_at,
                              a.acknowledger.username if a.acknowledger is not None else None))
        if a.cleared_at is not None:
            out.append(_entry(a, AlertStep.CLEARED, a.cleared_at))
    return tuple(sorted(out, key=lambda e: (e.at, e.alert_id)))


def _entry(a: Alert, step: AlertStep, at: datetime, actor: str | None = None) -> AlertEntry:
    reason, level = AlertReason(a.reason), AlertLevel(a.level)
    return AlertEntry(a.id, step.value, step.label, at, reason.value, reason.label, level.value, actor)
