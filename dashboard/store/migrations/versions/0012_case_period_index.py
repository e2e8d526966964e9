"""ix_cases_last_event_at: a period's 综合考评 reads the period's cases, not the whole history (issue 17)

The position kinds (监督员, 受理员, 值班长, 派遣员) and the units' 回退 join the period's events to
their cases. With years of cases online the join read every row of ``cases``; the evaluation now
also asks ``last_event_at >= period start`` (true of every case with an event in the period) and
this index lets the planner fetch those cases only. Its price: one more index insertion per
ingested event (every case update is already a non-HOT update, see 0002; docs/deployment.md).

Revision ID: 0012_case_period_index
Revises: 0011_partitioned_events
Create Date: 2026-12-07 22:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = '0012_case_period_index'
down_revision = '0011_partitioned_events'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_last_event_at', ['last_event_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_last_event_at')
