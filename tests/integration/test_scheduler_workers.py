"""Two scheduler workers against one database: every timer fires exactly once, and a dead
worker's expired leases are finished by the survivor."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import time_machine
from sqlalchemy import func, select, update

from engine.runtime import Actor, Runtime
from engine.runtime.timers import TimerPolicy, fire_due_timers
from storage.db import Database
from storage.models import AuditEvent, ProcessInstance, Timer
from tests.conftest import FIXTURES

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEAD = Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead")


def _start_many(runtime: Runtime, n: int) -> None:
    runtime.deploy_paths([FIXTURES / "scheduler" / "timer_wait.bpmn"])
    for i in range(n):
        runtime.start("timer_wait", {"reference": f"W-{i}"}, LEAD)


def _run_workers(url: str, names: list[str]) -> dict[str, int]:
    fired: dict[str, int] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(names))

    def work(name: str) -> None:
        db = Database(url)
        try:
            runtime = Runtime(db)
            barrier.wait()
            fired[name] = fire_due_timers(runtime, name, TimerPolicy(batch=20)).fired
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=work, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    return fired


def _audit_per_task(db: Database) -> list[int]:
    with db.read() as s:
        return list(s.scalars(select(func.count()).select_from(AuditEvent).where(AuditEvent.type == "timer_fired")
                              .group_by(AuditEvent.task_id)))


def test_two_workers_fire_each_timer_exactly_once(db):
    n = 300 if db.dialect == "postgresql" else 120
    runtime = Runtime(db)
    with time_machine.travel(T0, tick=False):
        _start_many(runtime, n)
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        fired = _run_workers(db.url, ["worker-a", "worker-b"])
    assert sum(fired.values()) == n
    if db.dialect == "postgresql":
        assert all(v > 0 for v in fired.values()), fired  # SKIP LOCKED let both make progress
    counts = _audit_per_task(db)
    assert len(counts) == n and set(counts) == {1}
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(ProcessInstance)
                        .where(ProcessInstance.status == "completed")) == n
        assert s.scalar(select(func.count()).select_from(Timer).where(Timer.state != "done")) == 0


def test_killed_worker_leaves_leases_the_other_completes(db):
    n = 60
    runtime = Runtime(db)
    with time_machine.travel(T0, tick=False):
        _start_many(runtime, n)
    now = T0 + timedelta(hours=2)
    # worker "dead" claimed half of them and was killed mid-pass; it had already fired ten
    with time_machine.travel(now, tick=False):
        with db.read() as s:
            ids = list(s.scalars(select(Timer.id).order_by(Timer.id)))
        with db.write() as s:
            s.execute(update(Timer).where(Timer.id.in_(ids[:30]))
                      .values(locked_by="dead:1", locked_until=now + timedelta(minutes=5)))
        with db.read() as s:
            done_first = list(s.scalars(select(Timer.instance_id).where(Timer.id.in_(ids[:10]))))
        dead = Runtime(db)
        for instance_id in done_first:
            timer_id = ids[[*done_first].index(instance_id)]
            assert dead.fire_timer(instance_id, "dead:1", [timer_id]) == 1
        fired = _run_workers(db.url, ["survivor"])
        assert fired["survivor"] == 30  # the other half; the dead worker's leases still hold
    with time_machine.travel(now + timedelta(minutes=6), tick=False):
        fired = _run_workers(db.url, ["survivor"])
        assert fired["survivor"] == 20  # leases expired: the rest is finished
    counts = _audit_per_task(db)
    assert len(counts) == n and set(counts) == {1}
