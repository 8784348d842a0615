"""Timer start events: the scheduler starts a new instance each time the timer comes due.

As in Camunda, a `timeDate` start event starts one instance at that moment, a `timeDuration` one
instance that long after deployment, and a `timeCycle` (`R3/PT10M`, `R/P1D`,
`R/2026-01-05T08:00:00Z/P7D`) one instance per interval, N times or forever. Only the latest
version of a process is scheduled; deploying a new version moves the schedule to it. Due schedules
are leased like timers, so with several scheduler processes each start happens once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from sqlalchemy import or_, select, update

from engine import clock
from engine.definition_checks import BPMN_NS
from engine.definitions import DefinitionStore
from engine.runtime import Runtime
from engine.sandbox import evaluate
from engine.views import Actor
from engine.xml_safety import parse_stored
from storage.db import Database
from storage.schedules import ProcessSchedule

log = logging.getLogger("pdcaflow.schedules")
B = "{" + BPMN_NS + "}"
LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class Plan:
    next_at: datetime | None
    interval: timedelta | None
    remaining: int  # -1 = forever


def timer_start_expression(xml: str, key: str) -> tuple[str, str] | None:
    """(kind, expression text) of the process's timer start event, if it has one."""
    root = parse_stored(xml)
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
    """When the first instance starts and how the next ones follow, counted from `base` (deployment)."""
    text = str(evaluate(expression, {}))  # ISO text, or ${...} giving it
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
    """Create or move the schedule of every latest process version with a timer start event."""
    now = clock.now()
    changed = 0
    with db.write() as session:
        existing = {s.key: s for s in session.scalars(select(ProcessSchedule))}
        for definition in DefinitionStore.latest_all(session, "bpmn"):
            current = existing.get(definition.key)
            if current is not None and current.definition_id == definition.id:
                continue
            found = timer_start_expression(definition.xml, definition.key)
            if found is None:
                if current is not None:  # the new version has no timer start any more
                    current.next_at, current.definition_id, current.version = None, definition.id, definition.version
                    current.updated_at = now
                    changed += 1
                continue
            kind, expression = found
            try:
                p = plan(kind, expression, max(definition.deployed_at, now) if current else definition.deployed_at)
            except Exception as exc:  # a bad timer text must not stop the other schedules
                log.warning("timer start of %s v%s cannot be scheduled: %s", definition.key, definition.version, exc)
                continue
            row = current or ProcessSchedule(key=definition.key, started=0)
            row.definition_id, row.version, row.expression = definition.id, definition.version, f"{kind}:{expression}"
            row.next_at = p.next_at
            row.interval_seconds = p.interval.total_seconds() if p.interval else None
            row.remaining, row.locked_by, row.locked_until, row.updated_at = p.remaining, None, None, now
            if current is None:
                session.add(row)
            changed += 1
    return changed


def start_due(runtime: Runtime, worker: str) -> int:
    """Start one instance per due schedule (catching up at most one start per pass); returns how many."""
    db = runtime.db
    now = clock.now()
    free = or_(ProcessSchedule.locked_until.is_(None), ProcessSchedule.locked_until <= now)
    with db.write() as session:
        stmt = select(ProcessSchedule.key).where(ProcessSchedule.next_at <= now, free).limit(50)
        if db.dialect == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        keys = list(session.scalars(stmt))
        if keys:
            session.execute(update(ProcessSchedule).where(ProcessSchedule.key.in_(keys), free)
                            .values(locked_by=worker, locked_until=now + LEASE)
                            .execution_options(synchronize_session=False))
    started = 0
    actor = Actor.system("scheduler")
    for key in keys:
        with db.read() as session:
            row = session.get(ProcessSchedule, key)
            if row is None or row.locked_by != worker:
                continue
            version = row.version
        try:
            runtime.start(key, {}, actor, version=version)
            started += 1
        except Exception:
            log.exception("scheduled start of %s v%s failed", key, version)
        with db.write() as session:
            row = session.get(ProcessSchedule, key)
            if row is None or row.locked_by != worker:
                continue
            row.started += 1
            if row.remaining > 0:
                row.remaining -= 1
            if row.remaining == 0 or not row.interval_seconds:
                row.next_at = None
            else:
                step = timedelta(seconds=row.interval_seconds)
                following = row.next_at + step
                while following <= now:  # a scheduler that was down skips missed cycles instead of bursting
                    following += step
                row.next_at = following
            row.locked_by, row.locked_until, row.updated_at = None, None, clock.now()
    return started
