"""ix_instance_started: /engine-rest's process-instance list is newest first (started_at, then id); the
index gives its first pages by a backward range instead of a sort of every instance row

Revision ID: 0022
Revises: 0021
"""
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_instance_started", "process_instance", ["started_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_instance_started", table_name="process_instance")
