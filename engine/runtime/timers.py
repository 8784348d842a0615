"""The one timer-firing path: leased, batched, backed off. Any number of scheduler/web processes
can run passes at once; each timer fires exactly once.

A pass claims due timers through the indexed ``timer(state, due_at)`` projection, never by loading
instances (the lease mechanism is storage/leases.py). A claimed batch is fired in ONE unit of work:
the instance rows are locked in id order (PostgreSQL skips rows another transaction is writing:
their leases are given back for the next pass), their projections are read with one query per
table, every instance is loaded, advanced (`UnitOfWork.fire_timers`) and saved, and the writes go
out as multi-row statements at the end. An instance that raises queues nothing, so it fails alone;
its failure is recorded after the batch commits. Should the batch's transaction itself fail, its
instances are fired again one unit of work each.

A timer whose instance fails with an unexpected error is retried with back-off (engine/backoff.py;
``locked_until`` doubles as "not before"); after ``max_attempts`` failures the timer is marked
``failed`` and the instance gets an incident (engine/runtime/incidents.py). A quality lead's retry
of that instance arms the timer again (`rearm_retried`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from engine import clock, heartbeat, metrics
from engine.backoff import Backoff
from engine.errors import ConflictError
from engine.runtime import incidents, projection
from engine.runtime.unit_of_work import UnitOfWork, unit_of_work
from engine.settings import current as current_settings
from engine.views import Actor
from storage import instances as store
from storage import timer_queue
from storage.db import Database

if TYPE_CHECKING:
    from engine.runtime.facade import Runtime

log = logging.getLogger("pdcaflow.timers")
SCHEDULER = Actor.system("scheduler")


@dataclass
class TimerPolicy:
    lease: timedelta = timedelta(minutes=5)
    max_attempts: int = 3
    backoff: timedelta = timedelta(seconds=30)  # after failure n: backoff * 2**(n-1), capped (engine/backoff.py)
    backoff_cap: timedelta = timedelta(hours=1)
    batch: int = 100
    max_rounds: int = 50

    @classmethod
    def from_env(cls) -> TimerPolicy:
        settings = current_settings()
        return cls(
            lease=heartbeat.lease_length(),  # renewed while the scheduler lives
            max_attempts=max(1, settings.timer_max_attempts),
            backoff=timedelta(seconds=settings.timer_backoff),
            batch=max(1, settings.timer_batch),
        )

    def delay(self, attempts: int) -> timedelta:
        return Backoff(self.backoff, self.backoff_cap).delay(attempts)


@dataclass
class TimerPassResult:
    fired: int = 0
    instances: int = 0
    failed: int = 0
    conflicts: int = 0
    incidents: list[str] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)  # seconds after its due time each timer fired

    def as_dict(self) -> dict[str, Any]:
        return {"fired": self.fired, "instances": self.instances, "failed": self.failed,
                "conflicts": self.conflicts, "incidents": len(self.incidents)}


@dataclass
class _Outcome:
    fired: int = 0
    instances: int = 0
    conflicts: int = 0
    failures: list[tuple[str, list[int], Exception]] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)


def claim_due_timers(db: Database, worker: str, *, limit: int = 100,
                     lease: timedelta = timedelta(minutes=5)) -> list[tuple[int, str]]:
    """Lease up to `limit` due, free timers to `worker`; returns [(timer_id, instance_id)]."""
    with db.write() as session:
        return timer_queue.claim_due(session, worker, now=clock.now(), lease=lease, limit=limit)


def next_due_timer(db: Database) -> datetime | None:
    """When the next waiting timer comes due (timezone-aware UTC), or None."""
    with db.read() as session:
        due = timer_queue.next_due(session)
    return due.replace(tzinfo=UTC) if due is not None and due.tzinfo is None else due


def fire_due_timers(runtime: Runtime, worker: str, policy: TimerPolicy | None = None) -> TimerPassResult:
    """One pass: claim batches of due timers and fire each batch in one unit of work until none are due."""
    policy = policy or TimerPolicy.from_env()
    result = TimerPassResult()
    seen: set[int] = set()
    db = runtime.db
    with db.write() as session:
        timer_queue.rearm_retried(session)
    for _ in range(policy.max_rounds):
        claimed = claim_due_timers(db, worker, limit=policy.batch, lease=policy.lease)
        if not claimed:
            break
        if all(timer_id in seen for timer_id, _ in claimed):
            # only timers the engine did not consider due yet; leave them to the next pass
            with db.write() as session:
                timer_queue.release(session, [t for t, _ in claimed], worker)
            break
        by_instance: dict[str, list[int]] = {}
        for timer_id, instance_id in claimed:
            seen.add(timer_id)
            by_instance.setdefault(instance_id, []).append(timer_id)
        try:
            outcome = fire_claimed(runtime, worker, by_instance)
        except Exception:  # the batch's transaction failed as a whole: nothing of it was written
            log.warning("timer batch of %d instances failed; firing them one by one", len(by_instance), exc_info=True)
            outcome = _Outcome()
            for instance_id, ids in by_instance.items():
                _merge(outcome, _fire_batch_or_fail(runtime, worker, {instance_id: ids}))
        result.fired += outcome.fired
        result.instances += outcome.instances
        result.conflicts += outcome.conflicts
        result.lateness += outcome.lateness
        for instance_id, ids, exc in outcome.failures:
            _record_failure(runtime, worker, instance_id, ids, exc, policy, result)
        if len(claimed) < policy.batch:
            break
    try:  # a figure for /metrics; losing it must not fail the pass
        metrics.record_lateness(db, result.lateness)
    except Exception:
        log.warning("could not record timer lateness", exc_info=True)
    return result


def _merge(total: _Outcome, part: _Outcome) -> None:
    total.fired += part.fired
    total.instances += part.instances
    total.conflicts += part.conflicts
    total.lateness += part.lateness
    total.failures.extend(part.failures)


def _fire_batch_or_fail(runtime: Runtime, worker: str, by_instance: dict[str, list[int]]) -> _Outcome:
    """A single instance's batch, where a failed transaction is that instance's failure."""
    try:
        return fire_claimed(runtime, worker, by_instance)
    except ConflictError:
        with runtime.db.write() as session:
            timer_queue.release(session, [i for ids in by_instance.values() for i in ids], worker)
        return _Outcome(conflicts=1)
    except Exception as exc:
        log.exception("timer firing failed instance=%s", ",".join(by_instance))
        return _Outcome(failures=[(i, ids, exc) for i, ids in by_instance.items()])


def fire_claimed(runtime: Runtime, worker: str, by_instance: dict[str, list[int]]) -> _Outcome:
    """Fire the timers `worker` has leased ({instance_id: [timer_id, ...]}) in one unit of work."""
    out = _Outcome()
    with unit_of_work(runtime.db, runtime.definitions, runtime.script_engine) as uow:
        # SKIP LOCKED on PostgreSQL: an instance being written right now is left for the next pass
        rows = store.lock_instances(uow.conn, by_instance, skip_locked=uow.dialect == "postgresql")
        snapshots = projection.read_snapshots(uow.conn, list(rows))
        busy: list[int] = []
        gone: list[int] = []
        for instance_id, ids in by_instance.items():
            row = rows.get(instance_id)
            if row is None:
                if store.instance_row(uow.conn, instance_id) is None:
                    gone.extend(ids)
                else:
                    busy.extend(ids)
                    out.conflicts += 1
                continue
            wanted = set(ids)
            held = [t for t in snapshots[instance_id].timers if t.id in wanted and t.locked_by == worker]
            if not held:
                continue  # fired already, or the lease expired and another worker took it over
            try:
                fired = fire_instance(uow, row, snapshots[instance_id], worker, held)
                out.fired += fired
                out.instances += 1
                now = clock.now()
                out.lateness += [(now - t.due_at).total_seconds() for t in sorted(held, key=lambda t: t.due_at)[:fired]]
            except Exception as exc:  # one instance's failure must not stop the others
                log.exception("timer firing failed instance=%s", instance_id)
                # its half-advanced copy must not be what an event thrown in this batch reaches (and saves)
                uow.loaded.pop(instance_id, None)
                out.failures.append((instance_id, ids, exc))
        timer_queue.release(uow.session, busy, worker)
        timer_queue.finish(uow.session, gone)
    return out


def fire_instance(uow: UnitOfWork, row: Any, snapshot: projection.Snapshot, worker: str, held: list[Any]) -> int:
    """Fire one instance's held timers inside the batch's unit of work; returns how many fired."""
    loaded = uow.restore(row._mapping, snapshot)
    # timers still waiting afterwards (cycles, or not due by the engine's reckoning) are free again
    loaded.leased_timers = {t.id for t in held}
    if loaded.row.status in ("completed", "cancelled"):
        uow.save(loaded)  # only re-projects: its timers become 'done'
        return 0
    fired = uow.fire_timers(loaded, SCHEDULER, worker, leased={t.task_id for t in held})
    uow.save(loaded)
    return len(fired)


def _record_failure(runtime: Runtime, worker: str, instance_id: str, timer_ids: list[int], exc: Exception,
                    policy: TimerPolicy, result: TimerPassResult) -> None:
    """Count a failed attempt; back off, or after the last attempt fail the timer with an incident."""
    result.failed += 1
    error = f"{type(exc).__name__}: {exc}"
    now = clock.now()
    try:
        with unit_of_work(runtime.db, runtime.definitions, runtime.script_engine) as uow:
            # the instance first (the one lock order): a save that ends the timer's wait (a completion)
            # commits before the timer rows are read, or waits until the failure is recorded
            store.lock_instance(uow.conn, instance_id)
            for timer in timer_queue.held_rows(uow.session, timer_ids, worker):
                attempts = (timer.attempts or 0) + 1
                if attempts >= policy.max_attempts:
                    timer_queue.fail(uow.session, timer.id, attempts)
                    message = f"timer '{timer.spec_id}' could not fire after {attempts} attempts: {error}"
                    incidents.on_instance(uow, instance_id, timer.task_id, timer.spec_id, message, SCHEDULER)
                    result.incidents.append(instance_id)
                else:
                    retry_at = now + policy.delay(attempts)
                    timer_queue.back_off(uow.session, timer.id, attempts, retry_at)
                    log.warning("timer failed instance=%s task=%s attempt=%d/%d, retry at %s: %s", instance_id,
                                timer.task_id, attempts, policy.max_attempts, retry_at.isoformat(), error)
    except Exception:
        log.exception("could not record the timer failure instance=%s", instance_id)
