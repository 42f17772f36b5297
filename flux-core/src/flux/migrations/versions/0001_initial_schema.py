"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 14:01:22.953231
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import flux.models.base


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('connection',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('conn_id', sa.String(length=250), nullable=False),
    sa.Column('conn_type', sa.String(length=50), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('host', sa.String(length=500), nullable=True),
    sa.Column('port', sa.Integer(), nullable=True),
    sa.Column('login', sa.String(length=500), nullable=True),
    sa.Column('password', sa.Text(), nullable=True),
    sa.Column('schema', sa.String(length=500), nullable=True),
    sa.Column('extra', sa.Text(), nullable=True),
    sa.Column('is_encrypted', sa.Boolean(), nullable=False),
    sa.Column('is_extra_encrypted', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_connection')),
    sa.UniqueConstraint('conn_id', name=op.f('uq_connection_conn_id'))
    )
    op.create_table('dag',
    sa.Column('dag_id', sa.String(length=250), nullable=False),
    sa.Column('fileloc', sa.String(length=2000), nullable=True),
    sa.Column('owners', sa.String(length=2000), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('schedule', sa.String(length=1000), nullable=True),
    sa.Column('tags', sa.Text(), nullable=True),
    sa.Column('is_paused', sa.Boolean(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('max_active_runs', sa.Integer(), nullable=True),
    sa.Column('last_parsed_time', flux.models.base.UtcDateTime(), nullable=True),
    sa.Column('next_dagrun', flux.models.base.UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('dag_id', name=op.f('pk_dag'))
    )
    with op.batch_alter_table('dag', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dag_is_active'), ['is_active'], unique=False)

    op.create_table('dag_run',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('dag_id', sa.String(length=250), nullable=False),
    sa.Column('run_id', sa.String(length=250), nullable=False),
    sa.Column('execution_date', flux.models.base.UtcDateTime(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('run_type', sa.String(length=20), nullable=False),
    sa.Column('external_trigger', sa.Boolean(), nullable=False),
    sa.Column('conf', sa.Text(), nullable=True),
    sa.Column('start_date', flux.models.base.UtcDateTime(), nullable=True),
    sa.Column('end_date', flux.models.base.UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dag_run')),
    sa.UniqueConstraint('dag_id', 'execution_date', name=op.f('uq_dag_run_dag_id_execution_date')),
    sa.UniqueConstraint('dag_id', 'run_id', name=op.f('uq_dag_run_dag_id_run_id'))
    )
    with op.batch_alter_table('dag_run', schema=None) as batch_op:
        batch_op.create_index('ix_dag_run_state_dag_id', ['state', 'dag_id'], unique=False)

    op.create_table('import_error',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('filename', sa.String(length=1000), nullable=False),
    sa.Column('timestamp', flux.models.base.UtcDateTime(), nullable=False),
    sa.Column('stacktrace', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_error'))
    )
    op.create_table('job',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('job_type', sa.String(length=30), nullable=False),
    sa.Column('dag_id', sa.String(length=250), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('hostname', sa.String(length=1000), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('start_date', flux.models.base.UtcDateTime(), nullable=True),
    sa.Column('end_date', flux.models.base.UtcDateTime(), nullable=True),
    sa.Column('latest_heartbeat', flux.models.base.UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job'))
    )
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.create_index('ix_job_type_state', ['job_type', 'state'], unique=False)

    op.create_table('log',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('dttm', flux.models.base.UtcDateTime(), nullable=False),
    sa.Column('event', sa.String(length=60), nullable=False),
    sa.Column('owner', sa.String(length=500), nullable=True),
    sa.Column('dag_id', sa.String(length=250), nullable=True),
    sa.Column('task_id', sa.String(length=250), nullable=True),
    sa.Column('execution_date', flux.models.base.UtcDateTime(), nullable=True),
    sa.Column('extra', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_log'))
    )
    with op.batch_alter_table('log', schema=None) as batch_op:
        batch_op.create_index('ix_log_dttm', ['dttm'], unique=False)

    op.create_table('slot_pool',
    sa.Column('pool', sa.String(length=256), nullable=False),
    sa.Column('slots', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('pool', name=op.f('pk_slot_pool'))
    )
    op.create_table('task_instance',
    sa.Column('dag_id', sa.String(length=250), nullable=False),
    sa.Column('task_id', sa.String(length=250), nullable=False),
    sa.Column('execution_date', flux.models.base.UtcDateTime(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=True),
    sa.Column('try_number', sa.Integer(), nullable=False),
    sa.Column('max_tries', sa.Integer(), nullable=False),
    sa.Column('start_date', flux.models.base.UtcDateTime(), nullable=True),
    sa.Column('end_date', flux.models.base.UtcDateTime(), nullable=True),
    sa.Column('duration', sa.Float(), nullable=True),
    sa.Column('hostname', sa.String(length=1000), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('operator', sa.String(length=1000), nullable=True),
    sa.Column('pool', sa.String(length=256), nullable=True),
    sa.Column('pool_slots', sa.Integer(), nullable=False),
    sa.Column('queue', sa.String(length=256), nullable=True),
    sa.Column('priority_weight', sa.Integer(), nullable=False),
    sa.Column('queued_at', flux.models.base.UtcDateTime(), nullable=True),
    sa.Column('heartbeat', flux.models.base.UtcDateTime(), nullable=True),
    sa.Column('next_try_at', flux.models.base.UtcDateTime(), nullable=True),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('external_executor_id', sa.String(length=250), nullable=True),
    sa.Column('rendered_fields', sa.Text(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('dag_id', 'task_id', 'execution_date', name=op.f('pk_task_instance'))
    )
    with op.batch_alter_table('task_instance', schema=None) as batch_op:
        batch_op.create_index('ix_task_instance_dag_id_execution_date', ['dag_id', 'execution_date'], unique=False)
        batch_op.create_index('ix_task_instance_dag_id_state', ['dag_id', 'state'], unique=False)
        batch_op.create_index('ix_task_instance_state', ['state'], unique=False)

    op.create_table('variable',
    sa.Column('key', sa.String(length=250), nullable=False),
    sa.Column('val', sa.Text(), nullable=True),
    sa.Column('is_encrypted', sa.Boolean(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_variable'))
    )
    op.create_table('xcom',
    sa.Column('dag_id', sa.String(length=250), nullable=False),
    sa.Column('task_id', sa.String(length=250), nullable=False),
    sa.Column('execution_date', flux.models.base.UtcDateTime(), nullable=False),
    sa.Column('key', sa.String(length=250), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('timestamp', flux.models.base.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('dag_id', 'task_id', 'execution_date', 'key', name=op.f('pk_xcom'))
    )



def downgrade() -> None:

    op.drop_table('xcom')
    op.drop_table('variable')
    with op.batch_alter_table('task_instance', schema=None) as batch_op:
        batch_op.drop_index('ix_task_instance_state')
        batch_op.drop_index('ix_task_instance_dag_id_state')
        batch_op.drop_index('ix_task_instance_dag_id_execution_date')

    op.drop_table('task_instance')
    op.drop_table('slot_pool')
    with op.batch_alter_table('log', schema=None) as batch_op:
        batch_op.drop_index('ix_log_dttm')

    op.drop_table('log')
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_index('ix_job_type_state')

    op.drop_table('job')
    op.drop_table('import_error')
    with op.batch_alter_table('dag_run', schema=None) as batch_op:
        batch_op.drop_index('ix_dag_run_state_dag_id')

    op.drop_table('dag_run')
    with op.batch_alter_table('dag', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dag_is_active'))

    op.drop_table('dag')
    op.drop_table('connection')

