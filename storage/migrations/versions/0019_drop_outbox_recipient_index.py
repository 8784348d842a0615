"""drop ix_notification_outbox_recipient: the per-recipient limit on customer acknowledgements counts
in the shared rate-limit table since round 2 (engine/customer_mail.py, engine/rate_limits.py), so no
query reads the outbox by address any more and every outbox insert kept the index for nothing

Revision ID: 0019
Revises: 0018
"""
import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_notification_outbox_recipient", table_name="notification_outbox")


def downgrade() -> None:
    op.create_index("ix_notification_outbox_recipient", "notification_outbox",
                    [sa.text("lower(address)"), "kind", "created_at"])
