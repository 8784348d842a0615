"""Database set-up and the unit of work.

SQLite is the default (a file under ``instance/``, WAL, foreign keys on). Write units of work on
SQLite start with ``BEGIN IMMEDIATE`` so concurrent writers queue on the database lock instead of
failing half-way with "database is locked" (and the writers of one process queue on a lock before
that, see ``Database._writers``); on PostgreSQL the optimistic ``version`` column of
``process_instance`` decides which of two concurrent writers wins.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from storage.errors import ConcurrentUpdateError

# storage never reads the environment: callers pass the URL and instance folder from engine.settings
DEFAULT_INSTANCE_DIR = Path("instance")


def default_url(instance_dir: Path | str = DEFAULT_INSTANCE_DIR) -> str:
    """The default database: a SQLite file in `instance_dir` (created if missing)."""
    folder = Path(instance_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / 'pdcaflow.sqlite3').resolve()}"


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (postgres://, postgresql://) and use psycopg 3 for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


BUSY_TIMEOUT_S = 30  # how long a SQLite writer waits for the write lock before "database is locked" (a 503)


def _sqlite_engine(url: str, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # Take transaction control away from pysqlite so we can say BEGIN IMMEDIATE ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")  # BUSY_TIMEOUT_S in ms (a literal: no SQL from strings)
        # 32 MiB page cache per connection instead of SQLite's 2 MB: the inbox reads scattered task
        # rows, and pooled connections keep their cache between requests (bench inbox: query 3x faster)
        cursor.execute("PRAGMA cache_size=-32768")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


IDLE_PING_SECONDS = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling without a round trip per transaction: a pooled connection that
    sat idle longer than IDLE_PING_SECONDS is pinged at checkout and replaced if the server has gone
    (what `pool_pre_ping` does on every checkout; a busy worker checks out several times per request).
    A connection used moments ago is trusted; should the server have gone since, the statement fails
    (a 503), SQLAlchemy invalidates the whole pool, and the next request connects afresh."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection, record):  # type: ignore[no-untyped-def]
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection, record, _proxy):  # type: ignore[no-untyped-def]
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since <= IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool discards this connection and checks out another one
            raise DisconnectionError(str(exc)) from exc


class Database:
    """Engines and session factories for one database URL (without one: SQLite in `instance_dir`)."""

    def __init__(self, url: str | None = None, *, instance_dir: Path | str = DEFAULT_INSTANCE_DIR,
                 echo: bool = False) -> None:
        self.url = normalise_url(url) if url else default_url(instance_dir)
        if self.url.startswith("sqlite"):
            self.engine = _sqlite_engine(self.url, immediate=False)
            self.write_engine = _sqlite_engine(self.url, immediate=True)
        else:
            self.engine = create_engine(self.url, echo=echo, pool_size=10, max_overflow=20)
            _ping_when_idle(self.engine)
            self.write_engine = self.engine
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.write_engine, expire_on_commit=False)
        # SQLite lets one writer in at a time. The writers of this process (request threads, an in-process
        # scheduler) queue on this lock instead of on SQLite's busy handler, which polls with sleeps of up
        # to 100 ms (a lock freed just after a sleep began waits out the whole sleep). Writers of other
        # processes still meet at SQLite's own lock. Re-entrant: a nested write unit meets SQLite as before.
        self._writers = threading.RLock() if self.url.startswith("sqlite") else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; never commits."""
        with self._read() as session:
            try:
                yield session
            finally:
                session.rollback()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any error.

        A lost optimistic-locking race surfaces as ConcurrentUpdateError.
        """
        with self._queued_writer():
            with self._write_session() as session:
                yield session

    @contextmanager
    def _queued_writer(self) -> Iterator[None]:
        """On SQLite, this process's turn to write (see `_writers`); after BUSY_TIMEOUT_S without it, the
        unit goes on to SQLite's lock, whose busy timeout then decides, as without the queue."""
        queued = self._writers is not None and self._writers.acquire(timeout=BUSY_TIMEOUT_S)
        try:
            yield
        finally:
            if queued:
                self._writers.release()

    @contextmanager
    def _write_session(self) -> Iterator[Session]:
        session = self._write()
        try:
            yield session
            session.commit()
        except StaleDataError as exc:
            session.rollback()
            raise ConcurrentUpdateError(
                "The instance was changed by someone else at the same time; reload and try again."
            ) from exc
        except DBAPIError as exc:
            session.rollback()
            # PostgreSQL ended this transaction to break a lock cycle (two units of work each delivering an
            # event to the other's instance) or a serialization conflict: the caller's retry will succeed.
            state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)  # psycopg 3 / 2
            if state in ("40P01", "40001"):
                raise ConcurrentUpdateError(
                    "The instance was changed by someone else at the same time; reload and try again."
                ) from exc
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """`write` for Core statements: the unit's connection."""
        with self.write() as session:
            yield session.connection()

    @contextmanager
    def single_statement(self) -> Iterator[Connection]:
        """For one writing statement that is atomic by itself (no reads before it that it depends on):
        on PostgreSQL it runs in autocommit mode, without the BEGIN and COMMIT round trips; on SQLite
        as a write unit (its BEGIN IMMEDIATE is what orders writers there)."""
        if self.dialect != "postgresql":
            with self.write_connection() as conn:
                yield conn
            return
        with self.write_engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    @contextmanager
    def single_read(self) -> Iterator[Connection]:
        """For one reading statement (e.g. who is calling, on every request): on PostgreSQL in
        autocommit mode, without the BEGIN and ROLLBACK round trips; on SQLite a read transaction on a
        plain connection (no ORM session around it)."""
        if self.dialect != "postgresql":
            with self.engine.connect() as conn:
                yield conn
            return
        with self.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    def create_all(self) -> None:
        """Create the schema directly (tests); production uses Alembic via `init-db`."""
        from storage.models import Base

        Base.metadata.create_all(self.write_engine)

    def truncate_all(self) -> None:
        from storage.models import Base

        with self.write_engine.begin() as conn:
            if self.dialect == "postgresql":
                names = ", ".join(t.name for t in Base.metadata.sorted_tables)
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for table in reversed(Base.metadata.sorted_tables):
                    conn.execute(table.delete())

    def dispose(self) -> None:
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()
