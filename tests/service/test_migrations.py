"""The Alembic migrations build exactly the schema the models describe."""

from sqlalchemy import create_engine, inspect

from storage.migrate import model_diff, upgrade
from storage.models import CASE_SEARCH_TABLE


def test_migrations_match_models_and_are_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    upgrade(url)
    upgrade(url)  # second run is a no-op
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = model_diff(conn)  # the case search's FTS5 tables are the database's own
    assert diff == []
    assert {"process_instance", "human_task", "timer", "incident", "audit_event"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_postgres_schema_comes_from_migrations(db):
    from storage.models import HumanTask

    inspector = inspect(db.engine)
    indexes = {ix["name"] for ix in inspector.get_indexes(HumanTask.__tablename__)}
    assert "ix_human_task_state_due" in indexes


def test_case_search_index_comes_from_migrations(db):
    """Migration 0016: the FTS5 table on SQLite, the pg_trgm GIN index on PostgreSQL."""
    inspector = inspect(db.engine)
    if db.dialect == "sqlite":
        assert CASE_SEARCH_TABLE in inspector.get_table_names()
    else:
        assert "ix_instance_case_text" in {ix["name"] for ix in inspector.get_indexes("process_instance")}
