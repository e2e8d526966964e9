"""gazetteer: the city's address gazetteer (门牌 and POI with points) for geocoding (issue 16)

One row per place; replaced as a whole by `gridhall import gazetteer`. See
dashboard/store/gazetteer.py, dashboard/geocode/ and docs/geocoding.md.

Revision ID: 0008_gazetteer
Revises: 0007
Create Date: 2026-12-07 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dashboard.store.db

revision = '0008_gazetteer'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('gazetteer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('address', dashboard.store.db.FreeString(length=200), nullable=False),
    sa.Column('name', dashboard.store.db.FreeString(length=100), nullable=True),
    sa.Column('district', sa.String(length=100), nullable=True),
    sa.Column('street', sa.String(length=100), nullable=True),
    sa.Column('community', sa.String(length=100), nullable=True),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('grid_code', sa.String(length=15), nullable=False),
    sa.CheckConstraint("kind IN ('house','poi')", name=op.f('ck_gazetteer_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gazetteer'))
    )
    with op.batch_alter_table('gazetteer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gazetteer_grid_code'), ['grid_code'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('gazetteer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gazetteer_grid_code'))
    op.drop_table('gazetteer')
