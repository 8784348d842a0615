"""external tasks (camunda:type="external"): the projection table workers fetch and lock

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "external_task",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("instance_id", sa.String(length=32), nullable=False),
        sa.Column("definition_id", sa.Integer(), nullable=False),
        sa.Column("process_key", sa.String(length=255), nullable=False),
        sa.Column("business_key", sa.String(length=255), nullable=True),
        sa.Column("activity_id", sa.String(length=255), nullable=False),
        sa.Column("activity_name", sa.String(length=255), nullable=True),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("locked_by", sa.String(length=255), nullable=True),
        sa.Column("locked_until", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_details", sa.Text(), nullable=True),
        sa.Column("properties", sa.JSON(), nullable=True),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_external_task_fetch", "external_task", ["state", "topic", "priority"], unique=False)
    op.create_index(op.f("ix_external_task_instance_id"), "external_task", ["instance_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_external_task_instance_id"), table_name="external_task")
    op.drop_index("ix_external_task_fetch", table_name="external_task")
    op.drop_table("external_task")
