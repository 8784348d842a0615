"""KPI fact tables: complaint_fact, action_fact, task_fact and the refresh cursor

Only creates its own tables (storage/kpi_facts.py). The facts are filled by the first refresh
(`storage.kpi_facts.refresh`), which every dashboard/API read and the scheduler trigger.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

import storage.models

revision = '0004'
down_revision = "0003"
branch_labels = None
depends_on = None

UTC = storage.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'complaint_fact',
        sa.Column('instance_id', sa.String(length=32), nullable=False),
        sa.Column('process_key', sa.String(length=255), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('reference', sa.String(length=255), nullable=True),
        sa.Column('instance_status', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=True),
        sa.Column('received_at', UTC, nullable=False),
        sa.Column('acknowledged_at', UTC, nullable=True),
        sa.Column('closed_at', UTC, nullable=True),
        sa.Column('ack_seconds', sa.Float(), nullable=True),
        sa.Column('close_seconds', sa.Float(), nullable=True),
        sa.Column('category', sa.String(length=40), nullable=True),
        sa.Column('severity', sa.String(length=20), nullable=True),
        sa.Column('product', sa.String(length=255), nullable=True),
        sa.Column('customer', sa.String(length=255), nullable=True),
        sa.Column('valid', sa.Boolean(), nullable=True),
        sa.Column('rca_loops', sa.Integer(), nullable=False),
        sa.Column('effective_first_check', sa.Boolean(), nullable=True),
        sa.Column('effective', sa.Boolean(), nullable=True),
        sa.Column('root_cause', sa.Text(), nullable=True),
        sa.Column('csat', sa.Integer(), nullable=True),
        sa.Column('nps', sa.Integer(), nullable=True),
        sa.Column('survey_status', sa.String(length=20), nullable=True),
        sa.Column('feedback_type', sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint('instance_id'),
    )
    op.create_index('ix_complaint_fact_kind_received', 'complaint_fact', ['kind', 'received_at'], unique=False)
    op.create_index('ix_complaint_fact_kind_closed', 'complaint_fact', ['kind', 'closed_at'], unique=False)
    op.create_index('ix_complaint_fact_process_received', 'complaint_fact', ['process_key', 'received_at'],
                    unique=False)
    op.create_index('ix_complaint_fact_recurrence', 'complaint_fact', ['category', 'product', 'closed_at'],
                    unique=False)

    op.create_table(
        'action_fact',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('instance_id', sa.String(length=32), nullable=False),
        sa.Column('action_id', sa.String(length=40), nullable=False),
        sa.Column('round', sa.Integer(), nullable=False),
        sa.Column('what', sa.Text(), nullable=True),
        sa.Column('owner', sa.String(length=80), nullable=True),
        sa.Column('due_on', sa.Date(), nullable=True),
        sa.Column('done_on', sa.Date(), nullable=True),
        sa.Column('result', sa.Text(), nullable=True),
        sa.Column('effective', sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_action_fact_due', 'action_fact', ['due_on', 'done_on'], unique=False)
    op.create_index('ix_action_fact_instance', 'action_fact', ['instance_id'], unique=False)

    op.create_table(
        'task_fact',
        sa.Column('task_id', sa.String(length=36), nullable=False),
        sa.Column('instance_id', sa.String(length=32), nullable=False),
        sa.Column('process_key', sa.String(length=255), nullable=False),
        sa.Column('spec_id', sa.String(length=255), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('created_at', UTC, nullable=False),
        sa.Column('completed_at', UTC, nullable=True),
        sa.Column('seconds', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('task_id'),
    )
    op.create_index('ix_task_fact_completed', 'task_fact', ['completed_at', 'spec_id'], unique=False)
    op.create_index('ix_task_fact_instance', 'task_fact', ['instance_id'], unique=False)

    op.create_table(
        'kpi_refresh_state',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('last_audit_id', sa.Integer(), nullable=False),
        sa.Column('refreshed_at', UTC, nullable=True),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('kpi_refresh_state')
    op.drop_index('ix_task_fact_instance', table_name='task_fact')
    op.drop_index('ix_task_fact_completed', table_name='task_fact')
    op.drop_table('task_fact')
    op.drop_index('ix_action_fact_instance', table_name='action_fact')
    op.drop_index('ix_action_fact_due', table_name='action_fact')
    op.drop_table('action_fact')
    for name in ('ix_complaint_fact_recurrence', 'ix_complaint_fact_process_received',
                 'ix_complaint_fact_kind_closed', 'ix_complaint_fact_kind_received'):
        op.drop_index(name, table_name='complaint_fact')
    op.drop_table('complaint_fact')
