"""Migration 0002 (API tokens, complaint references) builds what the models describe and reverts."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from storage.migrate import alembic_config, upgrade
from storage.models import Base


def test_0002_matches_models_and_downgrades(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    assert {"api_token", "complaint_reference"} <= set(inspect(engine).get_table_names())
    command.downgrade(alembic_config(url), "0001")
    assert "api_token" not in set(inspect(engine).get_table_names())
    upgrade(url)
    engine.dispose()
