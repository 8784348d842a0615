"""external_task.local_variables: the task's local variables (camunda:inputOutput inputs) when it began
waiting, so a worker's fetch answers them as Camunda does (with the process variables, or alone with
the topic's `localVariables`)

Revision ID: 0020
Revises: 0019
"""
import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("external_task", sa.Column("local_variables", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("external_task", "local_variables")
