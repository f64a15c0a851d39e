"""Initial schema: device keys, versioned inventory and contracts, exclusions, hourly result
blocks, timelines, outages and issued statements.

Revision ID: 0001
Revises: 
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('contract_versions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('contract', sa.String(length=200), nullable=False),
    sa.Column('effective_from', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contract_versions'))
    )
    with op.batch_alter_table('contract_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contract_versions_contract_effective_from'), ['contract', 'effective_from'], unique=False)

    op.create_table('device_keys',
    sa.Column('key', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('device', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_device_keys')),
    sa.UniqueConstraint('device', name=op.f('uq_device_keys_device'))
    )
    op.create_table('exclusions',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exclusions'))
    )
    op.create_table('inventory_versions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('effective_from', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inventory_versions'))
    )
    op.create_table('outages',
    sa.Column('device', sa.Integer(), nullable=False),
    sa.Column('start_at', sa.BigInteger(), nullable=False),
    sa.Column('end_at', sa.BigInteger(), nullable=False),
    sa.Column('open', sa.Boolean(), nullable=False),
    sa.Column('end_reason', sa.String(length=20), nullable=True),
    sa.Column('first_failure', sa.BigInteger(), nullable=True),
    sa.Column('last_failure', sa.BigInteger(), nullable=True),
    sa.Column('recovered', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('device', 'start_at', name=op.f('pk_outages'))
    )
    with op.batch_alter_table('outages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outages_end_at'), ['end_at'], unique=False)

    op.create_table('result_blocks',
    sa.Column('device', sa.Integer(), nullable=False),
    sa.Column('kind', sa.SmallInteger(), nullable=False),
    sa.Column('hour', sa.BigInteger(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('n_ok', sa.Integer(), nullable=False),
    sa.Column('rtt_n', sa.Integer(), nullable=False),
    sa.Column('rtt_sum_us', sa.BigInteger(), nullable=False),
    sa.Column('rtt_min_us', sa.BigInteger(), nullable=True),
    sa.Column('rtt_max_us', sa.BigInteger(), nullable=True),
    sa.Column('data', sa.LargeBinary(), nullable=True),
    sa.PrimaryKeyConstraint('device', 'kind', 'hour', name=op.f('pk_result_blocks')),
    sqlite_with_rowid=False,
    )
    op.create_table('statements',
    sa.Column('contract', sa.String(length=200), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('hash', sa.String(length=80), nullable=False),
    sa.Column('replaces', sa.String(length=80), nullable=True),
    sa.Column('issued_at', sa.BigInteger(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('contract', 'month', 'revision', name=op.f('pk_statements'))
    )
    op.create_table('timelines',
    sa.Column('device', sa.Integer(), nullable=False),
    sa.Column('params', sa.Text(), nullable=False),
    sa.Column('kept_from', sa.BigInteger(), nullable=True),
    sa.Column('carry', sa.Text(), nullable=True),
    sa.Column('firm_until', sa.BigInteger(), nullable=True),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('device', name=op.f('pk_timelines'))
    )
    op.create_table('transitions',
    sa.Column('device', sa.Integer(), nullable=False),
    sa.Column('at', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.PrimaryKeyConstraint('device', 'at', name=op.f('pk_transitions')),
    sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table('transitions')
    op.drop_table('timelines')
    op.drop_table('statements')
    op.drop_table('result_blocks')
    with op.batch_alter_table('outages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outages_end_at'))

    op.drop_table('outages')
    op.drop_table('inventory_versions')
    op.drop_table('exclusions')
    op.drop_table('device_keys')
    with op.batch_alter_table('contract_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contract_versions_contract_effective_from'))

    op.drop_table('contract_versions')
