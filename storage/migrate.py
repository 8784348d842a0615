"""Alembic migrations driven from code, so `pdcaflow init-db` needs no alembic.ini on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

from storage.models import CASE_SEARCH_TABLE

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def is_model_object(name: str | None, kind: str, parent: object = None) -> bool:
    """Alembic's include_name: what the models describe. SQLite's FTS5 tables of the case search
    (storage.models.CASE_SEARCH_DDL) are the database's own, so autogenerate must neither drop them
    nor report them as differences."""
    return not (kind == "table" and (name or "").startswith(CASE_SEARCH_TABLE))


def model_diff(connection: Connection) -> list[Any]:
    """Differences between the database's schema and the models (empty when the migrations match them)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from storage.models import Base

    context = MigrationContext.configure(connection, opts={"include_name": is_model_object})
    return list(compare_metadata(context, Base.metadata))


def upgrade(url: str, revision: str = "head") -> None:
    """Create or upgrade the schema; running it again is a no-op."""
    command.upgrade(alembic_config(url), revision)


def schema_status(engine: Engine) -> tuple[bool, str]:
    """(True, revision) when the database answers and is at the newest migration, else
    (False, why). Raises the driver's error when the database cannot be reached."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    if current == heads:
        return True, ",".join(sorted(current))
    if not current:
        return False, "the database has no schema; run `pdcaflow init-db`"
    return False, (f"the database is at migration {','.join(sorted(current))}, the code expects "
                   f"{','.join(sorted(heads))}; run `pdcaflow init-db`")
