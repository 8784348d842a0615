"""Migration 0002 (API tokens, complaint references) builds what the models describe and reverts."""

from alembic import command
from sqlalchemy import create_engine, inspect

from storage.migrate import alembic_config, model_diff, upgrade


def test_0002_matches_models_and_downgrades(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        assert model_diff(conn) == []
    assert {"api_token", "complaint_reference"} <= set(inspect(engine).get_table_names())
    command.downgrade(alembic_config(url), "0001")
    assert "api_token" not in set(inspect(engine).get_table_names())
    upgrade(url)
    engine.dispose()
