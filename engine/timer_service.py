"""Leased timer firing: any number of scheduler/web processes can run passes at once.

A pass claims due timers through the indexed ``timer(state, due_at)`` projection (never by loading
instances): on PostgreSQL with ``SELECT … FOR UPDATE SKIP LOCKED`` followed by setting the lease
(``locked_by``, ``locked_until``); on SQLite the claim runs inside a ``BEGIN IMMEDIATE`` unit, so
the conditional UPDATE is atomic with respect to every other writer. Each claimed instance is then
advanced (``Runtime.fire_timer``), which checks that this worker still holds
the lease; the instance's optimistic ``version`` column settles any remaining race, so a timer
fires exactly once.

A claimed batch is fired in ONE transaction (``Runtime.timer_batch``): the instance rows are locked
and their projections read with one query each, every instance is still loaded, advanced and
saved, and the common case's writes go out as multi-row statements at the end. An instance that
fails rolls back alone (its own SAVEPOINT, or nothing written yet); its failure is recorded after
the batch commits. Should the batch's transaction itself fail, nothing of it was written and its
instances are fired again one unit of work each.

A worker that dies leaves its lease behind; once ``locked_until`` has passed, another worker claims
the timer. A timer whose instance fails with an unexpected error is retried with exponential
back-off (``locked_until`` doubles as "not before"); after ``max_attempts`` failures the timer is
marked ``failed`` and the instance gets an incident (a quality lead's retry re-projects the timer).
Other timers of the pass go on regardless.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update

import storage.scheduling  # noqa: F401  (registers the scheduler tables on Base.metadata)
from engine import clock
from engine.errors import ConflictError, NotFoundError
from engine.runtime import Runtime
from engine.settings import current as current_settings
from storage.db import Database
from storage.models import AuditEvent, Incident, ProcessInstance, Timer

log = logging.getLogger("pdcaflow.timers")


@dataclass
class TimerPolicy:
    lease: timedelta = timedelta(minutes=5)
    max_attempts: int = 3
    backoff: timedelta = timedelta(seconds=30)  # after failure n: backoff * 2**(n-1), capped
    backoff_cap: timedelta = timedelta(hours=1)
    batch: int = 100
    max_rounds: int = 50

    @classmethod
    def from_env(cls) -> TimerPolicy:
        settings = current_settings()
        return cls(
            lease=timedelta(seconds=settings.timer_lease),
            max_attempts=max(1, settings.timer_max_attempts),
            backoff=timedelta(seconds=settings.timer_backoff),
            batch=max(1, settings.timer_batch),
        )

    def delay(self, attempts: int) -> timedelta:
        return min(self.backoff * (2 ** max(0, attempts - 1)), self.backoff_cap)


@dataclass
class TimerPassResult:
    fired: int = 0
    instances: int = 0
    failed: int = 0
    conflicts: int = 0
    incidents: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"fired": self.fired, "instances": self.instances, "failed": self.failed,
                "conflicts": self.conflicts, "incidents": len(self.incidents)}


def claim_due_timers(db: Database, worker: str, *, limit: int = 100,
                     lease: timedelta = timedelta(minutes=5)) -> list[tuple[int, str]]:
    """Lease up to `limit` due, unleased timers to `worker`; returns [(timer_id, instance_id)]."""
    now = clock.now()
    until = now + lease
    free = or_(Timer.locked_until.is_(None), Timer.locked_until <= now)
    with db.write() as session:
        stmt = (select(Timer.id).where(Timer.state == "waiting", Timer.due_at <= now, free)
                .order_by(Timer.due_at, Timer.id).limit(limit))
        if db.dialect == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        ids = list(session.scalars(stmt))
        if not ids:
            return []
        session.execute(update(Timer).where(Timer.id.in_(ids), Timer.state == "waiting", free)
                        .values(locked_by=worker, locked_until=until)
                        .execution_options(synchronize_session=False))
        rows = session.execute(select(Timer.id, Timer.instance_id).where(
            Timer.id.in_(ids), Timer.locked_by == worker, Timer.locked_until == until)
            .order_by(Timer.due_at, Timer.id)).all()
    return [(r[0], r[1]) for r in rows]


def release(db: Database, timer_ids: list[int], worker: str) -> None:
    """Give leases back without counting an attempt (e.g. the instance was busy)."""
    with db.write() as session:
        session.execute(update(Timer).where(Timer.id.in_(timer_ids), Timer.locked_by == worker,
                                            Timer.state == "waiting")
                        .values(locked_by=None, locked_until=None)
                        .execution_options(synchronize_session=False))


def record_failure(db: Database, instance_id: str, timer_ids: list[int], worker: str, error: str,
                   policy: TimerPolicy) -> bool:
    """Count a failed attempt; back off, or after the last attempt fail the timer with an incident.

    Returns True when an incident was raised.
    """
    now = clock.now()
    raised = False
    with db.write() as session:
        timers = session.scalars(select(Timer).where(Timer.id.in_(timer_ids), Timer.state == "waiting",
                                                     Timer.locked_by == worker)).all()
        for timer in timers:
            timer.attempts = (timer.attempts or 0) + 1
            timer.locked_by = None
            if timer.attempts >= policy.max_attempts:
                timer.state = "failed"
                timer.locked_until = None
                message = (f"timer '{timer.spec_id}' could not fire after {timer.attempts} attempts: {error}")
                session.add(Incident(instance_id=instance_id, task_id=timer.task_id, task_name=timer.spec_id,
                                     message=message, data={}, created_at=now))
                session.add(AuditEvent(at=now, actor="scheduler", type="incident", instance_id=instance_id,
                                       task_id=timer.task_id, payload={"message": message, "task": timer.spec_id}))
                row = session.get(ProcessInstance, instance_id)
                if row is not None and row.status == "running":
                    row.status = "incident"
                raised = True
                log.error("incident instance=%s task=%s: %s", instance_id, timer.task_id, message)
            else:
                timer.locked_until = now + policy.delay(timer.attempts)
                log.warning("timer failed instance=%s task=%s attempt=%d/%d, retry at %s: %s", instance_id,
                            timer.task_id, timer.attempts, policy.max_attempts,
                            timer.locked_until.isoformat(), error)
    return raised


def fire_due_timers(runtime: Runtime, worker: str, policy: TimerPolicy | None = None) -> TimerPassResult:
    """One pass: claim batches of due timers and fire each batch in one unit of work until none are due."""
    policy = policy or TimerPolicy.from_env()
    result = TimerPassResult()
    seen: set[int] = set()
    rearm_retried(runtime.db)
    for _ in range(policy.max_rounds):
        claimed = claim_due_timers(runtime.db, worker, limit=policy.batch, lease=policy.lease)
        if not claimed:
            break
        fresh = [c for c in claimed if c[0] not in seen]
        if not fresh:  # only timers the engine did not consider due yet; leave them to the next pass
            release(runtime.db, [c[0] for c in claimed], worker)
            break
        by_instance: dict[str, list[int]] = {}
        for timer_id, instance_id in claimed:
            seen.add(timer_id)
            by_instance.setdefault(instance_id, []).append(timer_id)
        try:
            outcome = _fire_batch(runtime, worker, by_instance)
        except Exception:  # the batch's transaction failed as a whole: nothing of it was written
            log.warning("timer batch of %d instances failed; firing them one by one", len(by_instance),
                        exc_info=True)
            outcome = _fire_one_by_one(runtime, worker, by_instance)
        result.fired += outcome.fired
        result.instances += outcome.instances
        result.conflicts += outcome.conflicts
        for instance_id, ids, exc in outcome.failures:
            _record(runtime, worker, instance_id, ids, exc, policy, result)
        if len(claimed) < policy.batch:
            break
    return result


@dataclass
class _BatchOutcome:
    fired: int = 0
    instances: int = 0
    conflicts: int = 0
    failures: list[tuple[str, list[int], Exception]] = field(default_factory=list)


def _fire_batch(runtime: Runtime, worker: str, by_instance: dict[str, list[int]]) -> _BatchOutcome:
    """Fire a claimed batch in one transaction; `Runtime.fire_timer` joins it per instance (a failing
    instance rolls back alone). Failures are recorded by the caller after the batch has committed."""
    out = _BatchOutcome()
    with runtime.timer_batch(worker, by_instance) as batch:
        conflicted: list[int] = []
        gone: list[int] = []
        for instance_id, ids in by_instance.items():
            try:
                out.fired += runtime.fire_timer(instance_id, worker, ids)
                out.instances += 1
            except ConflictError:
                out.conflicts += 1
                conflicted.extend(ids)
            except NotFoundError:
                gone.extend(ids)
            except Exception as exc:  # any failure of one instance must not stop the others
                log.exception("timer firing failed instance=%s", instance_id)
                out.failures.append((instance_id, ids, exc))
        if conflicted:
            batch.release(conflicted)
        if gone:
            batch.mark_done(gone)
    log.debug("timer batch worker=%s instances=%d fast=%d full=%d", worker, len(by_instance), batch.fast, batch.full)
    return out


def _fire_one_by_one(runtime: Runtime, worker: str, by_instance: dict[str, list[int]]) -> _BatchOutcome:
    """Each instance in its own unit of work (the fallback when a batch transaction fails)."""
    out = _BatchOutcome()
    for instance_id, ids in by_instance.items():
        try:
            out.fired += runtime.fire_timer(instance_id, worker, ids)
            out.instances += 1
        except ConflictError:
            out.conflicts += 1
            release(runtime.db, ids, worker)
        except NotFoundError:
            _mark_done(runtime.db, ids)
        except Exception as exc:  # any failure of one instance must not stop the others
            log.exception("timer firing failed instance=%s", instance_id)
            out.failures.append((instance_id, ids, exc))
    return out


def _record(runtime: Runtime, worker: str, instance_id: str, ids: list[int], exc: Exception,
            policy: TimerPolicy, result: TimerPassResult) -> None:
    result.failed += 1
    try:
        if record_failure(runtime.db, instance_id, ids, worker, f"{type(exc).__name__}: {exc}", policy):
            result.incidents.append(instance_id)
    except Exception:
        log.exception("could not record the timer failure instance=%s", instance_id)


def _mark_done(db: Database, timer_ids: list[int]) -> None:
    with db.write() as session:
        session.execute(update(Timer).where(Timer.id.in_(timer_ids))
                        .values(state="done", locked_by=None, locked_until=None)
                        .execution_options(synchronize_session=False))


def rearm_retried(db: Database) -> int:
    """Timers failed by `record_failure` whose instance a quality lead has retried (running again)
    are armed again; `Runtime.fire_timer` then runs them even if they already turned READY."""
    with db.write() as session:
        running = select(ProcessInstance.id).where(ProcessInstance.status == "running")
        result = session.execute(update(Timer).where(Timer.state == "failed", Timer.instance_id.in_(running))
                                 .values(state="waiting", attempts=0, locked_by=None, locked_until=None)
                                 .execution_options(synchronize_session=False))
        return result.rowcount or 0
