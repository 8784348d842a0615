"""The e-mail outbox's SQL: due rows claimed by leases (storage/leases.py), and each delivery's
outcome. The engine decides what to send and when to retry (engine/notifications.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import leases
from storage.scheduling import NotificationOutbox

_OB = NotificationOutbox.__table__
WITHHELD = "withheld"  # recorded, never delivered (engine/customer_mail.py: the per-recipient limit)


def claim_due(session: Session, worker: str, *, now: datetime, lease: timedelta, limit: int) -> list[int]:
    """Lease up to `limit` pending mails whose next attempt is due: their ids, earliest due first."""
    rows = leases.claim(session, _OB, worker=worker, now=now, until=now + lease,
                        where=[_OB.c.state == "pending", _OB.c.next_attempt_at <= now],
                        order_by=[_OB.c.next_attempt_at, _OB.c.id], limit=limit)
    return [outbox_id for (outbox_id,) in rows]


def held(session: Session, outbox_id: int, worker: str) -> Any | None:
    """The pending row `worker` holds, or None (sent meanwhile, or its lease was taken over)."""
    return session.execute(select(_OB).where(_OB.c.id == outbox_id, _OB.c.state == "pending",
                                             _OB.c.locked_by == worker)).first()


def finish(session: Session, outbox_id: int, worker: str, *, state: str, sent_at: datetime | None,
           error: str | None) -> bool:
    """The mail was handed to SMTP (`sent`) or there is no SMTP server (`skipped`)."""
    return leases.release(session, _OB, [outbox_id], worker, state=state, sent_at=sent_at, last_error=error) == 1


def back_off(session: Session, outbox_id: int, worker: str, *, attempts: int, retry_at: datetime,
             error: str) -> bool:
    """A failed delivery: pending again, not before `retry_at`."""
    return leases.release(session, _OB, [outbox_id], worker, attempts=attempts, next_attempt_at=retry_at,
                          last_error=error) == 1
