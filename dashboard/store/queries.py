"""Read-only SQL for the live screens: small functions returning plain dataclasses.

Every function takes a Session and, where "today" matters, the city's time zone and the
current instant. Expressions are SQLAlchemy Core/ORM only, so SQLite and PostgreSQL run the
same statements. Timestamps are stored as naive UTC (``UTCDateTime``): a local day is turned
into a half-open UTC interval before it reaches SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, case, func, select
from sqlalchemy.orm import Session, aliased

from dashboard.rules.classification import SHIPPED_SCHEMES
from dashboard.rules.lifecycle import OPEN, EventType, Stage
from dashboard.store.models import Case, CaseEvent, ClassificationEntry, Grid, Region

# Open stages that count as "处置中": the case is with (or bounced back from, or parked by)
# a responsible unit. 处置反馈/核查 are the supervisor's side of the loop, not disposal.
DISPOSING: tuple[Stage, ...] = (Stage.DISPATCHED, Stage.RETURNED, Stage.SUSPENDED)

# Open stages in the order of the loop, for a stable stage panel.
OPEN_STAGES: tuple[Stage, ...] = tuple(s for s in Stage if s in OPEN)


def unlocated_condition() -> ColumnElement[bool]:
    """待定位: an open case with no grid (未定位: no location yet, or a report's point in no
    grid; docs/feed.md "Location"). Only the city scope holds such cases."""
    return and_(Case.stage.in_([s.value for s in OPEN_STAGES]), Case.grid_id.is_(None))


def unlocated_open(session: Session) -> int:
    """How many open cases are 未定位 (``gridhall check``; the 待定位 list of /explore)."""
    return int(session.scalar(select(func.count()).select_from(Case).where(unlocated_condition())) or 0)


@dataclass(frozen=True)
class DayWindow:
    """One local calendar day as a half-open UTC interval [start, end)."""

    day: date
    start: datetime
    end: datetime


@dataclass(frozen=True)
class TodayCounts:
    """The KPI strip: today's flow (local day) and the current disposal load."""

    day: date
    reported: int
    filed: int
    dispatched: int
    disposing: int
    closed: int


@dataclass(frozen=True)
class StageCount:
    stage: Stage
    label: str
    count: int


@dataclass(frozen=True)
class GridLoad:
    """A unit grid and how many open cases lie in it."""

    code: str
    community: str | None
    street: str | None
    open_cases: int


@dataclass(frozen=True)
class RecentEvent:
    """One row of the event ticker, already joined with its case, grid and class."""

    id: int
    occurred_at: datetime
    case_id: str
    number: str | None
    type: str
    type_label: str
    class_name: str | None
    grid_code: str | None
    description: str | None


