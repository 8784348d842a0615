"""Attempt counters shared by every web worker and process (sign-in limits, engine/signin.py).

One row per key holds a fixed window: its start and the attempts reserved in it. A reservation is
one upsert that only counts while the window has room, so concurrent attempts can never pass the
limit together (SQLite serializes writers; PostgreSQL's ON CONFLICT locks the row)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Integer, String, and_, case, delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from storage.models import Base


class RateLimit(Base):
    __tablename__ = "rate_limit"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(index=True)
    hits: Mapped[int] = mapped_column(Integer)


_RL = RateLimit.__table__


def reserve(session: Session, key: str, limit: int, window: timedelta, now: datetime) -> bool:
    """Count one attempt under `key`; False (nothing counted) when its window is already full."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    expired = _RL.c.window_start <= now - window
    stmt = insert(_RL).values(key=key, window_start=now, hits=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[_RL.c.key],
        set_={"hits": case((expired, 1), else_=_RL.c.hits + 1),
              "window_start": case((expired, now), else_=_RL.c.window_start)},
        where=or_(expired, _RL.c.hits < limit),
    ).returning(_RL.c.hits)
    return session.execute(stmt).first() is not None


def forget(session: Session, key: str) -> None:
    """Drop a key's window (a successful sign-in clears its user's failures)."""
    session.execute(delete(_RL).where(_RL.c.key == key))


def give_back(session: Session, key: str) -> None:
    """Return one reserved attempt to the key's current window."""
    session.execute(update(_RL).where(and_(_RL.c.key == key, _RL.c.hits > 0)).values(hits=_RL.c.hits - 1))


def purge(session: Session, before: datetime) -> int:
    """Delete windows that started before `before` (all of them long over)."""
    return session.execute(delete(_RL).where(_RL.c.window_start < before)).rowcount or 0
