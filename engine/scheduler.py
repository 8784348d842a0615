"""APScheduler jobs: fire due BPMN timers (leased, engine/timer_service.py), escalate overdue tasks
and deliver the notification outbox.

`pdcaflow run` embeds a background scheduler; `pdcaflow scheduler` runs a blocking one as its own
process. Both call the same runtime functions.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from engine import timer_service
from engine.runtime import Runtime

log = logging.getLogger("pdcaflow.scheduler")


def interval_seconds() -> float:
    raw = os.environ.get("PDCAFLOW_SCHEDULER_INTERVAL", "10")
    try:
        value = float(raw)
    except ValueError as exc:
        raise SystemExit(f"PDCAFLOW_SCHEDULER_INTERVAL must be a number of seconds, got {raw!r}") from exc
    return max(0.2, value)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def scheduler_pass(runtime: Runtime) -> dict[str, int]:
    """One pass over all due work; never raises (a failing pass is logged and retried next time)."""
    try:
        fired = timer_service.fire_due_timers(runtime, worker_name()).fired
    except Exception:  # keep the scheduler alive; the next pass retries
        log.exception("scheduler pass failed")
        return {"timers": 0}
    if fired:
        log.info("scheduler pass fired=%d", fired)
    return {"timers": fired}


def build_scheduler(runtime: Runtime, *, blocking: bool = False, interval: float | None = None) -> Any:
    cls = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = cls(timezone="UTC")
    scheduler.add_job(scheduler_pass, "interval", args=[runtime], seconds=interval or interval_seconds(),
                      id="pdcaflow-pass", max_instances=1, coalesce=True)
    return scheduler