def day_window(tz: tzinfo, now: datetime) -> DayWindow:
    """The local day containing ``now`` in ``tz``, as UTC bounds."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    local_day = now.astimezone(tz).date()
    # combine() with a ZoneInfo picks the right offset for that date (DST-safe).
    start = datetime.combine(local_day, time.min, tzinfo=tz).astimezone(UTC)
    end = datetime.combine(local_day + timedelta(days=1), time.min, tzinfo=tz).astimezone(
        UTC
    )
    return DayWindow(local_day, start, end)


def scheme_name(classification: str) -> str:
    """The ``classification.scheme`` value for a GRIDHALL_CLASSIFICATION setting.

    Mirrors ``dashboard.rules.classification.load``: a shipped scheme by name, a CSV by file stem.
    """
    return classification if classification in SHIPPED_SCHEMES else Path(classification).stem


def today_counts(session: Session, tz: tzinfo, now: datetime) -> TodayCounts:
    """Cases reported, filed, dispatched and closed today, and cases in disposal now.

    One pass over ``cases``: filed_at and dispatched_at carry no index, so separate
    statements would each scan the table anyway.
    """
    w = day_window(tz, now)

    def on_day(column: SQLColumnExpression[datetime | None]) -> ColumnElement[bool]:
        return and_(column >= w.start, column < w.end)

    def tally(condition: ColumnElement[bool]) -> ColumnElement[int]:
        # COUNT of a CASE without ELSE counts only matching rows and is 0 on an empty table.
        return func.count(case((condition, 1)))

    row = session.execute(
        select(
            tally(on_day(Case.reported_at)),
            tally(on_day(Case.filed_at)),
            tally(on_day(Case.dispatched_at)),
            tally(Case.stage.in_([s.value for s in DISPOSING])),
            # closed_at is also stamped by 不予立案 and 作废; only real 结案 count here.
            tally(and_(on_day(Case.closed_at), Case.stage == Stage.CLOSED.value)),
        )
    ).one()
    reported, filed, dispatched, disposing, closed = (int(v or 0) for v in row)
    return TodayCounts(w.day, reported, filed, dispatched, disposing, closed)


def open_by_stage(session: Session) -> list[StageCount]:
    """Open cases per current stage, every open stage listed (zeros too) in loop order."""
    rows = session.execute(
        select(Case.stage, func.count())
        .where(Case.stage.in_([s.value for s in OPEN_STAGES]))
        .group_by(Case.stage)
    ).all()
    counts = {stage: int(n) for stage, n in rows}
    return [StageCount(s, s.label, counts.get(s.value, 0)) for s in OPEN_STAGES]


def top_grids(session: Session, limit: int = 10) -> list[GridLoad]:
    """The grids with the most open cases, with community and street names."""
    community = aliased(Region)
    street = aliased(Region)
    open_cases = func.count(Case.id).label("open_cases")
    rows = session.execute(
        select(Grid.code, community.name, street.name, open_cases)
        .select_from(Case)
        .join(Grid, Grid.id == Case.grid_id)
        .outerjoin(community, community.id == Grid.community_id)
        .outerjoin(street, street.id == community.parent_id)
        .where(Case.stage.in_([s.value for s in OPEN_STAGES]))
        .group_by(Grid.id, Grid.code, community.name, street.name)
        # Ties broken by code so the panel does not shuffle between refreshes.
        .order_by(open_cases.desc(), Grid.code)
        .limit(limit)
    ).all()
    return [GridLoad(code, comm, st, int(n)) for code, comm, st, n in rows]


def recent_events(session: Session, scheme: str, limit: int = 15) -> list[RecentEvent]:
    """The last ``limit`` events received, newest first, joined with case, class and grid.

    Ordered by id (arrival order): the primary key index makes this cheap on any table
    size, and it matches ``latest_event_id`` used to detect changes.
    """
    stmt = (
        select(
            CaseEvent.id,
            CaseEvent.occurred_at,
            CaseEvent.case_id,
            CaseEvent.type,
            Case.number,
            Case.class_code,
            Case.description,
            ClassificationEntry.minor_name,
            Grid.code,
        )
        .outerjoin(Case, Case.case_id == CaseEvent.case_id)
        .outerjoin(Grid, Grid.id == Case.grid_id)
        .outerjoin(
            ClassificationEntry,
            and_(
                ClassificationEntry.scheme == scheme,
                ClassificationEntry.kind == Case.kind,
                ClassificationEntry.minor_code == Case.class_code,
            ),
        )
        .order_by(CaseEvent.id.desc())
        .limit(limit)
    )
    labels = EventType.labels()
    out: list[RecentEvent] = []
    for (eid, occurred, case_id, etype, number, class_code, desc, minor, grid) in session.execute(stmt):
        out.append(
            RecentEvent(
                id=eid,
                occurred_at=occurred,
                case_id=case_id,
                number=number,
                type=etype,
                type_label=labels.get(etype, "未知类型"),
                # An unknown code still tells the operator something; the name is better.
                class_name=minor or class_code,
                grid_code=grid,
                description=desc,
            )
        )
    return out


def latest_event_id(session: Session) -> int | None:
    """The highest case_events id (None when empty): a cheap "anything new?" marker."""
    return session.execute(select(func.max(CaseEvent.id))).scalar_one_or_none()


def events_per_minute(session: Session, now: datetime, cap: int = 2000) -> int:
    """Events received in the 60 s before ``now``, counted among the last ``cap`` arrivals.

    The cap bounds the cost (a backwards walk of the primary key) however big the table
    is; a result equal to ``cap`` means "at least that many".
    """
    recent = (
        select(CaseEvent.received_at.label("received_at"))
        .order_by(CaseEvent.id.desc())
        .limit(cap)
        .subquery()
    )
    cutoff = now - timedelta(seconds=60)
    stmt = select(func.count()).select_from(recent).where(recent.c.received_at >= cutoff)
    return int(session.execute(stmt).scalar_one())
