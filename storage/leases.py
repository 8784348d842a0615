"""Leases: the one way work rows (timers, the mail outbox, timer-start schedules) are claimed.

A row is free when `locked_until` is empty or past. Claiming selects free candidates and sets
`locked_by`/`locked_until` in the same transaction: on PostgreSQL the candidates are read with
``FOR UPDATE SKIP LOCKED`` (two workers never wait on or take the same rows); on SQLite the write
unit already holds the database lock (``BEGIN IMMEDIATE``), so select + update are atomic. The
rows this worker now holds are read back, so a row someone else took in between is not returned.
A worker that dies leaves its lease; once `locked_until` has passed another worker claims the row.
A live worker keeps its leases short and renews them while the work runs (`renew`, called by the
scheduler's heartbeat, engine/heartbeat.py), so a killed worker's rows are free again within one
short lease. `locked_until` doubles as "not before" for back-off after a failure.

Hot paths (external tasks' fetch-and-lock) use `claim_statement`: the same rule as one prebuilt,
parameterised ``UPDATE … WHERE key IN (SELECT … LIMIT n [FOR UPDATE SKIP LOCKED]) RETURNING``, so
a claim is one round trip and no statement is built or compiled per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, Update, bindparam, or_, select, update
from sqlalchemy.orm import Session


def free(table: Table, now: datetime | ColumnElement[Any]) -> ColumnElement[bool]:
    return or_(table.c.locked_until.is_(None), table.c.locked_until <= now)


def claim(session: Session, table: Table, *, worker: str, now: datetime, until: datetime,
          where: Sequence[ColumnElement[bool]], order_by: Sequence[Any], limit: int,
          key: str = "id", columns: Sequence[str] = ()) -> list[Any]:
    """Lease up to `limit` free rows matching `where` to `worker` until `until`.

    Returns the rows now held, as tuples of (`key`, *columns), in `order_by` order.
    """
    pk = table.c[key]
    is_free = free(table, now)
    stmt = select(pk).where(*where, is_free).order_by(*order_by).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    ids = list(session.scalars(stmt))
    if not ids:
        return []
    session.execute(update(table).where(pk.in_(ids), *where, is_free).values(locked_by=worker, locked_until=until))
    held = select(pk, *[table.c[c] for c in columns]).where(
        pk.in_(ids), table.c.locked_by == worker, table.c.locked_until == until).order_by(*order_by)
    return [tuple(r) for r in session.execute(held)]


def claim_statement(table: Table, *, dialect: str, where: Sequence[ColumnElement[bool]], order_by: Sequence[Any],
                    returning: Sequence[str | ColumnElement[Any]], key: str = "id") -> Update:
    """`claim` as one statement, to build once and run many times. Parameters: `worker`, `now`,
    `until`, `limit` (and whatever `where` binds; not named like a column of `table`). Returns the
    held rows' `returning` columns (names of `table`'s columns, or expressions, e.g. a correlated
    subquery reading a related row) in no particular order: sort them. On PostgreSQL the candidates
    are locked with SKIP LOCKED and re-checked against `where` once locked (READ COMMITTED), so a row
    another worker took in between is skipped, never taken twice; on SQLite the write unit holds the
    database lock."""
    pk = table.c[key]
    candidates = (select(pk).where(*where, free(table, bindparam("now")))
                  .order_by(*order_by).limit(bindparam("limit")))
    if dialect == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    return (update(table).where(pk.in_(candidates.scalar_subquery()))
            .values(locked_by=bindparam("worker"), locked_until=bindparam("until"))
            .returning(*[table.c[c] if isinstance(c, str) else c for c in returning]))


def renew(session: Session, table: Table, workers: Sequence[str], *, now: datetime, until: datetime) -> int:
    """Extend the live leases `workers` hold in `table` to `until` (never shortening one, never
    reviving an expired one: a row whose lease lapsed may belong to someone else by now)."""
    result = session.execute(update(table).where(table.c.locked_by.in_(list(workers)), table.c.locked_until > now,
                                                 table.c.locked_until < until).values(locked_until=until))
    return result.rowcount or 0


def release(session: Session, table: Table, keys: Sequence[Any], worker: str, *,
            where: Sequence[ColumnElement[bool]] = (), key: str = "id", **values: Any) -> int:
    """Give leases back (optionally setting more columns); only rows `worker` still holds."""
    if not keys:
        return 0
    pk = table.c[key]
    result = session.execute(update(table).where(pk.in_(list(keys)), table.c.locked_by == worker, *where)
                             .values(locked_by=None, locked_until=None, **values))
    return result.rowcount or 0
