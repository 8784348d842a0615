"""Schedules of processes with a timer start event: when the scheduler starts the next instance,
and the SQL of their lease (storage/leases.py), back-off and failure. The engine decides
(engine/schedules.py); this module only says how."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Index, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from storage import leases
from storage.models import Base


class ProcessSchedule(Base):
    """One row per process key whose latest version starts on a timer (timeDate, timeDuration or
    timeCycle); `remaining` counts the starts left (-1 = forever), `next_at` is NULL when done.

    A failed start keeps its slot (`next_at`): `attempts` and `last_error` count and explain the
    failures, `locked_until` is "not before" during back-off, and `failed_at` is set once the last
    attempt failed (the schedule is in incident and is not claimed until a lead re-arms it).
    """

    __tablename__ = "process_schedule"
    __table_args__ = (Index("ix_process_schedule_due", "next_at"),)

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    definition_id: Mapped[int]
    version: Mapped[int]
    expression: Mapped[str] = mapped_column(Text)
    next_at: Mapped[datetime | None]
    interval_seconds: Mapped[float | None]
    remaining: Mapped[int] = mapped_column(default=1)
    started: Mapped[int] = mapped_column(default=0)
    locked_by: Mapped[str | None] = mapped_column(String(120))
    locked_until: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)  # failed starts of the current slot (0008)
    last_error: Mapped[str | None] = mapped_column(Text)
    failed_at: Mapped[datetime | None]


_PS = ProcessSchedule.__table__


class DueSchedule(NamedTuple):
    """A schedule leased for one start: its slot (`next_at`) and what advancing past it needs."""

    key: str
    version: int
    next_at: datetime
    remaining: int
    interval_seconds: float | None
    attempts: int
    expression: str | None = None  # "kind:text"; a cron timeCycle computes its next slot from it


def by_key(session: Session) -> dict[str, ProcessSchedule]:
    return {s.key: s for s in session.scalars(select(ProcessSchedule))}


def get(session: Session, key: str) -> ProcessSchedule | None:
    return session.get(ProcessSchedule, key)


def listing(session: Session) -> list[ProcessSchedule]:
    """Every schedule, those in incident first, then by key."""
    return list(session.scalars(select(ProcessSchedule).order_by(ProcessSchedule.failed_at.is_(None),
                                                                 ProcessSchedule.key)))


def claim_due(session: Session, worker: str, *, now: datetime, lease: timedelta, limit: int) -> list[DueSchedule]:
    """Lease up to `limit` due schedules that are not in incident, earliest slot first."""
    rows = leases.claim(session, _PS, worker=worker, now=now, until=now + lease,
                        where=[_PS.c.next_at <= now, _PS.c.failed_at.is_(None)],
                        order_by=[_PS.c.next_at, _PS.c.key], limit=limit, key="key",
                        columns=["version", "next_at", "remaining", "interval_seconds", "attempts", "expression"])
    return [DueSchedule(*row) for row in rows]


def consume(session: Session, due: DueSchedule, worker: str, *, next_at: datetime | None, remaining: int,
            now: datetime) -> bool:
    """Move a held schedule past its slot (one more start) and give the lease back; False when
    `worker` no longer holds it at that slot (its lease expired and someone else went on)."""
    return leases.release(session, _PS, [due.key], worker, key="key", where=[_PS.c.next_at == due.next_at],
                          next_at=next_at, remaining=remaining, started=_PS.c.started + 1, attempts=0,
                          last_error=None, updated_at=now) == 1


def back_off(session: Session, key: str, worker: str, *, attempts: int, error: str, retry_at: datetime,
             now: datetime) -> bool:
    """A failed start: the slot stays, and the schedule is not claimed again before `retry_at`."""
    result = session.execute(update(_PS).where(_PS.c.key == key, _PS.c.locked_by == worker).values(
        attempts=attempts, last_error=error, locked_by=None, locked_until=retry_at, updated_at=now))
    return (result.rowcount or 0) == 1


def fail(session: Session, key: str, worker: str, *, attempts: int, error: str, now: datetime) -> bool:
    """The last attempt failed: the schedule is in incident (never claimed) until it is re-armed."""
    result = session.execute(update(_PS).where(_PS.c.key == key, _PS.c.locked_by == worker).values(
        attempts=attempts, last_error=error, failed_at=now, locked_by=None, locked_until=None, updated_at=now))
    return (result.rowcount or 0) == 1


def rearm(session: Session, key: str, now: datetime) -> bool:
    """A schedule in incident tries its slot again on the next pass, with fresh attempts."""
    result = session.execute(update(_PS).where(_PS.c.key == key, _PS.c.failed_at.is_not(None)).values(
        attempts=0, last_error=None, failed_at=None, locked_by=None, locked_until=None, updated_at=now))
    return (result.rowcount or 0) == 1
