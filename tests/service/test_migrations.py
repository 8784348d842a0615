"""The Alembic migrations build exactly the schema the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from storage.migrate import upgrade
from storage.models import Base


def test_migrations_match_models_and_are_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    upgrade(url)
    upgrade(url)  # second run is a no-op
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert {"process_instance", "human_task", "timer", "incident", "audit_event"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_postgres_schema_comes_from_migrations(db):
    from storage.models import HumanTask

    inspector = inspect(db.engine)
    indexes = {ix["name"] for ix in inspector.get_indexes(HumanTask.__tablename__)}
    assert "ix_human_task_state_due" in indexes
