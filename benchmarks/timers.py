"""`pdcaflow bench timers`: how fast leased timer firing drains a backlog of due timers.

Starts one instance waiting on a one-hour timer through the runtime, copies it to N instances
(fresh instance and task ids, its own business key; see `seed_timer_backlog`), moves the engine
clock past the timer (`engine.clock.shifted`) and measures one worker process draining them; on
PostgreSQL also two worker processes sharing the work. One and two workers run the same way (spawned,
each in its own session like a separately started `pdcaflow scheduler`, logging to a file), so the
ratio compares like with like. Only the draining is timed: seeding, process start-up, imports and
the first connection happen before the stopwatch starts. The figures come with the load average and
the workers' CPU time per timer: on a shared machine a low ratio with equal CPU per timer means the
workers were short of CPU, not contending with each other.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from benchmarks.database import bench_database
from engine import clock, logs
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


def _worker(url: str, worker: str, ahead: timedelta, log_path: str, ready: Any, go: Any, results: Any) -> None:
    """One worker process, started like a `pdcaflow scheduler` of its own: its own session (so the
    kernel schedules it as its own task group, as it does two separately started schedulers; spawned
    workers would otherwise share the bench's group and its one CPU share on a busy machine), the
    scheduler's logging (to a file). Set up, say ready, wait for the common start, drain, report."""
    os.setsid()
    sys.stderr = open(log_path, "a")  # noqa: SIM115 - the process's log until it exits
    logs.configure()
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


def _drain(url: str, workers: int, ahead: timedelta, tmp: str) -> tuple[list[int], float, list[float]]:
    """`workers` processes drain the due timers together, from a common start: (fired per worker,
    seconds until the last one finished, CPU seconds per worker). One worker is measured the same way
    as two, so the ratio compares like with like."""
    ctx = multiprocessing.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    names = [f"bench-{i + 1}" for i in range(workers)]
    procs = [ctx.Process(target=_worker, args=(url, name, ahead, str(Path(tmp) / f"{name}.log"), ready, go, results),
                         daemon=True)
             for name in names]
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
    out.sort()
    return [o[1] for o in out], max(o[2] for o in out) - started, [round(o[3], 2) for o in out]


def _per_timer(cpus: list[float], counts: list[int]) -> float | None:
    """Worker CPU milliseconds per fired timer: equal with one and two workers when sharing the work
    costs nothing (no lock waits, no retries), whatever CPU share the machine gave them."""
    return round(1000 * sum(cpus) / sum(counts), 3) if sum(counts) else None


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _cpu_ticks() -> tuple[int, int]:
    """(idle, total) jiffies of the whole machine so far (Linux /proc/stat; zeros elsewhere)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return 0, 0
    return fields[3] + fields[4], sum(fields)  # idle + iowait


def _idle_cpus(before: tuple[int, int]) -> float | None:
    """How many CPUs stood idle on average since `before`: with 2 workers on a machine with no idle
    CPU left, two cannot go faster than one however well they share the work."""
    idle, total = _cpu_ticks()
    if total <= before[1]:
        return None
    return round((idle - before[0]) / (total - before[1]) * (os.cpu_count() or 1), 2)


def run_timer_bench(n: int, url: str | None = None) -> dict[str, Any]:
    """Seed `n` waiting timers and time one worker process draining them; on PostgreSQL seed them
    again and time two. `load_*` is the one-minute load average before each drain: on a shared
    machine the ratio only means something when the load is low."""
    with tempfile.TemporaryDirectory() as tmp:
        db = bench_database(url, tmp)
        result: dict[str, Any] = {"bench": "timers", "n": n, "db": db.dialect, "cpus": os.cpu_count()}
        seed_timer_backlog(db, n)
        result["load_1proc"], ticks = _load(), _cpu_ticks()
        counts, elapsed, cpus = _drain(db.url, 1, _PAST_THE_TIMER, tmp)
        result["idle_cpus_1proc"] = _idle_cpus(ticks)
        result["fired"] = counts[0]
        result["elapsed_s"], result["worker_cpu_s"] = round(elapsed, 2), cpus[0]
        result["timers_per_s"] = round(counts[0] / elapsed, 1) if elapsed else None
        result["worker_cpu_ms_per_timer"] = _per_timer(cpus, counts)
        if db.dialect == "postgresql":
            db.truncate_all()
            seed_timer_backlog(db, n)
            result["load_2proc"], ticks = _load(), _cpu_ticks()
            counts, elapsed, cpus = _drain(db.url, 2, _PAST_THE_TIMER, tmp)
            result["idle_cpus_2proc"] = _idle_cpus(ticks)
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
            result["worker_cpu_ms_per_timer_2proc"] = _per_timer(cpus, counts)
            if result["timers_per_s"]:
                result["speedup_2proc"] = round(result["timers_per_s_2proc"] / result["timers_per_s"], 2)
        db.dispose()
    return result
