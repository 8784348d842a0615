"""Attempt counters shared by every web worker and process (the one limiter, engine/rate_limits.py:
sign-in, public complaints, status look-ups, customer acknowledgements).

One row per key holds a fixed window: its start and the attempts reserved in it. A reservation is
one upsert that only counts while the window has room, so concurrent attempts can never pass the
limit together (SQLite serializes writers; PostgreSQL's ON CONFLICT locks the row)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, Integer, String, and_, bindparam, delete, select, text, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from storage.models import Base


class RateLimit(Base):
    __tablename__ = "rate_limit"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(index=True)
    hits: Mapped[int] = mapped_column(Integer)


_RL = RateLimit.__table__


def _dialect(executor: Session | Connection) -> str:
    return executor.dialect.name if isinstance(executor, Connection) else executor.get_bind().dialect.name


# The reservation upsert, written once for both dialects (SQLite and PostgreSQL spell ON CONFLICT …
# RETURNING alike) as text: SQLAlchemy compiles a dialect insert() anew on every execution, which cost
# more than running it; a text statement is compiled once. Every SET expression reads the old row.
_RESERVE = text(
    'INSERT INTO rate_limit ("key", window_start, hits) VALUES (:key, :now, 1) '
    'ON CONFLICT ("key") DO UPDATE SET '
    "window_start = CASE WHEN rate_limit.window_start <= :expired_before THEN :now ELSE rate_limit.window_start END, "
    "hits = CASE WHEN rate_limit.window_start <= :expired_before THEN 1 ELSE rate_limit.hits + 1 END "
    "WHERE rate_limit.window_start <= :expired_before OR rate_limit.hits < :limit "
    "RETURNING rate_limit.hits"
).bindparams(bindparam("now", type_=_RL.c.window_start.type), bindparam("expired_before", type_=_RL.c.window_start.type),
             bindparam("key", type_=String()), bindparam("limit", type_=Integer()))


def reserve(executor: Session | Connection, key: str, limit: int, window: timedelta, now: datetime) -> int | None:
    """Count one attempt under `key`: the attempts now in its window (1: a new window began), or None
    (nothing counted) when the window is already full. One statement."""
    row = executor.execute(_RESERVE, {"key": key, "now": now, "expired_before": now - window, "limit": limit}).first()
    return None if row is None else int(row[0])


def window_start(executor: Session | Connection, key: str) -> datetime | None:
    """When the key's current window began (None: no window), for a refusal's Retry-After."""
    return executor.execute(select(_RL.c.window_start).where(_RL.c.key == key)).scalar()


def forget(session: Session, key: str) -> None:
    """Drop a key's window (a successful sign-in clears its user's failures)."""
    session.execute(delete(_RL).where(_RL.c.key == key))


def give_back(session: Session, key: str) -> None:
    """Return one reserved attempt to the key's current window."""
    session.execute(update(_RL).where(and_(_RL.c.key == key, _RL.c.hits > 0)).values(hits=_RL.c.hits - 1))


def purge(session: Session, prefix: str, before: datetime) -> int:
    """Delete the windows of keys starting with `prefix` that started before `before` (all of them
    over). Rows another transaction holds are skipped (PostgreSQL's SKIP LOCKED), so a purge never
    waits on a reservation nor joins a lock cycle with another purge; the next purge takes them."""
    over = and_(_RL.c.key.startswith(prefix, autoescape=True), _RL.c.window_start < before)
    if _dialect(session) == "postgresql":
        over = and_(over, _RL.c.key.in_(select(_RL.c.key).where(over).with_for_update(skip_locked=True)))
    return session.execute(delete(_RL).where(over)).rowcount or 0
