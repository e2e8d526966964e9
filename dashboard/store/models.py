"""The relational model (SQLAlchemy 2 typed ORM). Alembic migrations in ``migrations/`` build it.

Geometry is stored as GeoJSON text (WGS84 lon/lat) so that SQLite and PostgreSQL hold the
same bytes without PostGIS; spatial work happens in memory with shapely.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from dashboard.store.db import FreeString, FreeText, UTCDateTime

# Deterministic constraint names, so Alembic migrations are identical on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    # Every model here is mapped to a Table (no mapping onto a join or a select), and Core
    # statements (insert, update, delete, COPY) take the table; DeclarativeBase only says FromClause.
    __table__: ClassVar[Table]
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Region(Base):
    """An administrative area above the grid: 区 (6 digits), 街道 (9), 社区 (12)."""

    __tablename__ = "regions"
    __table_args__ = (
        CheckConstraint("level IN ('district','street','community')", name="level"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(16), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    geometry: Mapped[str | None] = mapped_column(Text)

    parent: Mapped[Region | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Region]] = relationship(back_populates="parent")


class Grid(Base):
    """A unit grid (单元网格), about 10,000 m², the smallest unit of management."""

    __tablename__ = "grids"
    __table_args__ = (CheckConstraint("area_class IN ('A','B','C')", name="area_class"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(15), unique=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    geometry: Mapped[str] = mapped_column(Text)
    area_m2: Mapped[float] = mapped_column(Float)
    area_class: Mapped[str] = mapped_column(String(1), default="B")
    land_use: Mapped[str | None] = mapped_column(String(50))
    centroid_lon: Mapped[float] = mapped_column(Float)
    centroid_lat: Mapped[float] = mapped_column(Float)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)

    community: Mapped[Region] = relationship()


class ClassificationEntry(Base):
    """One minor class (小类) of the active classification scheme, with its major class."""

    __tablename__ = "classification"
    __table_args__ = (
        UniqueConstraint("scheme", "kind", "minor_code", name="uq_classification_code"),
        CheckConstraint("kind IN ('component','event')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scheme: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    major_code: Mapped[str] = mapped_column(String(32))
    major_name: Mapped[str] = mapped_column(String(100))
    minor_code: Mapped[str] = mapped_column(String(32))
    minor_name: Mapped[str] = mapped_column(String(200))
    extension: Mapped[bool] = mapped_column(default=False)
    provenance: Mapped[str] = mapped_column(Text)


class Unit(Base):
    """A responsible unit (专业部门 / 处置单位) that cases are dispatched to."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)

    region: Mapped[Region | None] = relationship()
    parent: Mapped[Unit | None] = relationship(remote_side=[id])


person_grids = Table(
    "person_grids",
    Base.metadata,
    Column("person_id", ForeignKey("people.id", ondelete="CASCADE"), primary_key=True),
    Column("grid_id", ForeignKey("grids.id", ondelete="CASCADE"), primary_key=True),
)


class Person(Base):
    """Staff by position: 监督员 (with assigned grids), 受理员, 值班长, 派遣员."""

    __tablename__ = "people"
    __table_args__ = (
        CheckConstraint(
            "role IN ('supervisor','acceptor','shift_lead','dispatcher')", name="role"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(50))
    role: Mapped[str] = mapped_column(String(16), index=True)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)

    region: Mapped[Region | None] = relationship()
    grids: Mapped[list[Grid]] = relationship(secondary=person_grids)


# The INCLUDE columns of the covering indexes of 综合考评 (PostgreSQL; 0017, docs/history.md): every
# column of ``cases`` that dashboard/figures/evaluation.py reads in the statements bounded by the key.
# A column added to those statements belongs here (and in a migration), or the index-only scan is lost
# (tests/test_history.py checks the plans).
FILED_COVERS = ("grid_id", "unit_id", "source", "stage", "closed_at", "paused_at", "dispatched_at", "handled_at",
                "clock_stage", "deadline_at", "on_time_dispatch", "on_time_handle", "on_time_check", "on_time_close",
                "rework_count", "extension_count")
