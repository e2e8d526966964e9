"""hotspot_notes: shift leads' acknowledgements and notes on hot grids (issue 6)

The only rows the web pages write; each holds the grid, the user, the kind (ack/note), the
text and the time. See dashboard/figures/hotspots.py and docs/security.md.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 21:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dashboard.store.db

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hotspot_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('grid_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', dashboard.store.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('ack','note')", name=op.f('ck_hotspot_notes_kind')),
    sa.ForeignKeyConstraint(['grid_id'], ['grids.id'], name=op.f('fk_hotspot_notes_grid_id_grids')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_hotspot_notes_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hotspot_notes'))
    )
    with op.batch_alter_table('hotspot_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hotspot_notes_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_hotspot_notes_grid_id'), ['grid_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('hotspot_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hotspot_notes_grid_id'))
        batch_op.drop_index(batch_op.f('ix_hotspot_notes_created_at'))

    op.drop_table('hotspot_notes')
