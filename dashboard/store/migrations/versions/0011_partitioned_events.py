"""partitioned events: case_events partitioned by month on PostgreSQL; event ids kept in case_event_ids

PostgreSQL: the existing ``case_events`` is converted in place, with its rows, to a table
``PARTITION BY RANGE (occurred_at)``: one partition per month of the city's calendar
(``case_events_YYYY_MM``) for every month holding events (at most 10 years back) and from this month
to ``GRIDHALL_PARTITIONS_AHEAD`` months after it, and ``case_events_default`` for the rest.
Ids keep their sequence (``case_events_id_seq`` moves to the new table); the primary key becomes
(id, occurred_at) and ``ix_case_events_case_time`` is kept; a partial index
``ix_case_events_problem`` (received_at of the skipped events, both backends) lets the ingest's
sweep find them without reading the history; the unique ``event_id`` (a partitioned
table's unique keys must include the partition key) becomes a plain index, and the idempotency
moves to ``case_event_ids`` (event_id primary key, occurred_at), filled from the stored events.

SQLite: the same idempotency table and index (one code path for the ingest); the table is not
partitioned. The downgrade converts back (one table, unique event_id) with the rows, on both.
See docs/history.md.

Revision ID: 0011_partitioned_events
Revises: 0010_open311
Create Date: 2026-12-07 18:00:00.000000
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import dashboard.store.db
from dashboard.settings import Settings
from dashboard.store import history

revision = '0011_partitioned_events'
down_revision = '0010_open311'
branch_labels = None
depends_on = None


def _settings() -> Settings:
    """The settings ``gridhall db upgrade`` runs with (their time zone sets the months' bounds)."""
    from dashboard.settings import load_settings

    config = op.get_context().config
    given = config.attributes.get("settings") if config is not None else None
    return given or load_settings()


def upgrade() -> None:
    op.create_table('case_event_ids',
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('occurred_at', dashboard.store.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_case_event_ids')),
    )
    conn = op.get_bind()
    if conn.dialect.name != 'postgresql':
        op.execute("INSERT INTO case_event_ids (event_id, occurred_at) SELECT event_id, occurred_at FROM case_events")
        with op.batch_alter_table('case_events', schema=None) as batch_op:
            batch_op.drop_constraint('uq_case_events_event_id', type_='unique')
            batch_op.create_index('ix_case_events_event_id', ['event_id'], unique=False)
            batch_op.create_index('ix_case_events_problem', ['received_at'], unique=False,
                                  sqlite_where=sa.text('problem IS NOT NULL'))
        return

    settings = _settings()
    tz = settings.tz
    seq = conn.execute(sa.text("SELECT pg_get_serial_sequence('case_events', 'id')")).scalar()
    op.execute("ALTER TABLE case_events RENAME TO case_events_unpartitioned")
    op.execute("ALTER TABLE case_events_unpartitioned RENAME CONSTRAINT pk_case_events TO pk_case_events_unpartitioned")
    op.execute("ALTER TABLE case_events_unpartitioned RENAME CONSTRAINT uq_case_events_event_id "
               "TO uq_case_events_unpartitioned_event_id")
    op.execute("ALTER INDEX ix_case_events_case_time RENAME TO ix_case_events_unpartitioned_case_time")
    # Same columns, types, NOT NULLs and defaults (the id's nextval of the same sequence).
    op.execute("CREATE TABLE case_events (LIKE case_events_unpartitioned INCLUDING DEFAULTS) "
               "PARTITION BY RANGE (occurred_at)")
    op.execute("ALTER TABLE case_events ADD CONSTRAINT pk_case_events PRIMARY KEY (id, occurred_at)")
    if seq:
        op.execute(f"ALTER SEQUENCE {seq} OWNED BY case_events.id")
    op.execute("CREATE INDEX ix_case_events_case_time ON case_events (case_id, occurred_at)")
    op.execute("CREATE INDEX ix_case_events_event_id ON case_events (event_id)")
    op.execute("CREATE INDEX ix_case_events_problem ON case_events (received_at) WHERE problem IS NOT NULL")

    # A partition for every month that holds events (10 years back at most: an event stamped
    # decades ago by a wrong clock stays in the default partition), and this month + ahead;
    # events further ahead wait in the default partition until their month is made.
    this = history.local_month(datetime.now(UTC), tz)
    floor = history.add_months(*this, -history.OLDEST_MONTHS)
    present = conn.execute(sa.text(
        "SELECT DISTINCT extract(year FROM t)::int, extract(month FROM t)::int FROM "
        "(SELECT (occurred_at AT TIME ZONE 'UTC') AT TIME ZONE :tz AS t FROM case_events_unpartitioned) s"),
        {"tz": tz.key}).all()
    last = history.add_months(*this, settings.partitions_ahead)
    months = {(y, m) for y, m in present if floor <= (y, m) <= last}  # later ones: default, until made
    cur = this
    while cur <= last:
        months.add(cur)
        cur = history.add_months(*cur, 1)
    for y, m in sorted(months):
        history.create_month(conn, y, m, tz)
    op.execute(f"CREATE TABLE {history.DEFAULT_PARTITION} PARTITION OF case_events DEFAULT")

    op.execute("INSERT INTO case_events SELECT * FROM case_events_unpartitioned")
    op.execute("INSERT INTO case_event_ids (event_id, occurred_at) "
               "SELECT event_id, occurred_at FROM case_events_unpartitioned")
    op.execute("DROP TABLE case_events_unpartitioned")
    op.execute("ANALYZE case_events")


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != 'postgresql':
        with op.batch_alter_table('case_events', schema=None) as batch_op:
            batch_op.drop_index('ix_case_events_problem')
            batch_op.drop_index('ix_case_events_event_id')
            batch_op.create_unique_constraint('uq_case_events_event_id', ['event_id'])
        op.drop_table('case_event_ids')
        return

    seq = conn.execute(sa.text("SELECT pg_get_serial_sequence('case_events', 'id')")).scalar()
    op.execute("ALTER TABLE case_events RENAME TO case_events_partitioned")
    op.execute("ALTER TABLE case_events_partitioned RENAME CONSTRAINT pk_case_events TO pk_case_events_partitioned")
    op.execute("ALTER INDEX ix_case_events_case_time RENAME TO ix_case_events_partitioned_case_time")
    op.execute("ALTER INDEX ix_case_events_event_id RENAME TO ix_case_events_partitioned_event_id")
    op.execute("CREATE TABLE case_events (LIKE case_events_partitioned INCLUDING DEFAULTS)")
    if seq:
        op.execute(f"ALTER SEQUENCE {seq} OWNED BY case_events.id")
    op.execute("INSERT INTO case_events SELECT * FROM case_events_partitioned ORDER BY id")
    op.execute("ALTER TABLE case_events ADD CONSTRAINT pk_case_events PRIMARY KEY (id)")
    op.execute("ALTER TABLE case_events ADD CONSTRAINT uq_case_events_event_id UNIQUE (event_id)")
    op.execute("CREATE INDEX ix_case_events_case_time ON case_events (case_id, occurred_at)")
    op.execute("DROP TABLE case_events_partitioned")
    op.drop_table('case_event_ids')
    op.execute("ANALYZE case_events")
