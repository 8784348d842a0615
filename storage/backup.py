"""Backup and restore of the SQLite default with SQLite's online backup API.

The API copies the database page by page under SQLite's own locking, so a backup taken while the
server and schedulers write is consistent (a plain file copy of a WAL database is not). Everything
PDCA Flow keeps is in the database (processes, instances, users, the outbox, files attached to
cases), so the one file is the whole backup; the secret key in the instance folder is not in it.
PostgreSQL is backed up with its own tools (pg_dump / pg_restore): `sqlite_path` refuses it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

PAGES_PER_STEP = 1024  # copy in steps, so writers are not held up for the whole copy


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and what to do instead."""


def sqlite_path(url: str) -> Path:
    """The database file of an SQLite URL; BackupError for any other database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise BackupError(
            f"pdcaflow backup/restore handle the SQLite default; this database is {parsed.get_backend_name()}. "
            "Use PostgreSQL's tools: pg_dump --format=custom --file=pdcaflow.dump \"$DATABASE_URL\" to back up, "
            "pg_restore --clean --if-exists --no-owner --dbname=\"$DATABASE_URL\" pdcaflow.dump to restore "
            "(README: Running in production).")
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("an in-memory database cannot be backed up")
    return Path(parsed.database)


def _check(conn: sqlite3.Connection, what: str) -> str:
    """The schema revision of a database that passes SQLite's integrity check; BackupError otherwise."""
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{what} is not a PDCA Flow database: {exc}") from None
    if result != "ok":
        raise BackupError(f"{what} failed SQLite's integrity check: {result}")
    if revision is None:
        raise BackupError(f"{what} is not a PDCA Flow database (no schema revision)")
    return str(revision[0])


def backup(url: str, target: Path) -> str:
    """Copy the live database to `target` (a new file, written atomically); returns its schema revision."""
    source = sqlite_path(url)
    if not source.exists():
        raise BackupError(f"there is no database at {source} (run pdcaflow init-db)")
    if target.exists():
        raise BackupError(f"{target} exists; choose a new file name (a backup never overwrites)")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(partial)
    try:
        src.backup(dst, pages=PAGES_PER_STEP)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        revision = _check(dst, "the copy")
    finally:
        dst.close()
        src.close()
    os.replace(partial, target)
    return revision


def restore(url: str, source: Path) -> str:
    """Replace the configured database's contents with the backup at `source` (checked first);
    returns the backup's schema revision. The copy goes through SQLite's locking, so a process that
    still has the database open sees either the old or the restored contents, never a mix."""
    target = sqlite_path(url)
    if not source.is_file():
        raise BackupError(f"{source} is not a file")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        revision = _check(src, str(source))
        target.parent.mkdir(parents=True, exist_ok=True)
        dst = sqlite3.connect(target, timeout=30)
        try:
            src.backup(dst)  # one step: the whole database under one lock
        finally:
            dst.close()
    finally:
        src.close()
    return revision
