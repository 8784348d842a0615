"""The scheduler as a user runs it, measured from outside.

`pdcaflow bench timer-lateness`: N waiting timers are seeded with due times spread over a window
that starts a little after seeding ends; a real `pdcaflow scheduler` process (its own process, the
configured interval, every step of the pass) runs for a while; each timer that came due meanwhile
is late by when its `timer_fired` audit entry was written minus its due time.

`pdcaflow bench scheduler-memory`: N timers already due; a `pdcaflow scheduler` process fires them
all while its resident set size is sampled every half second. Growth is the RSS at the end minus
the RSS once the first timers have fired (caches, connections and imports settled).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from benchmarks.timers import seed_timer_backlog
from engine import clock
from storage.db import Database
from storage.models import AuditEvent, Timer

_ROOT = Path(__file__).resolve().parent.parent
_TIMER_WAIT = timedelta(hours=1)  # the bench process's timer (resources/bench_timer.bpmn)
_SEED_RATE = 500  # timers per second seeding is assumed to manage (seeding_overran_s says if not)
_LEAD = 10.0  # seconds between the end of seeding and the first due time (scheduler start-up)


def _percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _fired_count(db: Database) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.type == "timer_fired")) or 0


def _fresh_database(tmp: str, url: str | None) -> Database:
    db = Database(url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
    db.create_all()
    if url:
        db.truncate_all()
    return db


def _start_scheduler(db: Database, tmp: str, interval_s: float) -> tuple[subprocess.Popen[bytes], Path]:
    """`pdcaflow scheduler` as its own process against `db`; its output goes to a file in `tmp`."""
    env = {**os.environ, "DATABASE_URL": db.url, "PDCAFLOW_SCHEDULER_INTERVAL": str(interval_s),
           "PYTHONPATH": os.pathsep.join(p for p in (str(_ROOT), os.environ.get("PYTHONPATH")) if p)}
    log_path = Path(tmp) / "scheduler.log"  # a file, not a pipe: a full pipe would stall the scheduler
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "web.cli", "scheduler"], env=env, cwd=_ROOT,
                                   stdout=log, stderr=subprocess.STDOUT)
    return process, log_path


def _check_alive(scheduler: subprocess.Popen[bytes], log_path: Path) -> None:
    if scheduler.poll() is not None:
        raise RuntimeError(f"the scheduler exited: {log_path.read_text()[-2000:]}")


# ---------------------------------------------------------------------- timer lateness
def _seed_spread(db: Database, n: int, window_s: float) -> datetime:
    """N timers whose due times step evenly over `window_s` seconds, the first `_LEAD` seconds after
    seeding is expected to end (at a conservative rate). Returns the first due time."""
    first_due = datetime.now(UTC) + timedelta(seconds=_LEAD + n / _SEED_RATE)
    seed_timer_backlog(db, n, prefix="TL-", due_for=lambda i: first_due + timedelta(seconds=window_s * i / n))
    return first_due


def run_lateness_bench(n: int, url: str | None = None, *, window_s: float = 600.0, duration_s: float = 60.0,
                       interval_s: float = 1.0) -> dict[str, Any]:
    """Seed `n` waiting timers due over `window_s` seconds, let a `pdcaflow scheduler` process run for
    `duration_s` seconds, and measure the lateness of every timer that came due meanwhile. A timer
    due but not fired when the run stops counts with the lateness it had reached then."""
    with tempfile.TemporaryDirectory() as tmp:
        db = _fresh_database(tmp, url)
        first_due = _seed_spread(db, n, window_s)
        with db.read() as s:
            due = {(row.instance_id, row.task_id): _aware(row.due_at)
                   for row in s.execute(select(Timer.instance_id, Timer.task_id, Timer.due_at))}
        seeded_late = (datetime.now(UTC) - first_due).total_seconds()
        scheduler, log_path = _start_scheduler(db, tmp, interval_s)
        stop_at = first_due + timedelta(seconds=duration_s)
        try:
            while datetime.now(UTC) < stop_at:
                _check_alive(scheduler, log_path)
                time.sleep(0.5)
        finally:
            scheduler.terminate()
            scheduler.wait(30)
        stopped = datetime.now(UTC)
        with db.read() as s:
            fired = {(inst, task): _aware(at) for inst, task, at in s.execute(
                select(AuditEvent.instance_id, AuditEvent.task_id, AuditEvent.at)
                .where(AuditEvent.type == "timer_fired"))}
            fired_rows = s.scalar(select(func.count()).select_from(AuditEvent)
                                  .where(AuditEvent.type == "timer_fired"))
        came_due = {key: at for key, at in due.items() if at <= stopped}
        lateness = [((fired.get(key) or stopped) - at).total_seconds() for key, at in came_due.items()]
        db.dispose()
    return {"bench": "timer-lateness", "db": db.dialect, "waiting": len(due), "window_s": window_s,
            "duration_s": duration_s, "interval_s": interval_s, "came_due": len(came_due),
            "fired": len(fired), "not_fired_yet": sum(1 for key in came_due if key not in fired),
            "fired_once": fired_rows == len(fired) and set(fired) <= set(due),
            "seeding_overran_s": round(max(0.0, seeded_late), 2),
            "lateness_p50_s": _rounded(_percentile(lateness, 50)), "lateness_p95_s": _rounded(_percentile(lateness, 95)),
            "lateness_p99_s": _rounded(_percentile(lateness, 99)), "lateness_max_s": _rounded(max(lateness, default=None)),
            "early": sum(1 for key, at in fired.items() if key in due and at < due[key])}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# ---------------------------------------------------------------------- scheduler memory
def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/PID/status")


def run_memory_bench(n: int, url: str | None = None, *, interval_s: float = 1.0) -> dict[str, Any]:
    """Seed `n` due timers, let a `pdcaflow scheduler` process fire them all, and sample its RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        db = _fresh_database(tmp, url)
        with clock.shifted(-_TIMER_WAIT - timedelta(minutes=1)):
            seed_timer_backlog(db, n, prefix="SM-")
        warm_after = min(5000, max(1, n // 20))  # caches, connections and imports settle first
        scheduler, log_path = _start_scheduler(db, tmp, interval_s)
        baseline = peak = final = 0
        fired = 0
        started = time.monotonic()
        deadline = started + 300 + n / 20
        try:
            while fired < n and time.monotonic() < deadline:
                _check_alive(scheduler, log_path)
                time.sleep(0.5)
                fired = _fired_count(db)
                final = _rss_bytes(scheduler.pid)
                peak = max(peak, final)
                if not baseline and fired >= warm_after:
                    baseline = final
            elapsed = time.monotonic() - started
        finally:
            scheduler.terminate()
            scheduler.wait(30)
        db.dispose()
    mb = 1024 * 1024
    baseline = baseline or final
    return {"bench": "scheduler-memory", "db": db.dialect, "n": n, "fired": fired, "fired_all": fired == n,
            "timers_per_s": round(fired / elapsed, 1) if elapsed else None, "warm_after": warm_after,
            "rss_baseline_mb": round(baseline / mb, 1), "rss_peak_mb": round(peak / mb, 1),
            "rss_final_mb": round(final / mb, 1), "rss_growth_mb": round((final - baseline) / mb, 1)}
