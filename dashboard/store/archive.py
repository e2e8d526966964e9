"""``gridhall archive --before YYYY-MM``: closed cases of past months, with their events, out of the live tables.

A case is archived when it is closed (结案, 不予立案 or 作废) before the city-time month ``before``
and its whole history lies before that month (no event of it, e.g. a late call-back, at or after
the cutoff). Its row, its events and its alerts move to tables of the same names and columns in

- PostgreSQL: the schema ``GRIDHALL_ARCHIVE_SCHEMA`` (default ``archive``) of the same database,
  one transaction per month of closure;
- SQLite: the file ``<database>.archive.db`` beside the database, attached as ``archive``: the
  rows are copied (one transaction, committed), then removed from the live file (another): a
  crash between the two leaves them in both, and the next run finishes the move.

Open cases stay whatever their age. ``case_event_ids`` keeps the ids of archived events: a late
re-send of one is still a duplicate (docs/history.md). A re-run moves nothing twice (idempotent).

The evaluation of a month before the cutoff would miss the archived cases: :func:`require_online`
refuses it with :class:`PeriodArchived`, a message naming the archive (``meta`` key
``archived_before`` holds the latest cutoff).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Connection, DateTime, Engine, Index, MetaData, Table, bindparam, inspect, text
from sqlalchemy.engine import make_url

from dashboard.rules.lifecycle import TERMINAL
from dashboard.store import history
from dashboard.store.models import Alert, Case, CaseEvent, Meta

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from dashboard.settings import Settings

META_KEY = "archived_before"  # in ``meta``: "YYYY-MM", the latest cutoff archived
SQLITE_ALIAS = "archive"
# Moved in this order (parents last when removing: alerts and events name the case).
TABLES: tuple[Table, ...] = (Case.__table__, CaseEvent.__table__, Alert.__table__)


class PeriodArchived(ValueError):
    """The period starts before the archive's cutoff: its cases are partly in the archive."""


@dataclass(frozen=True)
class MonthMoved:
    month: str  # YYYY-MM of closure (city time)
    cases: int
    events: int
    alerts: int


@dataclass(frozen=True)
class ArchiveResult:
    before: str
    where: str  # "schema archive" or the SQLite file
    months: tuple[MonthMoved, ...]

    @property
    def cases(self) -> int:
        return sum(m.cases for m in self.months)

    @property
    def events(self) -> int:
        return sum(m.events for m in self.months)


def parse_month(text_: str) -> tuple[int, int]:
    """``YYYY-MM`` → (year, month); ValueError otherwise."""
    try:
        year, month = (int(p) for p in text_.strip().split("-"))
        datetime(year, month, 1)
    except (ValueError, TypeError):
        raise ValueError(f"expected YYYY-MM, e.g. 2026-01, not {text_!r}") from None
    return year, month


def sqlite_archive_path(settings: Settings) -> Path:
    """The SQLite archive file: ``gridhall.db`` → ``gridhall.archive.db`` beside it."""
    database = make_url(settings.effective_database_url).database or "gridhall.db"
    path = Path(database)
    return path.with_name(path.stem + ".archive" + (path.suffix or ".db"))


def _archive_table(src: Table, md: MetaData, schema: str) -> Table:
    """``src``'s columns, primary key and indexes (whole, not partial) in ``schema``; no foreign keys."""
    t = Table(src.name, md, *(Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable,
                                     autoincrement=False) for c in src.columns), schema=schema)
    for idx in src.indexes:
        Index(idx.name, *(t.c[c.name] for c in idx.columns), unique=bool(idx.unique))
    if src is Case.__table__:
        Index("uq_cases_case_id", t.c.case_id, unique=True)  # ON CONFLICT (case_id) below
    return t


