"""surges: surge alerts (突增预警) of a class group in a grid or street; alerts get reason 'surge' (issue 18)

See dashboard/store/surges.py and docs/foresight.md.

Revision ID: 0014_surges
Revises: 0013_shift_handover
Create Date: 2026-12-07 23:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dashboard.store.db

revision = '0014_surges'
down_revision = '0013_shift_handover'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('surges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('place', sa.String(length=15), nullable=False),
    sa.Column('class_group', sa.String(length=32), nullable=False),
    sa.Column('started_at', dashboard.store.db.UTCDateTime(), nullable=False),
    sa.Column('last_seen_at', dashboard.store.db.UTCDateTime(), nullable=False),
    sa.Column('ended_at', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.Column('observed', sa.Integer(), nullable=False),
    sa.Column('expected', sa.Float(), nullable=False),
    sa.Column('window_minutes', sa.Integer(), nullable=False),
    sa.Column('chance', sa.Float(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("level IN ('grid','street')", name=op.f('ck_surges_level')),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_surges_alert_id_alerts'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_surges')),
    sa.UniqueConstraint('alert_id', name=op.f('uq_surges_alert_id')),
    )
    with op.batch_alter_table('surges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_surges_started_at'), ['started_at'], unique=False)
        batch_op.create_index('uq_surges_open', ['level', 'place', 'class_group'], unique=True,
                              postgresql_where=sa.text('ended_at IS NULL'), sqlite_where=sa.text('ended_at IS NULL'))
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_alerts_reason'), type_='check')
        batch_op.create_check_constraint('reason', "reason IN ('urgent','safety','surge')")


def downgrade() -> None:
    op.execute("DELETE FROM alerts WHERE reason = 'surge'")
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_alerts_reason'), type_='check')
        batch_op.create_check_constraint('reason', "reason IN ('urgent','safety')")
    with op.batch_alter_table('surges', schema=None) as batch_op:
        batch_op.drop_index('uq_surges_open', postgresql_where=sa.text('ended_at IS NULL'),
                            sqlite_where=sa.text('ended_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_surges_started_at'))
    op.drop_table('surges')
