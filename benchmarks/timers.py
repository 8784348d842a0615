"""`pdcaflow bench timers`: how fast leased timer firing drains a backlog of due timers.

Starts one instance waiting on a one-hour timer through the runtime, copies it to N instances
(fresh instance and task ids, its own business key; see `seed_timer_backlog`), moves the engine
clock past the timer (`engine.clock.shifted`) and measures one worker draining them; on PostgreSQL
also two worker processes sharing the work. Only the draining is timed: seeding, process start-up,
imports and the first connection happen before the stopwatch starts.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from benchmarks.database import bench_database
from engine import clock
from engine.runtime import Runtime
from engine.runtime.timers import TimerPolicy, fire_due_timers
from engine.views import Actor
from storage.db import Database
from storage.models import AuditEvent, ProcessInstance, Timer

PROCESS = Path(__file__).parent / "resources" / "bench_timer.bpmn"
KEY = "bench_timer"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CHUNK = 1000
_TIMER_WAIT = timedelta(hours=1)  # the bench process waits PT1H
_PAST_THE_TIMER = timedelta(hours=2)
_EVENT_VALUE = re.compile(r'"event_value":"[^"]+"')  # the timer's due time in the serialized state


def seed_timer_backlog(db: Database, n: int, prefix: str = "BT-",
                       due_for: Callable[[int], datetime] | None = None) -> None:
    """N instances waiting on the bench timer, as `Runtime.start` leaves them.

    The first is started through the runtime; the others copy its rows (instance, timer
    projection, start audit) with fresh instance and task ids and their own business key, so
    setting up a large backlog takes seconds instead of minutes. Firing cannot tell them apart
    from instances started one by one. The timers come due one hour after the engine clock's now;
    with `due_for`, copy i comes due at `due_for(i)` instead (its timer row and the due time in its
    state), the template at `due_for(0)`.
    """
    runtime = Runtime(db)
    runtime.deploy_paths([PROCESS])
    shift = due_for(0) - _TIMER_WAIT - clock.now() if due_for else timedelta(0)
    with clock.shifted(shift):
        template_id = runtime.start(KEY, {"reference": f"{prefix}0"}, Actor.system("bench")).id
    with db.read() as s:
        inst = s.get(ProcessInstance, template_id)
        tmpl = {c.key: getattr(inst, c.key) for c in ProcessInstance.__table__.columns}
        timers = [{c.key: getattr(t, c.key) for c in Timer.__table__.columns if c.key != "id"}
                  for t in s.scalars(select(Timer).where(Timer.instance_id == template_id))]
        audits = [{c.key: getattr(a, c.key) for c in AuditEvent.__table__.columns if c.key != "id"}
                  for a in s.scalars(select(AuditEvent).where(AuditEvent.instance_id == template_id))]
    state = tmpl["state"].decode()
    task_ids = sorted(set(_UUID.findall(state)))
    template_due = _EVENT_VALUE.search(state)
    for start in range(1, n, _CHUNK):
        rows: list[dict[str, Any]] = []
        timer_rows: list[dict[str, Any]] = []
        audit_rows: list[dict[str, Any]] = []
        for i in range(start, min(n, start + _CHUNK)):
            instance_id = uuid.uuid4().hex
            fresh = {old: str(uuid.uuid4()) for old in task_ids}
            reference = f"{prefix}{i}"
            copy_state = _UUID.sub(lambda m, f=fresh: f[m.group(0)], state).replace(
                f'"reference":"{prefix}0"', json.dumps({"reference": reference}, separators=(",", ":"))[1:-1])
            due = due_for(i) if due_for and template_due else None
            if due is not None:
                copy_state = copy_state.replace(template_due.group(0), f'"event_value":"{due.isoformat()}"')
            rows.append({**tmpl, "id": instance_id, "business_key": reference, "state": copy_state.encode(),
                         "data": {**tmpl["data"], "reference": reference}})
            timer_rows += [{**t, "instance_id": instance_id, "task_id": fresh.get(t["task_id"], t["task_id"]),
                            **({"due_at": due} if due is not None else {})} for t in timers]
            audit_rows += [{**a, "instance_id": instance_id,
                            "payload": {**a["payload"], "business_key": reference} if "business_key" in a["payload"]
                            else a["payload"]} for a in audits]
        with db.write() as s:
            conn = s.connection()
            conn.execute(ProcessInstance.__table__.insert(), rows)
            conn.execute(Timer.__table__.insert(), timer_rows)
            conn.execute(AuditEvent.__table__.insert(), audit_rows)


def _policy() -> TimerPolicy:
    return TimerPolicy(batch=100, max_rounds=1_000_000)


def _warm(runtime: Runtime) -> None:
    """Connect and cache the definition's specs before the stopwatch starts."""
    with runtime.db.read() as s:
        definition_id = s.scalar(select(ProcessInstance.definition_id).limit(1))
        if definition_id is not None:
            runtime.definitions.specs(s, definition_id)


