"""failed timer starts: attempts, last error and incident time on process_schedule

A scheduled start that fails keeps its slot and is retried with back-off; after the last attempt
the schedule is in incident (`failed_at`) until a quality lead re-arms it.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("process_schedule", sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("process_schedule", sa.Column("last_error", sa.Text(), nullable=True))
    op.add_column("process_schedule", sa.Column("failed_at", storage.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("process_schedule") as batch:
        batch.drop_column("failed_at")
        batch.drop_column("last_error")
        batch.drop_column("attempts")
