"""The scheduler's heartbeat: leases stay short and are renewed while the work runs.

Every lease a scheduler takes (timers, outbox mails, timer-start schedules, connector tasks) lasts
`lease_length()` (PDCAFLOW_TIMER_LEASE, 30 s by default). While the process lives, a heartbeat job
renews its live leases every third of that, so a long pass (a slow SMTP server, a big timer backlog)
keeps its rows; a process killed with SIGKILL stops beating and its rows are free again within one
lease. Exactly-once firing does not depend on the lease: a timer fires inside a unit of work that
locks its instance row and re-checks that this worker still holds the timer (engine/runtime/timers.py).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from engine import clock
from engine.settings import current as current_settings
from storage import lease_renewal
from storage.db import Database

log = logging.getLogger("pdcaflow.heartbeat")
MIN_LEASE = timedelta(seconds=1)


def lease_length() -> timedelta:
    """How long a scheduler's lease lasts without a heartbeat."""
    return max(MIN_LEASE, timedelta(seconds=current_settings().timer_lease))


def beat_seconds() -> float:
    """Seconds between heartbeats: a third of the lease, so two missed beats still keep it."""
    return lease_length().total_seconds() / 3


def connector_worker(worker: str) -> str:
    """The worker id the built-in connectors fetch external tasks under (engine/connectors.py)."""
    return f"{worker}:connectors"


def renew_leases(db: Database, worker: str) -> int:
    """One heartbeat: extend the live leases of `worker` (and its connectors) by one lease."""
    now = clock.now()
    with db.write() as session:
        renewed = lease_renewal.renew_held(session, (worker, connector_worker(worker)), now=now,
                                           until=now + lease_length())
    if renewed:
        log.debug("heartbeat renewed %d leases of %s", renewed, worker)
    return renewed


def heartbeat(db: Database, worker: str) -> None:
    """The scheduler job: renew, and never raise (a missed beat is retried at the next one)."""
    try:
        renew_leases(db, worker)
    except Exception:
        log.warning("lease heartbeat of %s failed", worker, exc_info=True)
