"""users and API tokens: sign-in with roles and a region scope (issue 6)

``users`` holds people and wall screens with a role (display, leader, shift_lead, admin), a
region scope (NULL: the whole city; else a district or a street) and an argon2 password hash
(NULL for display users, who sign in by token only), with the login-throttle counters.
``api_tokens`` holds only the SHA-256 of each bearer token. See docs/security.md.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 19:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dashboard.store.db

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('scope_region_id', sa.Integer(), nullable=True),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', dashboard.store.db.UTCDateTime(), nullable=False),
    sa.Column('last_login_at', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.CheckConstraint("role IN ('display','leader','shift_lead','admin')", name=op.f('ck_users_role')),
    sa.ForeignKeyConstraint(['scope_region_id'], ['regions.id'], name=op.f('fk_users_scope_region_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', dashboard.store.db.UTCDateTime(), nullable=False),
    sa.Column('last_used_at', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.Column('expires_at', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))

    op.drop_table('api_tokens')
    op.drop_table('users')
