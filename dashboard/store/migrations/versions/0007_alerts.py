"""alerts: alerts for 突发事件 — raised, escalated, acknowledged, cleared (issue 15)

One row per (case, reason): raised by the ingest in the transaction that made the case urgent
or safety-critical, escalated to the city by the ingest loop, acknowledged by a shift lead,
cleared when the case ended first. See dashboard/rules/alerts.py, dashboard/store/alerts.py and
docs/halls.md. Cases that qualified before this revision raise no alert (nothing is backfilled).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dashboard.store.db

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('district_id', sa.Integer(), nullable=True),
    sa.Column('grid_id', sa.Integer(), nullable=True),
    sa.Column('raised_at', dashboard.store.db.UTCDateTime(), nullable=False),
    sa.Column('escalated_at', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.Column('acknowledged_at', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.Column('acknowledged_by', sa.Integer(), nullable=True),
    sa.Column('acknowledged_scope', sa.String(length=16), nullable=True),
    sa.Column('cleared_at', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.CheckConstraint("reason IN ('urgent','safety')", name=op.f('ck_alerts_reason')),
    sa.CheckConstraint("level IN ('district','city')", name=op.f('ck_alerts_level')),
    sa.CheckConstraint("acknowledged_scope IN ('city','district','street')",
                       name=op.f('ck_alerts_acknowledged_scope')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.case_id'], name=op.f('fk_alerts_case_id_cases'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['district_id'], ['regions.id'], name=op.f('fk_alerts_district_id_regions')),
    sa.ForeignKeyConstraint(['grid_id'], ['grids.id'], name=op.f('fk_alerts_grid_id_grids')),
    sa.ForeignKeyConstraint(['acknowledged_by'], ['users.id'], name=op.f('fk_alerts_acknowledged_by_users'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts')),
    sa.UniqueConstraint('case_id', 'reason', name='uq_alerts_case_reason')
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_waiting', ['raised_at'], unique=False,
                              postgresql_where=sa.text('acknowledged_at IS NULL AND cleared_at IS NULL'),
                              sqlite_where=sa.text('acknowledged_at IS NULL AND cleared_at IS NULL'))


def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_waiting')

    op.drop_table('alerts')
