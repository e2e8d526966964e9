"""cases.satisfaction, cases.rated_at: the latest hotline call-back of a case (issue 7)

A ``rated`` event (回访评价) carries a 1–5 score or a 满意/基本满意/不满意 answer; the fold keeps
the latest one on the case for the 社会评价 indicators (docs/evaluation.md). The index on
``rated_at`` is partial (rated cases only): every index of ``cases`` costs each ingested event
an index insertion (see 0002), a partial one only for the rows it holds.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dashboard.store.db

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('satisfaction', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('rated_at', dashboard.store.db.UTCDateTime(), nullable=True))
        batch_op.create_index('ix_cases_rated_at', ['rated_at'], unique=False,
                              postgresql_where=sa.text('rated_at IS NOT NULL'),
                              sqlite_where=sa.text('rated_at IS NOT NULL'))


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_rated_at')
        batch_op.drop_column('rated_at')
        batch_op.drop_column('satisfaction')
