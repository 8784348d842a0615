"""The timer queue: due timers claimed by leases (storage/leases.py), attempts and failures."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from storage import leases
from storage.models import ProcessInstance, Timer

_TM = Timer.__table__
_PI = ProcessInstance.__table__


_CLAIMS: dict[str, Any] = {}  # dialect -> the prebuilt claim statement


def _claim_statement(dialect: str) -> Any:
    stmt = _CLAIMS.get(dialect)
    if stmt is None:
        stmt = _CLAIMS[dialect] = leases.claim_statement(
            _TM, dialect=dialect, where=[_TM.c.state == "waiting", _TM.c.due_at <= bindparam("now")],
            order_by=[_TM.c.due_at, _TM.c.id], returning=["id", "instance_id", "due_at"])
    return stmt


def claim_due(session: Session, worker: str, *, now: datetime, lease: timedelta, limit: int) -> list[tuple[int, str]]:
    """Lease up to `limit` due, free timers to `worker`: [(timer_id, instance_id)], earliest due first.
    One statement: each scheduler claims its batch in one round trip (leases.claim_statement)."""
    stmt = _claim_statement(session.get_bind().dialect.name)
    rows = session.execute(stmt, {"worker": worker, "now": now, "until": now + lease, "limit": limit}).all()
    return [(r.id, r.instance_id) for r in sorted(rows, key=lambda r: (r.due_at, r.id))]


def next_due(session: Session) -> datetime | None:
    """The earliest due time of a waiting timer nobody holds (indexed: ix_timer_due)."""
    return session.scalar(select(func.min(_TM.c.due_at)).where(_TM.c.state == "waiting", _TM.c.locked_by.is_(None)))


def release(session: Session, timer_ids: list[int], worker: str) -> None:
    """Give leases back without counting an attempt (e.g. the instance was busy)."""
    leases.release(session, _TM, timer_ids, worker, where=[_TM.c.state == "waiting"])


def finish(session: Session, timer_ids: list[int]) -> None:
    """Timers whose instance is gone."""
    if timer_ids:
        session.execute(update(_TM).where(_TM.c.id.in_(timer_ids)).values(state="done", locked_by=None,
                                                                           locked_until=None))


def held_rows(session: Session, timer_ids: list[int], worker: str) -> list[Any]:
    return list(session.execute(select(_TM).where(_TM.c.id.in_(timer_ids), _TM.c.state == "waiting",
                                                  _TM.c.locked_by == worker)))


def back_off(session: Session, timer_id: int, attempts: int, retry_at: datetime) -> None:
    """A failed attempt: the lease is dropped and the timer is not claimed again before `retry_at`."""
    session.execute(update(_TM).where(_TM.c.id == timer_id)
                    .values(attempts=attempts, locked_by=None, locked_until=retry_at))


def fail(session: Session, timer_id: int, attempts: int) -> None:
    session.execute(update(_TM).where(_TM.c.id == timer_id)
                    .values(attempts=attempts, state="failed", locked_by=None, locked_until=None))


def rearm_retried(session: Session) -> int:
    """Failed timers whose instance a quality lead has retried (running again) are armed again."""
    running = select(_PI.c.id).where(_PI.c.status == "running")
    result = session.execute(update(_TM).where(_TM.c.state == "failed", _TM.c.instance_id.in_(running))
                             .values(state="waiting", attempts=0, locked_by=None, locked_until=None))
    return result.rowcount or 0
