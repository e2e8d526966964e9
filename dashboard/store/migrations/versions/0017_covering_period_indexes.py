"""Covering indexes for a period's 综合考评 on years of history: index-only scans of ``cases`` (issue 17)

A month's evaluation reads the month's cases out of ``cases`` through ``ix_cases_filed_at`` (the
立案 cohort of the region kinds, the units and 漏报), ``ix_cases_last_event_at`` (the cases of the
period's events: positions, 回退; 0012) and ``ix_cases_rated_at`` (call-backs). With a year of cases
online every row found was a heap fetch out of a table twelve times the month (one buffer visit per
row), where the month alone is one sequential scan. On PostgreSQL the three indexes now carry, as
``INCLUDE`` columns, every column of ``cases`` those statements read: the month's cases are read
from the index alone (an index-only scan; its leaf pages hold the month together, fewer pages than
the month's heap). Same names, same keys: every other reader keeps its plan. SQLite is unchanged
(no INCLUDE; its indexes stay as they were).

The price: the three indexes are wider (about 100 bytes more per ``cases`` row for the two full
ones); no HOT update is lost (every event changes ``last_event_at``, indexed since 0012, so no case
update was a HOT update). docs/deployment.md ("Indexes"), docs/history.md.

Revision ID: 0017_covering_period_indexes
Revises: 0016_ingest_indexes
Create Date: 2026-12-08 01:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017_covering_period_indexes'
down_revision = '0016_ingest_indexes'
branch_labels = None
depends_on = None

# Frozen here (dashboard/store/models.py holds the live lists: FILED_COVERS, ACTIVE_COVERS, RATED_COVERS).
FILED = ["grid_id", "unit_id", "source", "stage", "closed_at", "paused_at", "dispatched_at", "handled_at",
         "clock_stage", "deadline_at", "on_time_dispatch", "on_time_handle", "on_time_check", "on_time_close",
         "rework_count", "extension_count"]
ACTIVE = ["case_id", "id", "grid_id", "stage", "filed_at", "handled_at", "closed_at", "on_time_verify",
          "on_time_file", "on_time_dispatch", "on_time_check", "on_time_close"]
RATED = ["satisfaction", "grid_id", "unit_id"]


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if not _postgresql():
        return  # SQLite has no INCLUDE: its three indexes stay as they are
    # Made under their final names in one transaction: the old index is dropped first (the
    # evaluation waits for the build instead of planning without an index).
    op.drop_index('ix_cases_filed_at', table_name='cases')
    op.create_index('ix_cases_filed_at', 'cases', ['filed_at'], postgresql_include=FILED)
    op.drop_index('ix_cases_last_event_at', table_name='cases')
    op.create_index('ix_cases_last_event_at', 'cases', ['last_event_at'], postgresql_include=ACTIVE)
    op.drop_index('ix_cases_rated_at', table_name='cases')
    op.create_index('ix_cases_rated_at', 'cases', ['rated_at'], postgresql_where=sa.text("rated_at IS NOT NULL"),
                    postgresql_include=RATED)


def downgrade() -> None:
    if not _postgresql():
        return
    op.drop_index('ix_cases_rated_at', table_name='cases')
    op.create_index('ix_cases_rated_at', 'cases', ['rated_at'], postgresql_where=sa.text("rated_at IS NOT NULL"))
    op.drop_index('ix_cases_last_event_at', table_name='cases')
    op.create_index('ix_cases_last_event_at', 'cases', ['last_event_at'])
    op.drop_index('ix_cases_filed_at', table_name='cases')
    op.create_index('ix_cases_filed_at', 'cases', ['filed_at'])
