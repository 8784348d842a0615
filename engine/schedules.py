"""Timer start events: the scheduler starts a new instance each time the timer comes due.

As in Camunda, a `timeDate` start event starts one instance at that moment, a `timeDuration` one
instance that long after deployment, and a `timeCycle` (`R3/PT10M`, `R/P1D`,
`R/2026-01-05T08:00:00Z/P7D`) one instance per interval, N times or forever; a cron `timeCycle`
(`0 0 9 ? * MON-FRI`, engine/cron.py) one instance at each of its times. Only the latest
version of a process is scheduled; deploying a new version moves the schedule to it. Due schedules
are leased like timers (storage/leases.py), so with several scheduler processes each start happens
once: a start and the consumption of its slot are one unit of work.

A start that fails keeps its slot and is tried again after the one back-off policy
(engine/backoff.py through the timer policy; `locked_until` is "not before"). After the timer
policy's `max_attempts` the schedule is in incident: it has no instance to hold an incident row,
so the schedule itself carries it (`failed_at`, `last_error`), shown to quality leads on the
processes and instances pages and by `GET /api/v1/schedules`. A lead re-arms it (`retry_schedule`) or
deploys a new version, which moves the schedule and re-arms it. Every failed attempt is audited
(`schedule_failed`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from engine import clock, cron, heartbeat
from engine.camunda_compat import parse_stored_model
from engine.definition_checks import BPMN_NS
from engine.definitions import DefinitionStore
from engine.errors import InvalidStateError, NotFoundError
from engine.permissions import check_lead
from engine.runtime import Runtime
from engine.runtime.timers import TimerPolicy
from engine.runtime.unit_of_work import audit_row
from engine.sandbox import evaluate
from engine.views import Actor, ScheduleView
from storage import instances as instance_store
from storage import schedules as store
from storage.db import Database

log = logging.getLogger("pdcaflow.schedules")
B = "{" + BPMN_NS + "}"
BATCH = 50
SCHEDULER = Actor.system("scheduler")


@dataclass(frozen=True)
class Plan:
    next_at: datetime | None
    interval: timedelta | None
    remaining: int  # -1 = forever


def timer_start_expression(xml: str, key: str) -> tuple[str, str] | None:
    """(kind, expression text) of the process's timer start event, if it has one."""
    root = parse_stored_model(xml)
    for process in root.iter(B + "process"):
        if process.get("id") != key:
            continue
        for start in process.findall(B + "startEvent"):
            for kind in ("timeCycle", "timeDate", "timeDuration"):
                el = start.find(f"{B}timerEventDefinition/{B}{kind}")
                if el is not None and (el.text or "").strip():
                    return kind, el.text.strip()
    return None


def plan(kind: str, expression: str, base: datetime) -> Plan:
    """When the first instance starts and how the next ones follow, counted from `base` (deployment).

    A cron `timeCycle` (Camunda's Quartz form, engine/cron.py) starts at each of its times, forever;
    its slots have no fixed interval (`_after` asks the cron for the next one)."""
    if kind == "timeCycle" and cron.is_cron(expression):
        return Plan(cron.next_after(expression, base), None, -1)
    text = str(evaluate(expression, {}))  # ISO text, or ${...} giving it
    if kind == "timeCycle" and cron.is_cron(text):
        return Plan(cron.next_after(text, base), None, -1)
    if kind == "timeDate":
        return Plan(TimerEventDefinition.get_datetime(text), None, 1)
    if kind == "timeDuration":
        parsed = TimerEventDefinition.parse_iso_duration(text)
        return Plan(base + TimerEventDefinition.get_timedelta_from_start(parsed, base), None, 1)
    parts = text.upper().strip("R").split("/")
    cycles = int(parts[0]) if parts[0] else -1
    if len(parts) == 3:
        first = TimerEventDefinition.get_datetime(parts[1])
        interval = TimerEventDefinition.get_timedelta_from_start(TimerEventDefinition.parse_iso_duration(parts[2]), first)
    else:
        interval = TimerEventDefinition.get_timedelta_from_start(TimerEventDefinition.parse_iso_duration(parts[1]), base)
        first = base + interval
    return Plan(first if cycles != 0 else None, interval, cycles)


