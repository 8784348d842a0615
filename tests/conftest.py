"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL comes from PDCAFLOW_TEST_PG_URL, or a throwaway cluster started for the session.
When neither is possible the PostgreSQL variants skip, unless PDCAFLOW_REQUIRE_ALL=1 (CI),
which turns the skip into a failure.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text
from werkzeug.serving import make_server

from engine import settings as engine_settings
from engine.runtime import Actor, Runtime
from storage.db import Database
from storage.migrate import upgrade

FIXTURES = Path(__file__).parent / "fixtures"
PROCESSES = Path(__file__).parent.parent / "processes"
REQUIRE_ALL = os.environ.get("PDCAFLOW_REQUIRE_ALL") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every test that touches a database (the `db` fixture, directly or through `runtime`/`app`) is
    # marked `db`, so the fast tier (`make test-fast`: tests/unit -m "not db") stays database-free.
    for item in items:
        if "db" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


def skip_or_fail(reason: str) -> None:
    if REQUIRE_ALL:
        pytest.fail(f"{reason} (PDCAFLOW_REQUIRE_ALL=1 forbids skipping)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Settings are read from the environment once per process and cached: every test starts
    uncached, so a test's monkeypatched variables are what it sees."""
    engine_settings.reset()
    yield
    engine_settings.reset()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str | None]:
    url = os.environ.get("PDCAFLOW_TEST_PG_URL")
    if url:
        yield url
        return
    from tests.pg_cluster import Cluster

    try:
        cluster = Cluster()
        url = cluster.start()
    except Exception as exc:  # no server binaries, or they would not start
        pytest.pdcaflow_pg_error = str(exc)  # type: ignore[attr-defined]
        yield None
        return
    try:
        yield url
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_database(pg_server_url: str | None) -> Iterator[str | None]:
    """A fresh database for this session with the schema built by the Alembic migrations."""
    if pg_server_url is None:
        yield None
        return
    name = f"pdcaflow_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = pg_server_url.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def make_db(backend: str, tmp_path: Path, pg_database: str | None) -> Database:
    if backend == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'test.sqlite3'}")
        db.create_all()
        return db
    if pg_database is None:
        skip_or_fail("PostgreSQL is not available: " + getattr(pytest, "pdcaflow_pg_error", "no server"))
    db = Database(pg_database)
    db.truncate_all()
    return db


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path, pg_database: str | None) -> Iterator[Database]:
    database = make_db(request.param, tmp_path, pg_database)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def runtime(db: Database) -> Runtime:
    return Runtime(db)


@pytest.fixture
def lead() -> Actor:
    return Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead")


@pytest.fixture
def reviewer() -> Actor:
    return Actor("rita.reviewer", frozenset({"reviewers", "employee"}), "employee")


@pytest.fixture
def outsider() -> Actor:
    return Actor("otto.outsider", frozenset({"purchasing"}), "employee")


@contextmanager
def serving(app: object) -> Iterator[str]:
    """`app` over real HTTP on a free local port, in a thread, while the block runs; yields its base URL."""
    http = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()


def wait_for_a_lock_wait(db: Database, what: str, seconds: float = 30) -> None:
    """Block until some session of `db`'s PostgreSQL database waits for a lock (a test forcing an
    interleaving: the other thread has reached the statement that must wait); fail naming `what`."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with db.engine.connect() as conn:
            if conn.scalar(text("SELECT count(*) FROM pg_stat_activity "
                                "WHERE wait_event_type = 'Lock' AND datname = current_database()")):
                return
        time.sleep(0.02)
    pytest.fail(f"{what} never waited for the lock")


@contextmanager
def sql_statements(db: Database) -> Iterator[list[str]]:
    """Every SQL statement sent to the database (read and write engines) inside the block."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(" ".join(statement.split()))

    engines = {id(e): e for e in (db.engine, db.write_engine)}.values()
    for e in engines:
        event.listen(e, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for e in engines:
            event.remove(e, "before_cursor_execute", record)


def start_racing(db: Database, thread: threading.Thread, what: str, sqlite_pause: float = 0.3) -> None:
    """Start `thread` (another unit of work) while the caller's unit of work holds its locks; return when
    it waits for one of them or has committed (PostgreSQL), or after `sqlite_pause` (SQLite: it waits for
    this process's writer turn)."""
    thread.start()
    if db.dialect != "postgresql":
        thread.join(sqlite_pause)
        return
    try:
        wait_for_a_lock_wait(db, what, seconds=3)
    except BaseException:  # noqa: BLE001 - it did not wait: it has committed by now
        thread.join(30)
