"""scheduler tables: task escalations, notification outbox, in-app notifications, scheduler cursors

Only creates its own tables (storage/scheduling.py), so it can be re-chained after any other revision.

Revision ID: 0003
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

import storage.models

revision = '0003'
down_revision = "0002"
branch_labels = None
depends_on = None

UTC = storage.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'task_escalation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.String(length=36), nullable=False),
        sa.Column('instance_id', sa.String(length=32), nullable=False),
        sa.Column('level', sa.String(length=40), nullable=False),
        sa.Column('due_at', UTC, nullable=False),
        sa.Column('at', UTC, nullable=False),
        sa.Column('notified', sa.JSON(), nullable=False),
        sa.Column('worker', sa.String(length=120), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('task_id', 'due_at', 'level', name='uq_task_escalation_level'),
    )
    op.create_index('ix_task_escalation_task', 'task_escalation', ['task_id', 'id'], unique=False)

    op.create_table(
        'notification_outbox',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('dedupe_key', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('username', sa.String(length=80), nullable=True),
        sa.Column('address', sa.String(length=255), nullable=False),
        sa.Column('subject', sa.String(length=255), nullable=False),
        sa.Column('body_text', sa.Text(), nullable=False),
        sa.Column('body_html', sa.Text(), nullable=True),
        sa.Column('task_id', sa.String(length=36), nullable=True),
        sa.Column('instance_id', sa.String(length=32), nullable=True),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', UTC, nullable=False),
        sa.Column('locked_by', sa.String(length=120), nullable=True),
        sa.Column('locked_until', UTC, nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_at', UTC, nullable=False),
        sa.Column('sent_at', UTC, nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('dedupe_key', name='uq_notification_outbox_dedupe'),
    )
    op.create_index('ix_notification_outbox_due', 'notification_outbox', ['state', 'next_attempt_at'], unique=False)

    op.create_table(
        'in_app_notification',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('dedupe_key', sa.String(length=200), nullable=False),
        sa.Column('username', sa.String(length=80), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('subject', sa.String(length=255), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('task_id', sa.String(length=36), nullable=True),
        sa.Column('instance_id', sa.String(length=32), nullable=True),
        sa.Column('created_at', UTC, nullable=False),
        sa.Column('read_at', UTC, nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('dedupe_key', name='uq_in_app_notification_dedupe'),
    )
    op.create_index('ix_in_app_notification_user', 'in_app_notification', ['username', 'read_at', 'id'],
                    unique=False)

    op.create_table(
        'scheduler_cursor',
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('value', sa.Integer(), nullable=False),
        sa.Column('updated_at', UTC, nullable=True),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('scheduler_cursor')
    op.drop_index('ix_in_app_notification_user', table_name='in_app_notification')
    op.drop_table('in_app_notification')
    op.drop_index('ix_notification_outbox_due', table_name='notification_outbox')
    op.drop_table('notification_outbox')
    op.drop_index('ix_task_escalation_task', table_name='task_escalation')
    op.drop_table('task_escalation')
