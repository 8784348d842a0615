"""`pdcaflow bench timers`: how fast leased timer firing drains a backlog of due timers.

Starts N instances waiting on a one-hour timer, moves the clock past it (time-machine) and
measures one worker draining them; on PostgreSQL also two worker processes sharing the work.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from engine import clock
from engine.runtime import Runtime
from engine.timer_service import TimerPolicy, fire_due_timers
from engine.views import Actor
from storage.db import Database
from storage.models import AuditEvent

PROCESS = Path(__file__).parent / "resources" / "bench_timer.bpmn"
KEY = "bench_timer"


def _seed(db: Database, n: int) -> None:
    runtime = Runtime(db)
    runtime.deploy_paths([PROCESS])
    actor = Actor.system("bench")
    for i in range(n):
        runtime.start(KEY, {"reference": f"BT-{i}"}, actor)


def _drain(url: str, worker: str, at: float) -> int:
    import time_machine

    db = Database(url)
    try:
        with time_machine.travel(at, tick=True):
            return fire_due_timers(Runtime(db), worker, TimerPolicy(batch=100, max_rounds=10_000)).fired
    finally:
        db.dispose()


def run_timer_bench(n: int, url: str | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db_url = url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        db = Database(db_url)
        db.create_all()
        if url:
            db.truncate_all()
        result: dict[str, Any] = {"bench": "timers", "n": n, "db": db.dialect}
        _seed(db, n)
        later = (clock.now() + timedelta(hours=2)).timestamp()
        started = time.perf_counter()
        fired = _drain(db.url, "bench-1", later)
        elapsed = time.perf_counter() - started
        result["fired"] = fired
        result["timers_per_s"] = round(fired / elapsed, 1) if elapsed else None
        if db.dialect == "postgresql":
            db.truncate_all()
            _seed(db, n)
            later = (clock.now() + timedelta(hours=2)).timestamp()
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(2) as pool:
                started = time.perf_counter()
                counts = pool.starmap(_drain, [(db.url, "bench-a", later), (db.url, "bench-b", later)])
                elapsed = time.perf_counter() - started
            with db.read() as s:
                audited = s.scalar(select(func.count()).select_from(AuditEvent).where(
                    AuditEvent.type == "timer_fired"))
            result["fired_2proc"] = sum(counts)
            result["fired_once_2proc"] = audited == n == sum(counts)
            result["timers_per_s_2proc"] = round(sum(counts) / elapsed, 1) if elapsed else None
        db.dispose()
    return result