ACTIVE_COVERS = ("case_id", "id", "grid_id", "stage", "filed_at", "handled_at", "closed_at", "on_time_verify",
                 "on_time_file", "on_time_dispatch", "on_time_check", "on_time_close")
RATED_COVERS = ("satisfaction", "grid_id", "unit_id")


class Case(Base):
    """A case (案件): the current picture derived from its event history."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_stage_grid", "stage", "grid_id"),
        Index("ix_cases_stage_unit", "stage", "unit_id"),
        # Partial: only rated cases are in it, so the many case updates without a rating cost
        # it nothing; 社会评价 finds a period's call-backs through it (0005), and reads them from it
        # alone on PostgreSQL (INCLUDE: an index-only scan, 0017).
        Index("ix_cases_rated_at", "rated_at", postgresql_where=text("rated_at IS NOT NULL"),
              sqlite_where=text("rated_at IS NOT NULL"), postgresql_include=list(RATED_COVERS)),
        # 综合考评 of a period on years of history (0017, docs/history.md): the 立案 cohort (regions,
        # units, 漏报) by filed_at and the period's events' cases (positions, 回退) by last_event_at
        # are read from these indexes alone (index-only scans on PostgreSQL, whose INCLUDE columns
        # are every column those statements read), not from the rows spread over the whole table.
        Index("ix_cases_filed_at", "filed_at", postgresql_include=list(FILED_COVERS)),
        Index("ix_cases_last_event_at", "last_event_at", postgresql_include=list(ACTIVE_COVERS)),
        # Partial too (0016): every query on them asks a range or NOT NULL, and the rows without a
        # value (open cases; cases from no device; cases without a running clock) then cost an
        # event's update no index insertion (a non-HOT update inserts into every index it qualifies for).
        Index("ix_cases_closed_at", "closed_at", postgresql_where=text("closed_at IS NOT NULL"),
              sqlite_where=text("closed_at IS NOT NULL")),
        Index("ix_cases_deadline_at", "deadline_at", postgresql_where=text("deadline_at IS NOT NULL"),
              sqlite_where=text("deadline_at IS NOT NULL")),
        Index("ix_cases_device_id", "device_id", postgresql_where=text("device_id IS NOT NULL"),
              sqlite_where=text("device_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), unique=True)
    # Not indexed (0016): no screen or API looks a case up by 案卷号; its index cost every event.
    number: Mapped[str | None] = mapped_column(FreeString(32))
    source: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str | None] = mapped_column(String(16))
    class_code: Mapped[str | None] = mapped_column(String(32), index=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    # Producers' free text: read without bidi controls (dashboard.store.db.FreeText, issue 12).
    address: Mapped[str | None] = mapped_column(FreeString(256))
    description: Mapped[str | None] = mapped_column(FreeText)
    urgency: Mapped[str] = mapped_column(String(16), default="normal")
    # NULL while the history holds no legal beginning yet (e.g. only a late "closed").
    # Not indexed alone: ix_cases_stage_grid and ix_cases_stage_unit lead with it (0002).
    stage: Mapped[str | None] = mapped_column(String(16))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    reported_at: Mapped[datetime | None] = mapped_column(index=True)
    verified_at: Mapped[datetime | None]
    filed_at: Mapped[datetime | None]  # ix_cases_filed_at (covering, above)
    dispatched_at: Mapped[datetime | None] = mapped_column(index=True)
    handled_at: Mapped[datetime | None]
    checked_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]  # ix_cases_closed_at, partial (0016)
    # Indexed (0012, covering since 0017): a period's 综合考评 joins its events to their cases through
    # it (the cases with an event since the period began), not to every case of years of history
    # (docs/history.md).
    last_event_at: Mapped[datetime | None]
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    return_count: Mapped[int] = mapped_column(Integer, default=0)
    extension_count: Mapped[int] = mapped_column(Integer, default=0)
    # The latest hotline call-back (回访评价): score 1–5 and when it was given (社会评价,
    # docs/evaluation.md). Only the partial index ix_cases_rated_at (rated cases only).
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    rated_at: Mapped[datetime | None]
    # Canonical sort key of the newest stored event, and the rest of the fold state: an
    # event that sorts after max_key is applied to this state without re-reading history.
    max_key: Mapped[str | None] = mapped_column(String(200))
    fold_state: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The running stage clock (dashboard.rules.deadlines, docs/lifecycle.md), fixed by the events: the
    # deadline is stored, whether it has passed is decided at read time against the clock.
    clock_stage: Mapped[str | None] = mapped_column(String(16))  # verify/file/dispatch/handle/check/close
    clock_started_at: Mapped[datetime | None]
    deadline_at: Mapped[datetime | None]  # ix_cases_deadline_at, partial (0016)
    deadline_source: Mapped[str | None] = mapped_column(String(16))  # "table" or "source"
    # The clock's limit: working minutes, or calendar minutes when limit_unit is calendar_hours
    # (work_hours/work_days/calendar_hours), so remaining time and due-soon need no table.
    limit_minutes: Mapped[float | None] = mapped_column(Float)
    limit_unit: Mapped[str | None] = mapped_column(String(16))
    # Set while 挂账 stops the clock: remaining time is frozen at this instant.
    paused_at: Mapped[datetime | None]
    # On-time flags of finished clocks (按时核实 … 按时结案); NULL until the stage finished.
    on_time_verify: Mapped[bool | None]
    on_time_file: Mapped[bool | None]
    on_time_dispatch: Mapped[bool | None]
    on_time_handle: Mapped[bool | None]
    on_time_check: Mapped[bool | None]
    on_time_close: Mapped[bool | None]
    # A video/IoT alarm case (source video_iot, feeds/bridges/alarms.py, 0009): the device that
    # raised it and its kind (camera/sensor), the alarm type, how many alarms were merged into it
    # (the first included) and when the device reported the condition cleared. NULL otherwise.
    device_id: Mapped[str | None] = mapped_column(String(64))  # ix_cases_device_id, partial (0016)
    device_kind: Mapped[str | None] = mapped_column(String(16))
    alarm_type: Mapped[str | None] = mapped_column(String(32))
    alarm_count: Mapped[int | None] = mapped_column(Integer)
    alarm_cleared_at: Mapped[datetime | None]

    grid: Mapped[Grid | None] = relationship()
    unit: Mapped[Unit | None] = relationship()


class Device(Base):
    """A camera or sensor of the video/IoT system (``gridhall import devices``, 0009)."""

    __tablename__ = "devices"
    __table_args__ = (CheckConstraint("kind IN ('camera','sensor')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(FreeString(100))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"))


class AlarmType(Base):
    """An alarm type of the video/IoT system and the 小类 (and urgency) its cases get (0009)."""

    __tablename__ = "alarm_types"
    __table_args__ = (CheckConstraint("kind IN ('component','event')", name="kind"),)

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(FreeString(100))
    kind: Mapped[str] = mapped_column(String(16))
    class_code: Mapped[str] = mapped_column(String(32))
    urgent: Mapped[bool] = mapped_column(default=False)


class CaseEvent(Base):
    """One event of a case's history; append-only, one row per producer's event id.

    On PostgreSQL partitioned by month on ``occurred_at`` (0011, dashboard/store/history.py): its
    primary key there is (id, occurred_at), and ``event_id`` cannot be unique in it (a partitioned
    table's unique keys must hold the partition key). :class:`CaseEventId` keeps ids unique, on
    both backends; ``event_id`` here is not indexed (0016): the ingest finds an event by its case
    and id (``ix_case_events_case_time``).
    """

    __tablename__ = "case_events"
    __table_args__ = (
        Index("ix_case_events_case_time", "case_id", "occurred_at"),
        # Partial: only the events the lifecycle skipped (few), which the ingest's sweep
        # (expire_illegal, every 30 s) looks for by received_at without reading the history (0011).
        Index("ix_case_events_problem", "received_at", postgresql_where=text("problem IS NOT NULL"),
              sqlite_where=text("problem IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128))
    case_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    source: Mapped[str | None] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(FreeString(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Why the lifecycle skipped this event when folding the case's history (None: applied).
    problem: Mapped[str | None] = mapped_column(Text)


class CaseEventId(Base):
    """Every event id stored (the ingest's idempotency, 0011): an id is taken here first.

    The ingest inserts a batch's ids with ON CONFLICT DO NOTHING and stores in ``case_events``
    only the events whose id it got, so a re-sent id is a duplicate whatever its time. Rows stay
    when their events are archived (a late copy of an archived event is still a duplicate) and go
    with an event removed as impossible or expired (it may be sent again, corrected).
    """

    __tablename__ = "case_event_ids"

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    occurred_at: Mapped[datetime]


class Meta(Base):
    """Small key/value facts about this database (e.g. that the demo built it)."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class User(Base):
    """Someone (or a wall screen) who signs in; roles and tokens in dashboard/store/users.py."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('display','leader','shift_lead','admin')", name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    # The region scope (属地): NULL is the whole city, else a district or a street.
    scope_region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    # argon2 PHC string; NULL for display users, who sign in by token only.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]
    # Consecutive failed sign-ins, and the lock they caused (dashboard.store.users.lock_duration).
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]

    scope_region: Mapped[Region | None] = relationship()


class ApiToken(Base):
    """A bearer token of a user; only the SHA-256 of the token is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    # NULL: no fixed expiry (display tokens); such a token lapses when left unused too long.
    expires_at: Mapped[datetime | None]
    revoked: Mapped[bool] = mapped_column(default=False)

    user: Mapped[User] = relationship()


class HotspotNote(Base):
    """A shift lead's acknowledgement (确认) or note (批注) on a hot grid: who, when, what.

    The only thing the web pages write (dashboard/figures/hotspots.py). Rows are never updated or
    deleted by the application: the list is the record of who looked at which hot spot.
    """

    __tablename__ = "hotspot_notes"
    __table_args__ = (CheckConstraint("kind IN ('ack','note')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(8))
    note: Mapped[str] = mapped_column(FreeText, default="")
    created_at: Mapped[datetime] = mapped_column(index=True)

    grid: Mapped[Grid] = relationship()
    user: Mapped[User] = relationship()


class Screen(Base):
    """A hall screen (大屏): what one display of a command hall shows, set by the shift lead.

    The rules of its settings are ``dashboard/rules/screenspec.py``; reads, changes and who may
    make them are ``dashboard/store/hallscreens.py`` (docs/halls.md).
    """

    __tablename__ = "screens"
    __table_args__ = (
        CheckConstraint("layout IN ('wall','map','queue','board','evaluation','districts','kpis','mosaic')",
                        name="layout"),
        CheckConstraint("metric IN ('open','new_hour','overdue')", name="metric"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(100))
    # The display user whose token opens this screen; NULL until one is bound.
    display_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), unique=True)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)  # NULL: 全市
    layout: Mapped[str] = mapped_column(String(16), default="wall")
    tile: Mapped[str | None] = mapped_column(String(16))  # a mosaic's "COLSxROWS:COL,ROW"
    metric: Mapped[str] = mapped_column(String(16), default="open")
    # [{"layout", "region", "metric", "dwell_s"}, …]; [] when the screen shows its layout only.
    playlist: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    sound: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(64))

    display_user: Mapped[User | None] = relationship()
    region: Mapped[Region | None] = relationship()


banner_screens = Table(
    "banner_screens",
    Base.metadata,
    Column("banner_id", ForeignKey("banners.id", ondelete="CASCADE"), primary_key=True),
    Column("screen_id", ForeignKey("screens.id", ondelete="CASCADE"), primary_key=True),
)


class Banner(Base):
    """A broadcast banner (横幅通知) on hall screens until it expires or is cleared.

    ``target`` ``scope``: every screen whose region lies within ``region_id`` (NULL: every
    screen of the city); ``screens``: the screens of ``banner_screens`` only.
    """

    __tablename__ = "banners"
    __table_args__ = (
        CheckConstraint("level IN ('notice','warning')", name="level"),
        CheckConstraint("target IN ('scope','screens')", name="target"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(400))  # at most 200 characters (screenspec)
    level: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(16))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    posted_by: Mapped[str] = mapped_column(String(64))
    posted_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    cleared_at: Mapped[datetime | None]
    cleared_by: Mapped[str | None] = mapped_column(String(64))

    region: Mapped[Region | None] = relationship()
    screens: Mapped[list[Screen]] = relationship(secondary=banner_screens)


class HallChange(Base):
    """Who changed which screen or banner, when, from what to what (append-only).

    ``actor`` is a username, or ``cli`` for the command line's operator; ``old`` and ``new``
    are the changed settings (NULL for an object added or removed).
    """

    __tablename__ = "hall_changes"
    __table_args__ = (
        CheckConstraint("kind IN ('screen','banner')", name="kind"),
        Index("ix_hall_changes_object", "kind", "object"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    object: Mapped[str] = mapped_column(String(64))  # the screen's name or the banner's id
    action: Mapped[str] = mapped_column(String(16))  # add, set, bind, remove, post, clear
    old: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    new: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Alert(Base):
    """An alert for a 突发事件 (docs/halls.md "Alerts"): one per case and reason, never a second.

    Raised by the ingest in the transaction that made the case qualify (``dashboard/rules/alerts.py``);
    ``level`` is the hall it goes to first (``district``: the district hall of ``district_id``;
    ``city``). ``escalated_at`` is set once when a district alert waited too long for an
    acknowledgement; ``acknowledged_at``/``acknowledged_by`` (with the scope level of who did it:
    ``city``, ``district`` or ``street``) once someone acknowledged it; ``cleared_at`` when the case
    ended (结案, 不予立案, 作废) before anyone acknowledged it. Rows are never deleted by the
    application: they are the record a shift handover report lists.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("case_id", "reason", name="uq_alerts_case_reason"),
        CheckConstraint("reason IN ('urgent','safety','surge')", name="reason"),
        CheckConstraint("level IN ('district','city')", name="level"),
        CheckConstraint("acknowledged_scope IN ('city','district','street')", name="acknowledged_scope"),
        # Partial: only the alerts still waiting for someone (few), which escalation and the
        # walls read every second; acknowledged and cleared ones leave it.
        Index("ix_alerts_waiting", "raised_at",
              postgresql_where=text("acknowledged_at IS NULL AND cleared_at IS NULL"),
              sqlite_where=text("acknowledged_at IS NULL AND cleared_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(16))
    district_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    raised_at: Mapped[datetime]
    escalated_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    acknowledged_scope: Mapped[str | None] = mapped_column(String(16))
    cleared_at: Mapped[datetime | None]

    case: Mapped[Case] = relationship()
    district: Mapped[Region | None] = relationship()
    grid: Mapped[Grid | None] = relationship()
    acknowledger: Mapped[User | None] = relationship()


class Surge(Base):
    """A surge (突增预警) of a class group in a grid or a street (docs/foresight.md): one row per
    surge, while it lasts and after.

    Written by gridhall housekeeping alone (``dashboard/store/surges.py``): raised with an alert
    (reason ``surge``, its case the latest case of the surge) when the place × group's count is
    improbable, ``last_seen_at`` moved on while it stays so, ``ended_at`` set once it has been
    quiet long enough. At most one open row per place × group (a partial unique index).
    ``observed``/``expected`` are the strongest window's (``x 件 / 通常 y 件``).
    """

    __tablename__ = "surges"
    __table_args__ = (
        CheckConstraint("level IN ('grid','street')", name="level"),
        Index("uq_surges_open", "level", "place", "class_group", unique=True,
              postgresql_where=text("ended_at IS NULL"), sqlite_where=text("ended_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    place: Mapped[str] = mapped_column(String(15))  # grid code or street region code
    class_group: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(index=True)
    last_seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    observed: Mapped[int] = mapped_column(Integer)
    expected: Mapped[float] = mapped_column(Float)
    window_minutes: Mapped[int] = mapped_column(Integer)
    chance: Mapped[float] = mapped_column(Float)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"), unique=True)

    alert: Mapped[Alert | None] = relationship()


class GazetteerEntry(Base):
    """One place of the city's address gazetteer (地名地址库, docs/geocoding.md): a 门牌 or a POI with its point.

    ``kind`` is ``house`` (门牌: a road and number, a lane's house) or ``poi`` (a named place);
    ``address`` the full address as the gazetteer writes it, ``name`` a POI's name. ``grid_code``
    is the unit grid of the point (``dashboard/rules/gridindex.py``), resolved at import. The set
    is replaced as a whole by each import (``dashboard/store/gazetteer.py``).
    """

    __tablename__ = "gazetteer"
    __table_args__ = (CheckConstraint("kind IN ('house','poi')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    address: Mapped[str] = mapped_column(FreeString(200))
    name: Mapped[str | None] = mapped_column(FreeString(100))
    district: Mapped[str | None] = mapped_column(String(100))
    street: Mapped[str | None] = mapped_column(String(100))
    community: Mapped[str | None] = mapped_column(String(100))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    grid_code: Mapped[str] = mapped_column(String(15), index=True)


class Open311Key(Base):
    """An Open311 client app's API key (api/open311.py); only the SHA-256 of the key is stored.

    Scoped like a user: ``scope_region_id`` NULL is the whole city, else a district or street.
    """

    __tablename__ = "open311_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope_region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked: Mapped[bool] = mapped_column(default=False)

    scope_region: Mapped[Region | None] = relationship()


class ShiftHandover(Base):
    """One shift's handover (交接班报告, docs/handover.md): the shift lead's notes while it runs,
    the report's content written once when it has ended.

    ``content`` (JSON) is the whole report as built at the boundary by the one owner of scheduled
    work; it is set once (``UPDATE … WHERE content IS NULL``) and never changed, so the HTML, PDF
    and XLSX rendered from it are the same whenever they are asked for. Notes can be written
    only while ``content`` is NULL (the shift has not been handed over).
    """

    __tablename__ = "shift_handovers"

    id: Mapped[int] = mapped_column(primary_key=True)
    shift_start: Mapped[datetime] = mapped_column(unique=True)
    shift_end: Mapped[datetime]
    notes: Mapped[str] = mapped_column(FreeText, default="")
    notes_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    notes_at: Mapped[datetime | None]
    written_at: Mapped[datetime | None]
    content: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    notes_user: Mapped[User | None] = relationship()


class RiskModelVersion(Base):
    """A trained overdue-risk model (超期风险, docs/foresight.md): one row per version, never changed.

    ``period_from``/``period_to`` bound the report times of the cases it learnt from, whose events
    were known up to ``known_until``; ``auc``, ``brier`` and their baseline twins are measured on
    the window's last cases, which it never saw (``figures`` holds them all, with the calibration
    table). ``blob`` is the pickled model (dashboard/figures/riskmodel.py); the newest row scores.
    """

    __tablename__ = "risk_models"

    version: Mapped[int] = mapped_column(primary_key=True)
    trained_at: Mapped[datetime] = mapped_column(index=True)
    period_from: Mapped[datetime]
    period_to: Mapped[datetime]
    known_until: Mapped[datetime]
    n_cases: Mapped[int] = mapped_column(Integer)
    auc: Mapped[float | None] = mapped_column(Float)
    brier: Mapped[float | None] = mapped_column(Float)
    baseline_auc: Mapped[float | None] = mapped_column(Float)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    blob: Mapped[bytes] = mapped_column(LargeBinary)
