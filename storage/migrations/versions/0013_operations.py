"""operations: histogram buckets for /metrics (timer lateness), and the index that counts the
acknowledgements sent to one address (the per-recipient limit)

Revision ID: 0013
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_histogram",
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("bucket", sa.String(length=20), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", "bucket"),
    )
    op.create_index("ix_notification_outbox_recipient", "notification_outbox",
                    [sa.text("lower(address)"), "kind", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_notification_outbox_recipient", table_name="notification_outbox")
    op.drop_table("metric_histogram")