def ensure_tables(conn: Connection, schema: str) -> None:
    """The archive's tables (made when missing; a column the live table gained since is added)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    md = MetaData()
    tables = [_archive_table(t, md, schema) for t in TABLES]
    md.create_all(conn, checkfirst=True)
    for t in tables:
        have = {c["name"] for c in inspect(conn).get_columns(t.name, schema=schema)}
        for c in t.columns:
            if c.name not in have:
                conn.execute(text(f'ALTER TABLE "{schema}"."{t.name}" ADD COLUMN "{c.name}" '
                                  f"{c.type.compile(conn.dialect)}"))


def _cols(t: Table) -> str:
    return ", ".join(f'"{c.name}"' for c in t.columns)


def _stamps(*names: str) -> list[Any]:
    """Naive UTC bounds formatted as each backend stores timestamps (SQLite: ISO text to the µs)."""
    return [bindparam(name, type_=DateTime()) for name in names]


def _move(conn: Connection, schema: str, label: str, lo: datetime, hi: datetime, cutoff: datetime, copy: bool,
          remove: bool) -> MonthMoved:
    """Cases closed in [lo, hi) with nothing at or after ``cutoff``: copy to ``schema``, remove from the live tables."""
    terminal = ", ".join(f"'{s.value}'" for s in TERMINAL)
    conn.execute(text("DROP TABLE IF EXISTS gh_archiving"))
    conn.execute(text(
        "CREATE TEMP TABLE gh_archiving AS SELECT c.case_id FROM cases c "
        f"WHERE c.stage IN ({terminal}) AND c.closed_at >= :lo AND c.closed_at < :hi "
        "AND (c.rated_at IS NULL OR c.rated_at < :cut) "
        "AND NOT EXISTS (SELECT 1 FROM case_events e WHERE e.case_id = c.case_id AND e.occurred_at >= :cut)")
        .bindparams(*_stamps("lo", "hi", "cut")), {"lo": lo, "hi": hi, "cut": cutoff})
    n_cases = n_events = n_alerts = 0
    if copy:
        c, e, a = (f'"{t.name}"' for t in TABLES)
        n_cases = conn.execute(text(
            f'INSERT INTO "{schema}".{c} ({_cols(Case.__table__)}) SELECT {_cols(Case.__table__)} FROM {c} '
            "WHERE case_id IN (SELECT case_id FROM gh_archiving) ON CONFLICT DO NOTHING")).rowcount
        n_events = conn.execute(text(
            f'INSERT INTO "{schema}".{e} ({_cols(CaseEvent.__table__)}) SELECT {_cols(CaseEvent.__table__)} '
            f"FROM {e} WHERE case_id IN (SELECT case_id FROM gh_archiving) ON CONFLICT DO NOTHING")).rowcount
        n_alerts = conn.execute(text(
            f'INSERT INTO "{schema}".{a} ({_cols(Alert.__table__)}) SELECT {_cols(Alert.__table__)} FROM {a} '
            "WHERE case_id IN (SELECT case_id FROM gh_archiving) ON CONFLICT DO NOTHING")).rowcount
    if remove:
        # Only what the archive holds (on SQLite the copy was committed before, perhaps by an earlier run).
        held = f'SELECT case_id FROM gh_archiving WHERE case_id IN (SELECT case_id FROM "{schema}".cases)'
        removed_alerts = conn.execute(text(f"DELETE FROM alerts WHERE case_id IN ({held})")).rowcount
        removed_events = conn.execute(text(f"DELETE FROM case_events WHERE case_id IN ({held})")).rowcount
        removed_cases = conn.execute(text(f"DELETE FROM cases WHERE case_id IN ({held})")).rowcount
        if not copy:
            n_cases, n_events, n_alerts = removed_cases, removed_events, removed_alerts
    conn.execute(text("DROP TABLE gh_archiving"))
    return MonthMoved(label, n_cases, n_events, n_alerts)


def _months(conn: Connection, settings: Settings, cutoff: datetime) -> list[tuple[int, int]]:
    oldest = conn.execute(text("SELECT min(closed_at) FROM cases WHERE closed_at < :cut").bindparams(*_stamps("cut")),
                          {"cut": cutoff}).scalar()
    if oldest is None:
        return []
    if isinstance(oldest, str):  # SQLite's raw SQL: text
        oldest = datetime.fromisoformat(oldest)
    cur = history.local_month(oldest, settings.tz)
    last = history.local_month(cutoff, settings.tz)
    out = []
    while cur < last:
        out.append(cur)
        cur = history.add_months(*cur, 1)
    return out


def archive_before(engine: Engine, settings: Settings, year: int, month: int,
                   schema: str | None = None) -> ArchiveResult:
    """Move the cases closed before ``year-month`` (city time) and their events and alerts to the archive."""
    tz = settings.tz
    cutoff = history.month_start(year, month, tz)
    label = f"{year:04d}-{month:02d}"
    now = datetime.now(UTC)
    if (year, month) > history.local_month(now, tz):
        raise ValueError(f"--before {label} is after this month: only months that have begun can be archived")
    moved: list[MonthMoved] = []
    if engine.dialect.name == "postgresql":
        schema = schema or settings.archive_schema
        where = f"schema {schema}"
        with engine.begin() as conn:
            ensure_tables(conn, schema)
            months = _months(conn, settings, cutoff)
        for y, m in months:
            lo, hi = history.month_start(y, m, tz), history.month_start(*history.add_months(y, m, 1), tz)
            with engine.begin() as conn:
                moved.append(_move(conn, schema, f"{y:04d}-{m:02d}", lo, hi, cutoff, copy=True, remove=True))
        with engine.begin() as conn:
            _note_cutoff(conn, label)
    else:
        schema = SQLITE_ALIAS
        path = sqlite_archive_path(settings)
        where = str(path)
        with engine.connect() as conn:
            conn.exec_driver_sql(f"ATTACH DATABASE ? AS {SQLITE_ALIAS}", (str(path),))
            conn.commit()
            try:
                with conn.begin():
                    ensure_tables(conn, schema)
                    months = _months(conn, settings, cutoff)
                for y, m in months:
                    lo, hi = history.month_start(y, m, tz), history.month_start(*history.add_months(y, m, 1), tz)
                    with conn.begin():  # copied and committed in the archive file first …
                        copied = _move(conn, schema, f"{y:04d}-{m:02d}", lo, hi, cutoff, copy=True, remove=False)
                    with conn.begin():  # … then removed from the live file
                        _move(conn, schema, f"{y:04d}-{m:02d}", lo, hi, cutoff, copy=False, remove=True)
                    moved.append(copied)
                with conn.begin():
                    _note_cutoff(conn, label)
            finally:
                conn.rollback()
                conn.exec_driver_sql(f"DETACH DATABASE {SQLITE_ALIAS}")
    return ArchiveResult(label, where, tuple(moved))


def _note_cutoff(conn: Connection, label: str) -> None:
    t = Meta.__table__
    old = conn.execute(t.select().where(t.c.key == META_KEY)).first()
    if old is None:
        conn.execute(t.insert().values(key=META_KEY, value=label))
    elif old.value < label:
        conn.execute(t.update().where(t.c.key == META_KEY).values(value=label))


def archived_before(session: Session) -> str | None:
    """The latest ``--before`` archived ("YYYY-MM"), None when nothing was."""
    from dashboard.store.reference import get_meta

    return get_meta(session, META_KEY)


def require_online(session: Session, first: date, label: str) -> None:
    """Refuse a period whose first (local) day is before the archive's cutoff: its cases are partly archived."""
    cutoff = archived_before(session)
    if cutoff is None:
        return
    year, month = parse_month(cutoff)
    if first < date(year, month, 1):
        raise PeriodArchived(
            f"{label} 的已结案件已归档（gridhall archive --before {cutoff}）：该时期的考评需要归档库，"
            f"不能只用在线数据计算 — the period {label} begins before {cutoff}, whose closed cases were moved to "
            "the archive (docs/history.md, \"Archive\"); evaluate it from the archive or pick a later period")
