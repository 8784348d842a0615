"""process_instance.variable_types: the Camunda types of variables set through /engine-rest that their
values cannot tell (a small Long or Short, a Date kept as text), so every /engine-rest read answers
the type the variable was sent with (engine/runtime/variable_types.py)

Revision ID: 0021
Revises: 0020
"""
import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("process_instance", sa.Column("variable_types", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("process_instance", "variable_types")
