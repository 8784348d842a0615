"""The tables whose rows scheduler processes lease (storage/leases.py), renewed together by the
scheduler's heartbeat (engine/heartbeat.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from storage import leases
from storage.external_tasks import ExternalTaskRow
from storage.models import Timer
from storage.schedules import ProcessSchedule
from storage.scheduling import NotificationOutbox

LEASED_TABLES = (Timer.__table__, NotificationOutbox.__table__, ProcessSchedule.__table__, ExternalTaskRow.__table__)


def renew_held(session: Session, workers: Sequence[str], *, now: datetime, until: datetime) -> int:
    """Extend every live lease `workers` hold, in every leased table, to `until`; how many rows."""
    return sum(leases.renew(session, table, workers, now=now, until=until) for table in LEASED_TABLES)
