"""Storage layer: SQLAlchemy models, database set-up, migrations and read queries."""

from storage.db import Database
from storage.errors import ConcurrentUpdateError, StorageError

# Register every table on the shared metadata (create_all, truncate_all, Alembic comparisons).
import storage.api_tokens  # noqa: E402,F401  isort: skip
import storage.rate_limits  # noqa: E402,F401  isort: skip

__all__ = ["Database", "ConcurrentUpdateError", "StorageError"]
