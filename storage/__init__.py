"""Storage layer: SQLAlchemy models, database set-up, migrations and read queries."""

from storage.db import Database
from storage.errors import ConcurrentUpdateError, StorageError

__all__ = ["Database", "ConcurrentUpdateError", "StorageError"]
