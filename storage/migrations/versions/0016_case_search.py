"""case columns and the case search index: process_instance.case_title, case_summary, case_text;
SQLite FTS5 (trigram) over case_text kept by triggers, PostgreSQL pg_trgm GIN index

Existing instances get a search text made of their business key and stored variables (so they are
found at once); their title and summary are filled by their next save, and the inbox computes them
meanwhile (engine/cases.py).

Revision ID: 0016
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

from storage.models import CASE_SEARCH_DDL, DROP_CASE_SEARCH_DDL

revision = "0016"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("process_instance", schema=None) as batch_op:
        batch_op.add_column(sa.Column("case_title", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("case_summary", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("case_text", sa.Text(), nullable=True))
    data_text = "CAST(data AS TEXT)" if dialect == "postgresql" else "data"
    op.execute(f"UPDATE process_instance SET case_text = "
               f"lower(coalesce(business_key, '') || ' ' || coalesce({data_text}, ''))")
    for statement in CASE_SEARCH_DDL.get(dialect, []):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in DROP_CASE_SEARCH_DDL.get(dialect, []):
        op.execute(statement)
    with op.batch_alter_table("process_instance", schema=None) as batch_op:
        batch_op.drop_column("case_text")
        batch_op.drop_column("case_summary")
        batch_op.drop_column("case_title")
