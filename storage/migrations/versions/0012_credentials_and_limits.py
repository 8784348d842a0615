"""credential generations (sessions, API tokens) and the shared sign-in attempt counters

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("token_generation", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.add_column(sa.Column("generation", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "rate_limit",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("window_start", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("rate_limit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rate_limit_window_start"), ["window_start"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rate_limit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rate_limit_window_start"))
    op.drop_table("rate_limit")
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.drop_column("generation")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_column("token_generation")
        batch_op.drop_column("session_generation")
