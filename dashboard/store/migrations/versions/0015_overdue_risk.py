"""risk_models: versions of the overdue-risk model (超期风险) with their figures (issue 18)

One row per trained version: the period it learnt from, its figures (AUC, Brier, baseline, the
calibration table) and the pickled model. See dashboard/store/riskmodels.py and docs/foresight.md.

Revision ID: 0015_overdue_risk
Revises: 0013_shift_handover
Create Date: 2026-12-07 23:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dashboard.store.db

revision = '0015_overdue_risk'
down_revision = '0014_surges'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('risk_models',
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('trained_at', dashboard.store.db.UTCDateTime(), nullable=False),
    sa.Column('period_from', dashboard.store.db.UTCDateTime(), nullable=False),
    sa.Column('period_to', dashboard.store.db.UTCDateTime(), nullable=False),
    sa.Column('known_until', dashboard.store.db.UTCDateTime(), nullable=False),
    sa.Column('n_cases', sa.Integer(), nullable=False),
    sa.Column('auc', sa.Float(), nullable=True),
    sa.Column('brier', sa.Float(), nullable=True),
    sa.Column('baseline_auc', sa.Float(), nullable=True),
    sa.Column('figures', sa.JSON(), nullable=False),
    sa.Column('blob', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_risk_models')),
    )
    with op.batch_alter_table('risk_models', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_risk_models_trained_at'), ['trained_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('risk_models', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_risk_models_trained_at'))
    op.drop_table('risk_models')
