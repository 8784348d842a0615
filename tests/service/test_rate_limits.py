"""The one attempt limiter (engine/rate_limits.py) on SQLite and PostgreSQL: fixed windows counted
in the database, all-or-none reservations, a precise Retry-After, and the purge of windows that are
over limited to their own scope."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine import clock
from engine.rate_limits import Limit, RateLimitedError, take, take_all
from storage.db import Database
from storage.rate_limits import RateLimit

TEN_MINUTES = timedelta(minutes=10)


@pytest.fixture(autouse=True)
def _clock():
    yield
    clock.reset()


def _keys(db: Database) -> set[str]:
    with db.read() as session:
        return set(session.scalars(select(RateLimit.key)))


def test_a_full_window_refuses_with_the_time_left_and_a_new_window_allows_again(db):
    limit = Limit("complaint", 2, TEN_MINUTES)
    take(db, limit, "10.0.0.1", "no")
    take(db, limit, "10.0.0.1", "no")
    clock.advance(timedelta(minutes=4))
    with pytest.raises(RateLimitedError) as refused:
        take(db, limit, "10.0.0.1", "too many complaints")
    assert refused.value.message == "too many complaints" and refused.value.http_status == 429
    assert 359 <= refused.value.retry_after <= 360  # six of the ten minutes are left
    take(db, limit, "10.0.0.2", "no")  # another subject has its own window
    clock.advance(timedelta(minutes=6, seconds=1))
    take(db, limit, "10.0.0.1", "no")  # the window is over


def test_parallel_attempts_never_pass_the_limit_together(db):
    limit = Limit("status", 5, TEN_MINUTES)

    def attempt(_: int) -> bool:
        try:
            take(db, limit, "10.0.0.1", "no")
        except RateLimitedError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        allowed = list(pool.map(attempt, range(30)))
    assert allowed.count(True) == 5


def test_take_all_counts_every_slot_or_none(db):
    narrow, wide = Limit("user", 1, TEN_MINUTES), Limit("addr", 10, TEN_MINUTES)
    take_all(db, [(narrow, "a|rita"), (wide, "a")], "no")
    with pytest.raises(RateLimitedError):
        take_all(db, [(wide, "a"), (narrow, "a|rita")], "no")  # the wide slot is given back with the refusal
    with db.read() as session:
        assert session.get(RateLimit, "addr|a").hits == 1


def test_limits_are_shared_by_two_connections_to_one_database(db):
    """Two processes (here two connection pools) on one database count together."""
    other = Database(db.url)
    try:
        limit = Limit("complaint", 3, TEN_MINUTES)
        for database in (db, other, db):
            take(database, limit, "10.0.0.1", "no")
        with pytest.raises(RateLimitedError):
            take(other, limit, "10.0.0.1", "no")
    finally:
        other.dispose()


def test_windows_that_are_over_are_purged_within_their_scope_only(db):
    """A new window drops its scope's finished windows, never another scope's (a five-minute sign-in
    window must not purge a ten-minute complaint window that is still running)."""
    complaints, signin = Limit("complaint", 5, TEN_MINUTES), Limit("user", 5, timedelta(minutes=5))
    take(db, complaints, "10.0.0.1", "no")
    take(db, signin, "10.0.0.1|rita", "no")
    clock.advance(timedelta(minutes=6))
    take(db, signin, "10.0.0.2|rob", "no")  # rita's sign-in window is over; the complaint window is not
    assert _keys(db) == {"complaint|10.0.0.1", "user|10.0.0.2|rob"}
    clock.advance(timedelta(minutes=5))
    take(db, complaints, "10.0.0.3", "no")
    assert _keys(db) == {"complaint|10.0.0.3", "user|10.0.0.2|rob"}


def test_a_check_is_one_statement(db):
    """The cost a limited request pays: one upsert (plus BEGIN/COMMIT on SQLite); the purge runs only
    when a key starts a new window."""
    from sqlalchemy import event

    limit = Limit("status", 5, TEN_MINUTES)
    take(db, limit, "10.0.0.1", "no")  # opens the window (and purges the scope)
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement.split()[0].upper())

    event.listen(db.write_engine, "before_cursor_execute", record)
    try:
        take(db, limit, "10.0.0.1", "no")
        allowed = list(statements)
        statements.clear()
        for _ in range(3):
            take(db, limit, "10.0.0.1", "no")
        statements.clear()
        with pytest.raises(RateLimitedError):
            take(db, limit, "10.0.0.1", "no")
        refused = list(statements)
    finally:
        event.remove(db.write_engine, "before_cursor_execute", record)
    assert [s for s in allowed if s not in ("BEGIN", "COMMIT", "ROLLBACK")] == ["INSERT"]
    assert [s for s in refused if s not in ("BEGIN", "COMMIT", "ROLLBACK")] == ["INSERT", "SELECT"]  # + Retry-After
