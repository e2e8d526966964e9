"""drop ix_cases_stage: the stage_grid and stage_unit indexes lead with stage

Every ingested event rewrites its case row, and no update of a case is HOT (its indexed
stage and times change), so each index of ``cases`` costs every event an index insertion.
``ix_cases_stage`` answers nothing that ``ix_cases_stage_grid`` (stage, grid_id) cannot: a
condition on ``stage`` alone uses the leading column of that index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 18:50:00.000000
"""

from __future__ import annotations

from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cases_stage'))


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cases_stage'), ['stage'], unique=False)
