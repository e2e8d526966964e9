"""shift_handovers: the shift handover (交接班报告) of each shift, and its shift lead's notes (issue 18)

One row per shift (its UTC start, unique): the notes written on /explore while the shift runs,
and the report's content written once by gridhall housekeeping when the shift has ended.
See dashboard/store/handovers.py and docs/handover.md.

Revision ID: 0013_shift_handover
Revises: 0011_partitioned_events
Create Date: 2026-12-07 22:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dashboard.store.db

revision = '0013_shift_handover'
down_revision = '0012_case_period_index'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('shift_handovers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shift_start', dashboard.store.db.UTCDateTime(), nullable=False),
    sa.Column('shift_end', dashboard.store.db.UTCDateTime(), nullable=False),
    sa.Column('notes', dashboard.store.db.FreeText(), nullable=False),
    sa.Column('notes_by', sa.Integer(), nullable=True),
    sa.Column('notes_at', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.Column('written_at', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.Column('content', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['notes_by'], ['users.id'], name=op.f('fk_shift_handovers_notes_by_users'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shift_handovers')),
    sa.UniqueConstraint('shift_start', name=op.f('uq_shift_handovers_shift_start')),
    )


def downgrade() -> None:
    op.drop_table('shift_handovers')
