"""process schedules for timer start events

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "process_schedule",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("definition_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("expression", sa.Text(), nullable=False),
        sa.Column("next_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("interval_seconds", sa.Float(), nullable=True),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("started", sa.Integer(), nullable=False),
        sa.Column("locked_by", sa.String(length=120), nullable=True),
        sa.Column("locked_until", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_process_schedule_due", "process_schedule", ["next_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_process_schedule_due", table_name="process_schedule")
    op.drop_table("process_schedule")
