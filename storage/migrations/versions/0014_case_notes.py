"""case notes: comments and attachments on a case (attachments stored in the database); the record
a task is about (human_task.context)

Revision ID: 0014
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_comment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.String(length=32), nullable=False),
        sa.Column("author", sa.String(length=80), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_comment_instance", "case_comment", ["instance_id", "id"])
    op.create_table(
        "case_attachment",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("instance_id", sa.String(length=32), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=120), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uploaded_by", sa.String(length=80), nullable=True),
        sa.Column("uploaded_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_attachment_instance", "case_attachment", ["instance_id", "uploaded_at"])
    op.add_column("human_task", sa.Column("context", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("human_task", "context")
    op.drop_index("ix_case_attachment_instance", table_name="case_attachment")
    op.drop_table("case_attachment")
    op.drop_index("ix_case_comment_instance", table_name="case_comment")
    op.drop_table("case_comment")
