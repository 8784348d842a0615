"""KPI speed: covering indexes, scope columns copied onto action/task facts, action_rollup

The one-year dashboard over 100,000 complaints (issue 7) read most KPI figures through indexes
that made SQLite look up every table row, and joined 300,000 actions and 100,000 tasks to their
complaint. This adds covering indexes on complaint_fact (and indexes led by GROUP BY keys or by
the value whose percentiles are read), copies of the instance's kind, process_key and
instance_status onto action_fact (kind onto task_fact) kept by the refresh, with indexes to count
them without the join, and action_rollup (actions per kind, process, status and due date, kept by the
refresh). Existing rows are filled here; action/task rows still NULL are joined.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = "0005"
branch_labels = None
depends_on = None

COMPLAINT_INDEXES = {
    'ix_complaint_fact_received_cov': ['kind', 'received_at', 'instance_status', 'valid', 'status', 'acknowledged_at',
                                       'ack_seconds', 'closed_at', 'category', 'product', 'instance_id', 'process_key'],
    'ix_complaint_fact_closed_cov': ['kind', 'closed_at', 'close_seconds', 'effective_first_check', 'rca_loops',
                                     'process_key'],
    'ix_complaint_fact_survey_cov': ['closed_at', 'csat', 'nps', 'kind', 'process_key'],
    'ix_complaint_fact_first_closed': ['kind', 'category', 'product', 'closed_at'],
    'ix_complaint_fact_recurrence_cov': ['kind', 'category', 'product', 'received_at', 'valid', 'closed_at',
                                         'instance_id', 'process_key'],
    'ix_complaint_fact_root_cause': ['kind', 'received_at', 'root_cause', 'process_key'],
    # the same columns with the GROUP BY keys first, for long periods (engine.kpis._long)
    'ix_complaint_fact_root_cause_order': ['kind', 'root_cause', 'received_at', 'process_key'],
    'ix_complaint_fact_severity': ['severity'],  # the filter form's distinct severities
    'ix_complaint_fact_category_order': ['kind', 'category', 'received_at', 'process_key'],
    # percentiles walk these in value order (engine.kpis._percentiles)
    'ix_complaint_fact_ack_order': ['kind', 'ack_seconds', 'received_at', 'process_key'],
    'ix_complaint_fact_close_order': ['kind', 'close_seconds', 'closed_at', 'process_key'],
    'ix_complaint_fact_survey_order': ['csat', 'nps', 'closed_at', 'kind', 'process_key'],
}
ACTION_INDEXES = {
    'ix_action_fact_kind_due': ['kind', 'due_on', 'done_on', 'instance_status'],
    'ix_action_fact_kind_open': ['kind', 'done_on', 'instance_status', 'due_on'],
    'ix_action_fact_process_due': ['process_key', 'due_on', 'done_on', 'instance_status'],
}
TASK_INDEXES = {
    'ix_task_fact_kind_state': ['kind', 'state', 'completed_at', 'process_key', 'spec_id', 'seconds', 'name'],
    'ix_task_fact_kind_step': ['kind', 'state', 'process_key', 'spec_id', 'completed_at', 'seconds', 'name'],
}


def upgrade() -> None:
    with op.batch_alter_table('action_fact') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('process_key', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('instance_status', sa.String(length=16), nullable=True))
    with op.batch_alter_table('task_fact') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=16), nullable=True))
    for column in ('kind', 'process_key', 'instance_status'):
        op.execute(f"UPDATE action_fact SET {column} = (SELECT c.{column} FROM complaint_fact c "
                   "WHERE c.instance_id = action_fact.instance_id)")
    op.execute("UPDATE task_fact SET kind = (SELECT c.kind FROM complaint_fact c "
               "WHERE c.instance_id = task_fact.instance_id)")
    for table, indexes in (('complaint_fact', COMPLAINT_INDEXES), ('action_fact', ACTION_INDEXES),
                           ('task_fact', TASK_INDEXES)):
        for name, columns in indexes.items():
            op.create_index(name, table, columns, unique=False)
    op.create_table(
        'action_rollup',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('process_key', sa.String(length=255), nullable=False),
        sa.Column('instance_status', sa.String(length=16), nullable=False),
        sa.Column('due_on', sa.Date(), nullable=False),
        sa.Column('actions', sa.Integer(), nullable=False),
        sa.Column('done', sa.Integer(), nullable=False),
        sa.Column('on_time', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('kind', 'process_key', 'instance_status', 'due_on', name='uq_action_rollup_key'),
    )
    op.create_index('ix_action_rollup_process_due', 'action_rollup', ['process_key', 'due_on'], unique=False)
    op.execute("INSERT INTO action_rollup (kind, process_key, instance_status, due_on, actions, done, on_time) "
               "SELECT kind, process_key, instance_status, due_on, count(*), "
               "sum(CASE WHEN done_on IS NOT NULL THEN 1 ELSE 0 END), "
               "sum(CASE WHEN done_on <= due_on THEN 1 ELSE 0 END) FROM action_fact "
               "WHERE kind IS NOT NULL AND due_on IS NOT NULL GROUP BY kind, process_key, instance_status, due_on")


def downgrade() -> None:
    op.drop_index('ix_action_rollup_process_due', table_name='action_rollup')
    op.drop_table('action_rollup')
    for table, indexes in (('task_fact', TASK_INDEXES), ('action_fact', ACTION_INDEXES),
                           ('complaint_fact', COMPLAINT_INDEXES)):
        for name in indexes:
            op.drop_index(name, table_name=table)
    with op.batch_alter_table('task_fact') as batch:
        batch.drop_column('kind')
    with op.batch_alter_table('action_fact') as batch:
        batch.drop_column('instance_status')
        batch.drop_column('process_key')
        batch.drop_column('kind')