def _drain_timed(db: Database, worker: str, ahead: timedelta) -> tuple[int, float, float]:
    runtime = Runtime(db)
    _warm(runtime)
    with clock.shifted(ahead):
        started, cpu = time.perf_counter(), time.process_time()
        fired = fire_due_timers(runtime, worker, _policy()).fired
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return fired, elapsed, cpu


def _worker(url: str, worker: str, ahead: timedelta, ready: Any, go: Any, results: Any) -> None:
    """A separate process: set up, say ready, wait for the common start, drain, report."""
    db = Database(url)
    try:
        runtime = Runtime(db)
        _warm(runtime)
        ready.put(worker)
        go.wait()
        cpu = time.process_time()
        with clock.shifted(ahead):
            fired = fire_due_timers(runtime, worker, _policy()).fired
        results.put((worker, fired, time.monotonic(), time.process_time() - cpu))
    except BaseException as exc:
        results.put((worker, -1, repr(exc)))
        raise
    finally:
        db.dispose()


def _drain_two_processes(url: str, ahead: timedelta) -> tuple[list[int], float, list[float]]:
    ctx = multiprocessing.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_worker, args=(url, name, ahead, ready, go, results)) for name in ("bench-a", "bench-b")]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            ready.get(timeout=300)
        started = time.monotonic()
        go.set()
        out = [results.get(timeout=3600) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=60)
    bad = [o for o in out if o[1] < 0]
    if bad:
        raise RuntimeError(f"bench worker failed: {bad}")
    return [o[1] for o in out], max(o[2] for o in out) - started, [round(o[3], 2) for o in out]


def run_timer_bench(n: int, url: str | None = None) -> dict[str, Any]:
    """Seed `n` waiting timers and time draining them (on PostgreSQL also with two processes)."""
    with tempfile.TemporaryDirectory() as tmp:
        db = bench_database(url, tmp)
        result: dict[str, Any] = {"bench": "timers", "n": n, "db": db.dialect}
        seed_timer_backlog(db, n)
        fired, elapsed, cpu = _drain_timed(db, "bench-1", _PAST_THE_TIMER)
        result["fired"] = fired
        result["elapsed_s"], result["worker_cpu_s"] = round(elapsed, 2), round(cpu, 2)
        result["timers_per_s"] = round(fired / elapsed, 1) if elapsed else None
        if db.dialect == "postgresql":
            db.truncate_all()
            seed_timer_backlog(db, n)
            counts, elapsed, cpus = _drain_two_processes(db.url, _PAST_THE_TIMER)
            result["elapsed_s_2proc"], result["worker_cpu_s_2proc"] = round(elapsed, 2), cpus
            with db.read() as s:
                audited = s.scalar(select(func.count()).select_from(AuditEvent).where(
                    AuditEvent.type == "timer_fired"))
                per_task = s.scalar(select(func.count(func.distinct(AuditEvent.task_id))).where(
                    AuditEvent.type == "timer_fired"))
            result["fired_2proc"] = sum(counts)
            result["fired_per_proc"] = counts
            result["fired_once_2proc"] = audited == per_task == n == sum(counts)
            result["timers_per_s_2proc"] = round(sum(counts) / elapsed, 1) if elapsed else None
            if result["timers_per_s"]:
                result["speedup_2proc"] = round(result["timers_per_s_2proc"] / result["timers_per_s"], 2)
        db.dispose()
    return result