def sync_schedules(db: Database) -> int:
    """Create or move the schedule of every latest process version with a timer start event.

    Moving a schedule to a new version also re-arms it when it was in incident (a lead's fix)."""
    now = clock.now()
    changed = 0
    with db.write() as session:
        existing = store.by_key(session)
        rearmed: list[store.ProcessSchedule] = []
        for definition in DefinitionStore.latest_all(session, "bpmn"):
            current = existing.get(definition.key)
            if current is not None and current.definition_id == definition.id:
                continue
            found = timer_start_expression(definition.xml, definition.key)
            if found is None:
                if current is not None:  # the new version has no timer start any more
                    current.next_at, current.definition_id, current.version = None, definition.id, definition.version
                    _clear_failures(current, rearmed)
                    current.updated_at = now
                    changed += 1
                continue
            kind, expression = found
            try:
                p = plan(kind, expression, max(definition.deployed_at, now) if current else definition.deployed_at)
            except Exception as exc:  # a bad timer text must not stop the other schedules
                log.warning("timer start of %s v%s cannot be scheduled: %s", definition.key, definition.version, exc)
                continue
            row = current or store.ProcessSchedule(key=definition.key, started=0, attempts=0)
            row.definition_id, row.version, row.expression = definition.id, definition.version, f"{kind}:{expression}"
            row.next_at = p.next_at
            row.interval_seconds = p.interval.total_seconds() if p.interval else None
            row.remaining, row.locked_by, row.locked_until, row.updated_at = p.remaining, None, None, now
            _clear_failures(row, rearmed)
            if current is None:
                session.add(row)
            changed += 1
        if rearmed:
            instance_store.insert_audit(session.connection(), [audit_row(
                "schedule_rearmed", SCHEDULER, None, None, {"key": r.key, "version": r.version, "by": "deploy"})
                for r in rearmed])
    return changed


def _clear_failures(row: store.ProcessSchedule, rearmed: list[store.ProcessSchedule]) -> None:
    if row.failed_at is not None:
        rearmed.append(row)
    row.attempts, row.last_error, row.failed_at = 0, None, None


def start_due(runtime: Runtime, worker: str, policy: TimerPolicy | None = None) -> int:
    """Start one instance per due schedule (catching up at most one start per pass); returns how many.

    A start that raises leaves its slot as it was: it is retried after back-off, and after the
    policy's `max_attempts` the schedule is in incident."""
    policy = policy or TimerPolicy.from_env()
    now = clock.now()
    with runtime.db.write() as session:
        due = store.claim_due(session, worker, now=now, lease=heartbeat.lease_length(), limit=BATCH)
    started = 0
    for item in due:
        try:
            if _start(runtime, worker, item, now):
                started += 1
        except Exception as exc:  # one schedule's failure must not stop the others
            _record_failure(runtime, worker, item, exc, policy)
    return started


def _start(runtime: Runtime, worker: str, due: store.DueSchedule, now: datetime) -> bool:
    """Consume the slot and start the instance in one unit of work: both happen, or neither."""
    next_at, remaining = _after(due, now)
    with runtime.unit_of_work() as uow:
        if not store.consume(uow.session, due, worker, next_at=next_at, remaining=remaining, now=clock.now()):
            return False  # our lease expired and another scheduler went on
        runtime.start(due.key, {}, SCHEDULER, version=due.version, uow=uow)
    return True


def _after(due: store.DueSchedule, now: datetime) -> tuple[datetime | None, int]:
    """The schedule's next slot and remaining starts once `due.next_at` has had its start."""
    remaining = due.remaining - 1 if due.remaining > 0 else due.remaining
    cron_text = _cron_of(due.expression)
    if remaining != 0 and cron_text:
        return cron.next_after(cron_text, max(due.next_at, now)), remaining
    if remaining == 0 or not due.interval_seconds:
        return None, remaining
    step = timedelta(seconds=due.interval_seconds)
    following = due.next_at + step
    while following <= now:  # a scheduler that was down skips missed cycles instead of bursting
        following += step
    return following, remaining


