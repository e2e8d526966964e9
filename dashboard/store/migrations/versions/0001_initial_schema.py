"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 16:42:47.483810
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dashboard.store.db

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('case_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('case_id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('occurred_at', dashboard.store.db.UTCDateTime(), nullable=False),
    sa.Column('received_at', dashboard.store.db.UTCDateTime(), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=True),
    sa.Column('actor', sa.String(length=64), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('problem', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_events')),
    sa.UniqueConstraint('event_id', name=op.f('uq_case_events_event_id'))
    )
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.create_index('ix_case_events_case_time', ['case_id', 'occurred_at'], unique=False)

    op.create_table('classification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scheme', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('major_code', sa.String(length=32), nullable=False),
    sa.Column('major_name', sa.String(length=100), nullable=False),
    sa.Column('minor_code', sa.String(length=32), nullable=False),
    sa.Column('minor_name', sa.String(length=200), nullable=False),
    sa.Column('extension', sa.Boolean(), nullable=False),
    sa.Column('provenance', sa.Text(), nullable=False),
    sa.CheckConstraint("kind IN ('component','event')", name=op.f('ck_classification_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_classification')),
    sa.UniqueConstraint('scheme', 'kind', 'minor_code', name='uq_classification_code')
    )
    with op.batch_alter_table('classification', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_classification_scheme'), ['scheme'], unique=False)

    op.create_table('meta',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_meta'))
    )
    op.create_table('regions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('geometry', sa.Text(), nullable=True),
    sa.CheckConstraint("level IN ('district','street','community')", name=op.f('ck_regions_level')),
    sa.ForeignKeyConstraint(['parent_id'], ['regions.id'], name=op.f('fk_regions_parent_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_regions')),
    sa.UniqueConstraint('code', name=op.f('uq_regions_code'))
    )
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_regions_level'), ['level'], unique=False)
        batch_op.create_index(batch_op.f('ix_regions_parent_id'), ['parent_id'], unique=False)

    op.create_table('grids',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=15), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('geometry', sa.Text(), nullable=False),
    sa.Column('area_m2', sa.Float(), nullable=False),
    sa.Column('area_class', sa.String(length=1), nullable=False),
    sa.Column('land_use', sa.String(length=50), nullable=True),
    sa.Column('centroid_lon', sa.Float(), nullable=False),
    sa.Column('centroid_lat', sa.Float(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=True),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.CheckConstraint("area_class IN ('A','B','C')", name=op.f('ck_grids_area_class')),
    sa.ForeignKeyConstraint(['community_id'], ['regions.id'], name=op.f('fk_grids_community_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grids')),
    sa.UniqueConstraint('code', name=op.f('uq_grids_code'))
    )
    with op.batch_alter_table('grids', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grids_community_id'), ['community_id'], unique=False)

    op.create_table('people',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("role IN ('supervisor','acceptor','shift_lead','dispatcher')", name=op.f('ck_people_role')),
    sa.ForeignKeyConstraint(['region_id'], ['regions.id'], name=op.f('fk_people_region_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_people')),
    sa.UniqueConstraint('code', name=op.f('uq_people_code'))
    )
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_people_region_id'), ['region_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_people_role'), ['role'], unique=False)

    op.create_table('units',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=True),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['parent_id'], ['units.id'], name=op.f('fk_units_parent_id_units')),
    sa.ForeignKeyConstraint(['region_id'], ['regions.id'], name=op.f('fk_units_region_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_units')),
    sa.UniqueConstraint('code', name=op.f('uq_units_code'))
    )
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_units_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_units_region_id'), ['region_id'], unique=False)

    op.create_table('cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.String(length=64), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=True),
    sa.Column('source', sa.String(length=32), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=True),
    sa.Column('class_code', sa.String(length=32), nullable=True),
    sa.Column('grid_id', sa.Integer(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('address', sa.String(length=256), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('urgency', sa.String(length=16), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('reported_at', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.Column('verified_at', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.Column('filed_at', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.Column('dispatched_at', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.Column('handled_at', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.Column('checked_at', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.Column('closed_at', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.Column('last_event_at', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.Column('rework_count', sa.Integer(), nullable=False),
    sa.Column('return_count', sa.Integer(), nullable=False),
    sa.Column('extension_count', sa.Integer(), nullable=False),
    sa.Column('max_key', sa.String(length=200), nullable=True),
    sa.Column('fold_state', sa.JSON(), nullable=True),
    sa.Column('clock_stage', sa.String(length=16), nullable=True),
    sa.Column('clock_started_at', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.Column('deadline_at', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.Column('deadline_source', sa.String(length=16), nullable=True),
    sa.Column('limit_minutes', sa.Float(), nullable=True),
    sa.Column('limit_unit', sa.String(length=16), nullable=True),
    sa.Column('paused_at', dashboard.store.db.UTCDateTime(), nullable=True),
    sa.Column('on_time_verify', sa.Boolean(), nullable=True),
    sa.Column('on_time_file', sa.Boolean(), nullable=True),
    sa.Column('on_time_dispatch', sa.Boolean(), nullable=True),
    sa.Column('on_time_handle', sa.Boolean(), nullable=True),
    sa.Column('on_time_check', sa.Boolean(), nullable=True),
    sa.Column('on_time_close', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['grid_id'], ['grids.id'], name=op.f('fk_cases_grid_id_grids')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_cases_unit_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cases')),
    sa.UniqueConstraint('case_id', name=op.f('uq_cases_case_id'))
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cases_class_code'), ['class_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_closed_at'), ['closed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_deadline_at'), ['deadline_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_dispatched_at'), ['dispatched_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_filed_at'), ['filed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_number'), ['number'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_reported_at'), ['reported_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_stage'), ['stage'], unique=False)
        batch_op.create_index('ix_cases_stage_grid', ['stage', 'grid_id'], unique=False)
        batch_op.create_index('ix_cases_stage_unit', ['stage', 'unit_id'], unique=False)

    op.create_table('person_grids',
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('grid_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['grid_id'], ['grids.id'], name=op.f('fk_person_grids_grid_id_grids'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_person_grids_person_id_people'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('person_id', 'grid_id', name=op.f('pk_person_grids'))
    )


def downgrade() -> None:
    op.drop_table('person_grids')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_stage_unit')
        batch_op.drop_index('ix_cases_stage_grid')
        batch_op.drop_index(batch_op.f('ix_cases_stage'))
        batch_op.drop_index(batch_op.f('ix_cases_reported_at'))
        batch_op.drop_index(batch_op.f('ix_cases_number'))
        batch_op.drop_index(batch_op.f('ix_cases_filed_at'))
        batch_op.drop_index(batch_op.f('ix_cases_dispatched_at'))
        batch_op.drop_index(batch_op.f('ix_cases_deadline_at'))
        batch_op.drop_index(batch_op.f('ix_cases_closed_at'))
        batch_op.drop_index(batch_op.f('ix_cases_class_code'))

    op.drop_table('cases')
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_units_region_id'))
        batch_op.drop_index(batch_op.f('ix_units_parent_id'))

    op.drop_table('units')
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_people_role'))
        batch_op.drop_index(batch_op.f('ix_people_region_id'))

    op.drop_table('people')
    with op.batch_alter_table('grids', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grids_community_id'))

    op.drop_table('grids')
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_regions_parent_id'))
        batch_op.drop_index(batch_op.f('ix_regions_level'))

    op.drop_table('regions')
    op.drop_table('meta')
    with op.batch_alter_table('classification', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_classification_scheme'))

    op.drop_table('classification')
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.drop_index('ix_case_events_case_time')

    op.drop_table('case_events')
