"""Fewer index insertions per ingested event (issue 17, the write path)

Every event rewrites its case row, and that update is never HOT (``last_event_at``, indexed,
changes with every event): PostgreSQL inserts an entry into every index of ``cases`` the new
row qualifies for, and one per index of ``case_events`` for the stored event. Indexes no query
needs in full cost the ingest for nothing:

- ``ix_case_events_event_id``: dropped. Uniqueness lives in ``case_event_ids`` (0011); the ingest's
  problem marks and removals find an event by its case and id (``ix_case_events_case_time``).
- ``ix_cases_number``: dropped. No screen or API looks a case up by 案卷号 (docs/deployment.md).
- ``ix_cases_closed_at``, ``ix_cases_deadline_at``, ``ix_cases_device_id``: partial, ``IS NOT
  NULL``. Every query on them asks a range, an equality or NOT NULL (which imply it), and the
  open cases (no ``closed_at``), the cases from no device and those with no running clock then
  cost no insertion.

Revision ID: 0016_ingest_indexes
Revises: 0015_overdue_risk
Create Date: 2026-12-08 01:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016_ingest_indexes'
down_revision = '0015_overdue_risk'
branch_labels = None
depends_on = None

_PARTIAL = ('closed_at', 'deadline_at', 'device_id')


def upgrade() -> None:
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.drop_index('ix_case_events_event_id')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_number')
        for column in _PARTIAL:
            batch_op.drop_index(f'ix_cases_{column}')
            where = sa.text(f'{column} IS NOT NULL')
            batch_op.create_index(f'ix_cases_{column}', [column], unique=False,
                                  postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        for column in _PARTIAL:
            batch_op.drop_index(f'ix_cases_{column}')
            batch_op.create_index(f'ix_cases_{column}', [column], unique=False)
        batch_op.create_index('ix_cases_number', ['number'], unique=False)
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.create_index('ix_case_events_event_id', ['event_id'], unique=False)
