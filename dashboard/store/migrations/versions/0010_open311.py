"""open311: API keys of Open311 GeoReport v2 client apps (issue 16)

One row per client app: a name, the SHA-256 of its key, its region scope (NULL: the city).
See api/open311.py, dashboard/store/open311.py and docs/open311.md.

Revision ID: 0010_open311
Revises: 0009_devices
Create Date: 2026-12-07 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dashboard.store.db

revision = '0010_open311'
down_revision = '0009_devices'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('open311_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('scope_region_id', sa.Integer(), nullable=True),
    sa.Column('created_at', dashboard.store.db.UTCDateTime(), nullable=False),
    sa.Column('last_used_at', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['scope_region_id'], ['regions.id'],
                            name=op.f('fk_open311_keys_scope_region_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_open311_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_open311_keys_key_hash')),
    sa.UniqueConstraint('name', name=op.f('uq_open311_keys_name')),
    )


def downgrade() -> None:
    op.drop_table('open311_keys')