def _cron_of(expression: str | None) -> str | None:
    """The cron text of a schedule's `kind:text` expression, if it is a cron timeCycle."""
    kind, _, text = (expression or "").partition(":")
    if kind != "timeCycle":
        return None
    if cron.is_cron(text):
        return text
    try:  # ${...} giving a cron text
        value = str(evaluate(text, {})) if "${" in text else ""
    except Exception:  # noqa: BLE001 - planned once already; an ISO cycle has its interval
        return None
    return value if cron.is_cron(value) else None


def _record_failure(runtime: Runtime, worker: str, due: store.DueSchedule, exc: Exception,
                    policy: TimerPolicy) -> None:
    """Count a failed start: back off, or after the last attempt put the schedule in incident."""
    error = f"{type(exc).__name__}: {exc}"[:2000]
    attempts = due.attempts + 1
    now = clock.now()
    incident = attempts >= policy.max_attempts
    retry_at = None if incident else now + policy.delay(attempts)
    try:
        with runtime.db.write() as session:
            if incident:
                held = store.fail(session, due.key, worker, attempts=attempts, error=error, now=now)
            else:
                held = store.back_off(session, due.key, worker, attempts=attempts, error=error,
                                      retry_at=retry_at, now=now)
            if held:
                instance_store.insert_audit(session.connection(), [audit_row(
                    "schedule_failed", SCHEDULER, None, None,
                    {"key": due.key, "version": due.version, "slot": due.next_at, "attempt": attempts,
                     "max_attempts": policy.max_attempts, "message": error, "retry_at": retry_at,
                     "incident": incident})])
    except Exception:
        log.exception("could not record the failed scheduled start of %s", due.key)
        return
    if incident:
        log.error("scheduled start of %s v%s failed %d times, schedule in incident: %s", due.key, due.version,
                  attempts, error, exc_info=exc)
    else:
        log.warning("scheduled start of %s v%s failed (attempt %d/%d), retry at %s: %s", due.key, due.version,
                    attempts, policy.max_attempts, retry_at.isoformat() if retry_at else "-", error, exc_info=exc)


# ---------------------------------------------------------------------- what quality leads see and do
STATES = ("scheduled", "retrying", "incident", "done")


def list_schedules(db: Database, state: str | None = None) -> list[ScheduleView]:
    """Every process's timer start (those in incident first), or those in `state` (one of STATES)."""
    with db.read() as session:
        views = [view_of(row) for row in store.listing(session)]
    return [v for v in views if v.state == state] if state else views


def retry_schedule(db: Database, key: str, actor: Actor) -> ScheduleView:
    """Re-arm a schedule in incident: the scheduler tries its slot again on its next pass."""
    check_lead(actor, "retry a scheduled start")
    now = clock.now()
    with db.write() as session:
        row = store.get(session, key)
        if row is None:
            raise NotFoundError(f"process '{key}' has no timer start")
        if row.failed_at is None:
            raise InvalidStateError(f"the timer start of '{key}' is not in incident; there is nothing to retry")
        store.rearm(session, key, now)
        instance_store.insert_audit(session.connection(), [audit_row(
            "schedule_retry", actor, None, None, {"key": key, "version": row.version, "error": row.last_error})])
        session.refresh(row)
        return view_of(row)


def view_of(row: store.ProcessSchedule) -> ScheduleView:
    if row.failed_at is not None:
        state = "incident"
    elif row.next_at is None:
        state = "done"
    else:
        state = "retrying" if row.attempts else "scheduled"
    return ScheduleView(key=row.key, version=row.version, expression=row.expression, state=state,
                        next_at=row.next_at, remaining=row.remaining, started=row.started, attempts=row.attempts,
                        last_error=row.last_error, failed_at=row.failed_at,
                        retry_at=row.locked_until if state == "retrying" else None)
