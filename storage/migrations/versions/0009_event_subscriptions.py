"""event subscriptions: message_subscription becomes event_subscription (messages and signals, and
the message/signal start events of deployed processes)

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message_subscription") as batch:
        batch.drop_index("ix_message_subscription_name")
        batch.drop_index("ix_message_subscription_instance_id")
    op.rename_table("message_subscription", "event_subscription")
    with op.batch_alter_table("event_subscription") as batch:
        batch.add_column(sa.Column("kind", sa.String(12), nullable=False, server_default="message"))
        batch.add_column(sa.Column("process_key", sa.String(255), nullable=True))
        batch.alter_column("instance_id", existing_type=sa.String(32), nullable=True)
        batch.create_index("ix_event_subscription_name", ["kind", "name", "correlation"])
        batch.create_index("ix_event_subscription_instance_id", ["instance_id"])
        batch.create_index("ix_event_subscription_process_key", ["process_key"])


def downgrade() -> None:
    op.execute("DELETE FROM event_subscription WHERE kind <> 'message' OR instance_id IS NULL")
    with op.batch_alter_table("event_subscription") as batch:
        batch.drop_index("ix_event_subscription_process_key")
        batch.drop_index("ix_event_subscription_instance_id")
        batch.drop_index("ix_event_subscription_name")
        batch.alter_column("instance_id", existing_type=sa.String(32), nullable=False)
        batch.drop_column("process_key")
        batch.drop_column("kind")
    op.rename_table("event_subscription", "message_subscription")
    with op.batch_alter_table("message_subscription") as batch:
        batch.create_index("ix_message_subscription_name", ["name", "correlation"])
        batch.create_index("ix_message_subscription_instance_id", ["instance_id"])
