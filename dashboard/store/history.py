"""Years of history on PostgreSQL: ``case_events`` partitioned by month (docs/history.md).

``case_events`` is declaratively partitioned ``BY RANGE (occurred_at)`` on PostgreSQL (migration
0011): one partition per month of the city's calendar (``case_events_YYYY_MM``, bounds at local
midnight of the 1st, stored as naive UTC like every timestamp), and ``case_events_default`` for
events outside every monthly partition (very old ones, or ones further ahead than the partitions
made so far). On SQLite the table stays one table. Both backends keep ``event_id`` idempotent
through ``case_event_ids`` (its primary key), since a partitioned table's unique keys must hold
the partition key.

:func:`ensure_partitions` makes missing monthly partitions (idempotent; rows of such a month
already waiting in the default partition are moved into it); ``gridhall housekeeping`` calls it
for the months ahead (feeds/housekeeping.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

PARENT = "case_events"
DEFAULT_PARTITION = "case_events_default"
DEDUPE_TABLE = "case_event_ids"
# Monthly partitions are made back to this many months before now at most (the migration): an
# event stamped decades ago by a wrong clock stays in the default partition instead of making
# hundreds of empty partitions.
OLDEST_MONTHS = 120
# Storage parameters of every monthly partition. PostgreSQL refuses autovacuum settings on a
# partitioned parent, so each partition gets them as it is made. Append-only: vacuum after
# inserts, so index-only scans see all-visible pages and freezing comes in small steps
# (docs/deployment.md, "Autovacuum and fillfactor").
PARTITION_STORAGE = {"autovacuum_vacuum_insert_scale_factor": "0.0", "autovacuum_vacuum_insert_threshold": "100000"}


_PARTITION_NAME = re.compile(rf"^{PARENT}_(\d{{4}}_\d{{2}}|default)$")


def is_partition_name(name: str | None) -> bool:
    """A monthly or the default partition of ``case_events``: not in the model (Alembic skips them)."""
    return bool(name and _PARTITION_NAME.match(name))


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    lower: datetime | None  # naive UTC; None: the default partition
    upper: datetime | None
    rows: int | None = None  # estimated (pg_class.reltuples), when asked for


def month_start(year: int, month: int, tz: ZoneInfo) -> datetime:
    """Local midnight of the 1st as stored (naive UTC)."""
    return datetime(year, month, 1, tzinfo=tz).astimezone(UTC).replace(tzinfo=None)


def add_months(year: int, month: int, n: int) -> tuple[int, int]:
    k = year * 12 + (month - 1) + n
    return k // 12, k % 12 + 1


def partition_name(year: int, month: int) -> str:
    return f"{PARENT}_{year:04d}_{month:02d}"


def local_month(at: datetime, tz: ZoneInfo) -> tuple[int, int]:
    """The city's month of an aware instant (or of a naive UTC one, as stored)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    local = at.astimezone(tz)
    return local.year, local.month


def is_partitioned(conn: Connection) -> bool:
    """Whether ``case_events`` (of the current schema) is a partitioned table."""
    if conn.dialect.name != "postgresql":
        return False
    return bool(conn.execute(text(
        "SELECT c.relkind = 'p' FROM pg_class c WHERE c.oid = to_regclass(:t)"), {"t": PARENT}).scalar())


def partitions(conn: Connection, with_rows: bool = False) -> list[Partition]:
    """The partitions of ``case_events``, oldest first, the default partition last."""
    if not is_partitioned(conn):
        return []
    rows = conn.execute(text(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples::bigint FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:t)"), {"t": PARENT}).all()
    out = []
    for name, bound, tuples in rows:
        lower = upper = None
        if bound != "DEFAULT":  # FOR VALUES FROM ('2026-09-30 16:00:00') TO ('2026-10-31 16:00:00')
            parts = bound.split("'")
            lower, upper = datetime.fromisoformat(parts[1]), datetime.fromisoformat(parts[3])
        out.append(Partition(name, lower, upper, max(int(tuples), 0) if with_rows else None))
    return sorted(out, key=lambda p: (p.lower is None, p.lower or datetime.min))


def _exists(conn: Connection, name: str) -> bool:
    return conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar() is True


def create_month(conn: Connection, year: int, month: int, tz: ZoneInfo) -> bool:
    """Make the month's partition unless it exists; True when made.

    Rows of that month already in the default partition (it would refuse the new partition
    otherwise) are moved into it in the same transaction.
    """
    name = partition_name(year, month)
    if _exists(conn, name):
        return False
    lower, upper = month_start(year, month, tz), month_start(*add_months(year, month, 1), tz)
    bounds = {"lo": lower, "hi": upper}
    waiting = _exists(conn, DEFAULT_PARTITION) and conn.execute(text(
        f"SELECT EXISTS (SELECT 1 FROM {DEFAULT_PARTITION} WHERE occurred_at >= :lo AND occurred_at < :hi)"),
        bounds).scalar()
    if waiting:
        conn.execute(text(f"CREATE TEMP TABLE gh_moving (LIKE {PARENT}) ON COMMIT DROP"))
        conn.execute(text(
            f"WITH m AS (DELETE FROM {DEFAULT_PARTITION} WHERE occurred_at >= :lo AND occurred_at < :hi "
            "RETURNING *) INSERT INTO gh_moving SELECT * FROM m"), bounds)
    # Bounds are literals (DDL takes no parameters); they are datetimes formatted here.
    conn.execute(text(
        f"CREATE TABLE {name} PARTITION OF {PARENT} FOR VALUES FROM ('{lower.isoformat(sep=' ')}') "
        f"TO ('{upper.isoformat(sep=' ')}') WITH ({_storage()})"))
    if waiting:
        conn.execute(text(f"INSERT INTO {PARENT} SELECT * FROM gh_moving"))
        conn.execute(text("DROP TABLE gh_moving"))
    return True


def _storage() -> str:
    return ", ".join(f"{k} = {v}" for k, v in PARTITION_STORAGE.items())


def ensure_partitions(conn: Connection, tz: ZoneInfo, ahead: int, now: datetime | None = None,
                      first: tuple[int, int] | None = None) -> list[str]:
    """Monthly partitions from ``first`` (default: this month) to ``ahead`` months after this one.

    Idempotent; a no-op (empty list) where ``case_events`` is not partitioned (SQLite). Returns
    the names of the partitions made.
    """
    if not is_partitioned(conn):
        return []
    y, m = local_month(now or datetime.now(UTC), tz)
    last = add_months(y, m, ahead)
    cur = first or (y, m)
    made = []
    while cur <= last:
        if create_month(conn, cur[0], cur[1], tz):
            made.append(partition_name(*cur))
        cur = add_months(*cur, 1)
    return made
