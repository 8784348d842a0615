"""KPI speed: complaint_rollup, complaint figures per UTC day and month of receipt / closure, and
step_rollup, completed human tasks per step and UTC day (issue 15:
the one-year dashboard over 100,000 complaints reads a few thousand rollup rows instead of scanning the
facts). Created empty: the next refresh counts it from complaint_fact and stamps it with the rules;
until then the figures are read from complaint_fact as before.

Revision ID: 0017
Revises: 0016
"""
import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "complaint_rollup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("basis", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("process_key", sa.String(length=255), nullable=False),
        sa.Column("instance_status", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("measure", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_complaint_rollup_kind", "complaint_rollup",
                    ["basis", "kind", "measure", "day", "instance_status"], unique=False)
    op.create_index("ix_complaint_rollup_process", "complaint_rollup",
                    ["basis", "process_key", "measure", "day", "instance_status"], unique=False)
    op.create_index("ix_complaint_rollup_measure", "complaint_rollup", ["basis", "measure", "day"], unique=False)
    op.create_table(
        "step_rollup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("process_key", sa.String(length=255), nullable=False),
        sa.Column("spec_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False),
        sa.Column("seconds_sum", sa.Float(), nullable=False),
        sa.Column("seconds_n", sa.Integer(), nullable=False),
        sa.Column("seconds_max", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_step_rollup_kind", "step_rollup", ["kind", "day"], unique=False)
    op.create_index("ix_step_rollup_process", "step_rollup", ["process_key", "day"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_step_rollup_process", table_name="step_rollup")
    op.drop_index("ix_step_rollup_kind", table_name="step_rollup")
    op.drop_table("step_rollup")
    op.drop_index("ix_complaint_rollup_measure", table_name="complaint_rollup")
    op.drop_index("ix_complaint_rollup_process", table_name="complaint_rollup")
    op.drop_index("ix_complaint_rollup_kind", table_name="complaint_rollup")
    op.drop_table("complaint_rollup")
