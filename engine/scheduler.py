"""APScheduler jobs: fire due BPMN timers (leased, engine/runtime/timers.py), escalate overdue tasks
(engine/escalation.py), turn task events into notifications and deliver the e-mail outbox
(engine/notifications.py), and bring the KPI fact tables up to date (engine/kpis.py; requests only
read them).

`pdcaflow run` embeds a background scheduler; `pdcaflow scheduler` runs a blocking one as its own
process. Both call the same functions; any number of them may run against one database. A heartbeat
job renews this process's leases while a pass runs (engine/heartbeat.py).
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from engine import clock, connectors, customer_mail, escalation, heartbeat, kpis, notifications, schedules
from engine.runtime import Runtime, timers
from engine.settings import current as current_settings

log = logging.getLogger("pdcaflow.scheduler")


def interval_seconds() -> float:
    """PDCAFLOW_SCHEDULER_INTERVAL, but never below 0.2 s (a busy loop helps no one)."""
    return max(0.2, current_settings().scheduler_interval)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def scheduler_pass(runtime: Runtime, worker: str | None = None, *, fire_timers: bool = True) -> dict[str, int]:
    """One pass over all due work; never raises. Each step is independent: a failing step is logged
    and retried next pass without holding up the others. The running scheduler fires timers in a
    job of their own (`timer_pass`), so slow housekeeping never makes a timer late."""
    worker = worker or worker_name()
    out = {"scheduled_starts": 0, "timers": 0, "escalations": 0, "task_events": 0, "customer_mails": 0,
           "mails_sent": 0, "mails_failed": 0, "kpi_facts": 0, "connector_tasks": 0}
    try:
        schedules.sync_schedules(runtime.db)
        out["scheduled_starts"] = schedules.start_due(runtime, worker)
    except Exception:
        log.exception("scheduled start pass failed")
    if fire_timers:
        out["timers"] = _fire_timers(runtime, worker)
    try:
        out["escalations"] = escalation.escalate_overdue(runtime.db, worker).applied
    except Exception:
        log.exception("escalation pass failed")
    try:
        out["task_events"] = notifications.notify_task_events(runtime.db)
    except Exception:
        log.exception("task notification pass failed")
    try:
        out["customer_mails"] = customer_mail.notify_customers(runtime.db)
    except Exception:
        log.exception("customer mail pass failed")
    try:  # before the outbox: a pdcaflow.mail task's message goes out in the same pass
        out["connector_tasks"] = connectors.run_connectors(runtime, worker).completed
    except Exception:
        log.exception("connector pass failed")
    try:
        mails = notifications.deliver_outbox(runtime.db, worker)
        out["mails_sent"], out["mails_failed"] = mails.sent, mails.failed
    except Exception:
        log.exception("outbox pass failed")
    try:  # last: the facts then include what this pass changed
        out["kpi_facts"] = kpis.refresh_facts(runtime.db)
    except Exception:
        log.exception("KPI fact refresh failed")
    if any(out.values()):
        log.info("scheduler pass %s", " ".join(f"{k}={v}" for k, v in out.items()))
    return out


def _fire_timers(runtime: Runtime, worker: str) -> int:
    try:
        return timers.fire_due_timers(runtime, worker).fired
    except Exception:  # keep the scheduler alive; the next pass retries
        log.exception("timer pass failed")
        return 0


def timer_pass(runtime: Runtime, scheduler: Any, interval: float) -> int:
    """Fire due timers, then, when the next timer comes due before the next tick, add a one-off job
    at its due time: a timer is then late by the firing's own time, not by up to a whole interval."""
    fired = _fire_timers(runtime, worker_name())
    try:
        due = timers.next_due_timer(runtime.db)
    except Exception:
        log.exception("looking up the next due timer failed")
        return fired
    now = clock.now()
    if due is not None and due < now + timedelta(seconds=interval):
        # the engine clock may be shifted (tests, benchmarks); APScheduler runs on the wall clock
        at = datetime.now(UTC) + max(due - now, timedelta(0))
        scheduler.add_job(timer_pass, "date", run_date=at, args=[runtime, scheduler, interval],
                          id="pdcaflow-timer-wakeup", replace_existing=True, misfire_grace_time=None)
    return fired


def build_scheduler(runtime: Runtime, *, blocking: bool = False, interval: float | None = None) -> Any:
    cls = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = cls(timezone="UTC")
    seconds = interval or interval_seconds()
    scheduler.add_job(timer_pass, "interval", args=[runtime, scheduler, seconds], seconds=seconds,
                      id="pdcaflow-timers", max_instances=1, coalesce=True)
    scheduler.add_job(scheduler_pass, "interval", args=[runtime], kwargs={"fire_timers": False}, seconds=seconds,
                      id="pdcaflow-pass", max_instances=1, coalesce=True)
    # its own job (APScheduler runs jobs in a thread pool), so it beats while a long pass runs
    scheduler.add_job(heartbeat.heartbeat, "interval", args=[runtime.db, worker_name()],
                      seconds=heartbeat.beat_seconds(), id="pdcaflow-heartbeat", max_instances=1, coalesce=True)
    return scheduler
