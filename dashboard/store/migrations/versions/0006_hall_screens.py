"""screens, banners, banner_screens, hall_changes: hall screens and broadcast banners (issue 15)

A screen is a named display of a command hall (layout, region, metric, playlist, its bound
display user); a banner is a message on screens until it expires or is cleared; hall_changes
records who changed which of them, when, from what to what. See dashboard/store/hallscreens.py,
dashboard/store/banners.py and docs/halls.md.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 11:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dashboard.store.db

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hall_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', dashboard.store.db.UTCDateTime(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('object', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('old', sa.JSON(), nullable=True),
    sa.Column('new', sa.JSON(), nullable=True),
    sa.CheckConstraint("kind IN ('screen','banner')", name=op.f('ck_hall_changes_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hall_changes'))
    )
    with op.batch_alter_table('hall_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hall_changes_at'), ['at'], unique=False)
        batch_op.create_index('ix_hall_changes_object', ['kind', 'object'], unique=False)

    op.create_table('banners',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('text', sa.String(length=400), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('target', sa.String(length=16), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=True),
    sa.Column('posted_by', sa.String(length=64), nullable=False),
    sa.Column('posted_at', dashboard.store.db.UTCDateTime(), nullable=False),
    sa.Column('expires_at', dashboard.store.db.UTCDateTime(), nullable=False),
    sa.Column('cleared_at', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.Column('cleared_by', sa.String(length=64), nullable=True),
    sa.CheckConstraint("level IN ('notice','warning')", name=op.f('ck_banners_level')),
    sa.CheckConstraint("target IN ('scope','screens')", name=op.f('ck_banners_target')),
    sa.ForeignKeyConstraint(['region_id'], ['regions.id'], name=op.f('fk_banners_region_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_banners'))
    )
    with op.batch_alter_table('banners', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_banners_expires_at'), ['expires_at'], unique=False)

    op.create_table('screens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('display_user_id', sa.Integer(), nullable=True),
    sa.Column('region_id', sa.Integer(), nullable=True),
    sa.Column('layout', sa.String(length=16), nullable=False),
    sa.Column('tile', sa.String(length=16), nullable=True),
    sa.Column('metric', sa.String(length=16), nullable=False),
    sa.Column('playlist', sa.JSON(), nullable=False),
    sa.Column('sound', sa.Boolean(), nullable=False),
    sa.Column('created_at', dashboard.store.db.UTCDateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', dashboard.store.db.UTCDateTime(), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.CheckConstraint("layout IN ('wall','map','queue','board','evaluation','districts','kpis','mosaic')",
                       name=op.f('ck_screens_layout')),
    sa.CheckConstraint("metric IN ('open','new_hour','overdue')", name=op.f('ck_screens_metric')),
    sa.ForeignKeyConstraint(['display_user_id'], ['users.id'], name=op.f('fk_screens_display_user_id_users'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['region_id'], ['regions.id'], name=op.f('fk_screens_region_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_screens')),
    sa.UniqueConstraint('display_user_id', name=op.f('uq_screens_display_user_id')),
    sa.UniqueConstraint('name', name=op.f('uq_screens_name'))
    )
    with op.batch_alter_table('screens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_screens_region_id'), ['region_id'], unique=False)

    op.create_table('banner_screens',
    sa.Column('banner_id', sa.Integer(), nullable=False),
    sa.Column('screen_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['banner_id'], ['banners.id'], name=op.f('fk_banner_screens_banner_id_banners'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['screen_id'], ['screens.id'], name=op.f('fk_banner_screens_screen_id_screens'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('banner_id', 'screen_id', name=op.f('pk_banner_screens'))
    )


def downgrade() -> None:
    op.drop_table('banner_screens')
    with op.batch_alter_table('screens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_screens_region_id'))

    op.drop_table('screens')
    with op.batch_alter_table('banners', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_banners_expires_at'))

    op.drop_table('banners')
    with op.batch_alter_table('hall_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_hall_changes_object')
        batch_op.drop_index(batch_op.f('ix_hall_changes_at'))

    op.drop_table('hall_changes')
