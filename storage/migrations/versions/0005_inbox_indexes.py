"""inbox indexes: tasks by completer; tasks in inbox order per state; the state of each task on its group rows (kept by triggers)

`human_task_group.task_state` mirrors `human_task.state` through triggers, so the inbox's
"open tasks of my groups" reads one range of `ix_human_task_group_state` instead of looking up
every task the groups ever had. Replaces `ix_human_task_group_group`.

Revision ID: 0005
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

from storage.models import DROP_TASK_STATE_TRIGGERS, TASK_STATE_TRIGGERS

revision = '0005'
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table('human_task_group', schema=None) as batch_op:
        batch_op.add_column(sa.Column('task_state', sa.String(length=12), nullable=True))
        batch_op.drop_index('ix_human_task_group_group')
        batch_op.create_index('ix_human_task_group_state', ['group_name', 'task_state', 'task_id'], unique=False)
    op.execute("UPDATE human_task_group SET task_state = "
               "(SELECT state FROM human_task WHERE human_task.id = human_task_group.task_id)")
    with op.batch_alter_table('human_task', schema=None) as batch_op:
        batch_op.create_index('ix_human_task_completed_by', ['completed_by', 'state'], unique=False)
        batch_op.create_index('ix_human_task_state_order',
                              ['state', 'due_at', sa.text('priority DESC'), 'created_at', 'id'], unique=False)
    for statement in TASK_STATE_TRIGGERS.get(dialect, []):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in DROP_TASK_STATE_TRIGGERS.get(dialect, []):
        op.execute(statement)
    with op.batch_alter_table('human_task', schema=None) as batch_op:
        batch_op.drop_index('ix_human_task_state_order')
        batch_op.drop_index('ix_human_task_completed_by')
    with op.batch_alter_table('human_task_group', schema=None) as batch_op:
        batch_op.drop_index('ix_human_task_group_state')
        batch_op.create_index('ix_human_task_group_group', ['group_name', 'task_id'], unique=False)
        batch_op.drop_column('task_state')
