"""The database a benchmark runs on."""

from __future__ import annotations

from pathlib import Path

from storage.db import Database


def bench_database(url: str | None, tmp: str) -> Database:
    """`url` with its schema created and every table emptied, or (no url) a fresh SQLite file in `tmp`."""
    db = Database(url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
    db.create_all()
    if url:
        db.truncate_all()
    return db
