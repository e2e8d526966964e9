"""devices: video/IoT alarms — the device registry and the alarm columns of cases (issue 16)

Additive: the tables ``devices`` (camera/sensor → point → grid) and ``alarm_types`` (alarm
type → 小类 and urgency), filled by ``gridhall import devices``; on ``cases`` the device that
raised an alarm case, its kind, the alarm type, the number of alarms merged into the case and
when the device reported the condition cleared (feeds/bridges/alarms.py, docs/sources.md).

Revision ID: 0009_devices
Revises: 0008_gazetteer
Create Date: 2026-12-07 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dashboard.store.db

revision = '0009_devices'
down_revision = '0008_gazetteer'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('devices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('grid_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("kind IN ('camera','sensor')", name=op.f('ck_devices_kind')),
    sa.ForeignKeyConstraint(['grid_id'], ['grids.id'], name=op.f('fk_devices_grid_id_grids')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_devices')),
    sa.UniqueConstraint('device_id', name=op.f('uq_devices_device_id'))
    )
    op.create_table('alarm_types',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('class_code', sa.String(length=32), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.CheckConstraint("kind IN ('component','event')", name=op.f('ck_alarm_types_kind')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_alarm_types'))
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('device_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('device_kind', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('alarm_type', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('alarm_count', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('alarm_cleared_at', dashboard.store.db.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_cases_device_id'), ['device_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cases_device_id'))
        batch_op.drop_column('alarm_cleared_at')
        batch_op.drop_column('alarm_count')
        batch_op.drop_column('alarm_type')
        batch_op.drop_column('device_kind')
        batch_op.drop_column('device_id')
    op.drop_table('alarm_types')
    op.drop_table('devices')
