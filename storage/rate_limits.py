"""Attempt counters shared by every web worker and process (the one limiter, engine/rate_limits.py:
sign-in, public complaints, status look-ups, customer acknowledgements).

One row per key holds a fixed window: its start and the attempts reserved in it. A reservation is
one upsert that only counts while the window has room, so concurrent attempts can never pass the
limit together (SQLite serializes writers; PostgreSQL's ON CONFLICT locks the row)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, Integer, String, and_, case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
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


def reserve(executor: Session | Connection, key: str, limit: int, window: timedelta, now: datetime) -> int | None:
    """Count one attempt under `key`: the attempts now in its window (1: a new window began), or None
    (nothing counted) when the window is already full. One statement."""
    insert = postgresql.insert if _dialect(executor) == "postgresql" else sqlite.insert
    expired = _RL.c.window_start <= now - window
    stmt = insert(_RL).values(key=key, window_start=now, hits=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[_RL.c.key],
        set_={"hits": case((expired, 1), else_=_RL.c.hits + 1),
              "window_start": case((expired, now), else_=_RL.c.window_start)},
        where=or_(expired, _RL.c.hits < limit),
    ).returning(_RL.c.hits)
    row = executor.execute(stmt).first()
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
