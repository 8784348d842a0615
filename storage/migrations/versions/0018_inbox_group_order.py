"""inbox order on the group rows: human_task_group copies the task's due date, priority and creation
time (kept by triggers, as task_state since 0005), so the "my groups" tab in inbox order and the
overdue count of one's groups are index-only ranges of ix_human_task_group_inbox (replaces
ix_human_task_group_state)

Revision ID: 0018
Revises: 0017
"""
import sqlalchemy as sa
from alembic import op

import storage.models
from storage.models import DROP_TASK_STATE_TRIGGERS, TASK_GROUP_TRIGGERS, TASK_STATE_TRIGGERS

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_BACKFILL = {
    "sqlite": "UPDATE human_task_group SET (task_state, task_due_at, task_priority, task_created_at) = "
              "(SELECT state, due_at, priority, created_at FROM human_task WHERE id = human_task_group.task_id)",
    "postgresql": "UPDATE human_task_group SET task_state = t.state, task_due_at = t.due_at, "
                  "task_priority = t.priority, task_created_at = t.created_at "
                  "FROM human_task AS t WHERE t.id = human_task_group.task_id",
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in DROP_TASK_STATE_TRIGGERS.get(dialect, []):  # same names, replaced below
        op.execute(statement)
    with op.batch_alter_table("human_task_group", schema=None) as batch_op:
        batch_op.add_column(sa.Column("task_due_at", storage.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("task_priority", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("task_created_at", storage.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_index("ix_human_task_group_state")
        batch_op.create_index("ix_human_task_group_inbox", ["group_name", "task_state", "task_id", "task_due_at",
                                                            "task_priority", "task_created_at"], unique=False)
    if dialect in _BACKFILL:
        op.execute(_BACKFILL[dialect])
    for statement in TASK_GROUP_TRIGGERS.get(dialect, []):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in DROP_TASK_STATE_TRIGGERS.get(dialect, []):
        op.execute(statement)
    with op.batch_alter_table("human_task_group", schema=None) as batch_op:
        batch_op.drop_index("ix_human_task_group_inbox")
        batch_op.create_index("ix_human_task_group_state", ["group_name", "task_state", "task_id"], unique=False)
        batch_op.drop_column("task_created_at")
        batch_op.drop_column("task_priority")
        batch_op.drop_column("task_due_at")
    for statement in TASK_STATE_TRIGGERS.get(dialect, []):
        op.execute(statement)
