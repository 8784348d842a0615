"""Escalation of overdue human tasks.

Levels, relative to the task's `due_at`:

| level          | when                   | to                                            |
|----------------|------------------------|-----------------------------------------------|
| `reminder`     | due − reminder (P1D)*  | the assignee, or the candidate groups if unclaimed (skipped once due) |
| `overdue`      | due                    | the assignee and the candidate groups          |
| `escalation`   | due + grace (P1D)      | `to` (default `quality_lead`: that group and users with that role) |
| `escalation_N` | due + levelN           | levelN.to (default: as `escalation`)           |

Defaults come from the settings (engine/settings.py: `PDCAFLOW_ESCALATION_REMINDER`, `…_GRACE`, `…_TO`,
`…_LEVEL2`/`…_LEVEL2_TO` … `…_LEVEL9`, `PDCAFLOW_ESCALATION=off`, `…_REMINDER_ELAPSED`); a process or a
single user task overrides them with `camunda:properties`: `escalation.reminder`,
`escalation.reminder.elapsed`, `escalation.grace`, `escalation.to`,
`escalation.level2`, `escalation.level2.to`, …, `escalation.enabled=false`. Durations are ISO 8601;
`0`, `off` or `none` switches a level off.

(*) A reminder is "due soon": it waits until `escalation.reminder.elapsed` (a fraction, default 0.5) of
the task's time from creation to due has passed, so a one-day task with a one-day reminder is not
reminded the moment it is created (`level_at`).

Every applied level is one `task_escalation` row, unique per (task, due date, level), written in the
same transaction as its notifications, so a level is applied once however many schedulers run.
A changed due date starts a new cycle. Completing the task stops it (only open/claimed tasks are
looked at); a reassignment by a quality lead after the cycle began stops the rest of that cycle.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import storage.scheduling  # noqa: F401  (registers the scheduler tables on Base.metadata)
from engine import clock
from engine.camunda_compat import parse_stored_model
from engine.notifications import Recipient, enqueue, recipients, task_context
from engine.settings import MAX_ESCALATION_LEVEL, OFF_WORDS, Settings
from engine.settings import current as current_settings
from storage.db import Database
from storage.models import AuditEvent, HumanTask, ProcessDefinition, ProcessInstance
from storage.scheduling import TaskEscalation

log = logging.getLogger("pdcaflow.escalation")

CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
OFF = OFF_WORDS
COMPLETE = "_complete"  # internal marker: every level of this cycle applied, or the cycle stopped
MAX_LEVELS = MAX_ESCALATION_LEVEL


def _duration(text: str | None) -> timedelta | None:
    if text is None or str(text).strip().lower() in OFF:
        return None
    value = str(text).strip()
    try:
        parsed = TimerEventDefinition.parse_iso_duration(value)
    except Exception:
        log.warning("escalation duration %r is not ISO 8601; level switched off", value)
        return None
    now = clock.now()
    return TimerEventDefinition.get_timedelta_from_start(parsed, now)


def _env_properties(settings: Settings | None = None) -> dict[str, str]:
    """The installation's defaults (PDCAFLOW_ESCALATION*), spelled as camunda properties."""
    settings = settings or current_settings()
    props = {
        "escalation.enabled": "on" if settings.escalation_enabled else "off",
        "escalation.reminder": settings.escalation_reminder or "off",
        "escalation.grace": settings.escalation_grace or "off",
        "escalation.reminder.elapsed": str(settings.escalation_reminder_elapsed),
        "escalation.to": ",".join(settings.escalation_to),
    }
    for level in settings.escalation_levels:
        if level.after is not None:
            props[f"escalation.level{level.n}"] = level.after
        if level.to:
            props[f"escalation.level{level.n}.to"] = ",".join(level.to)
    return props


@dataclass(frozen=True)
class Level:
    name: str
    offset: timedelta  # relative to due_at (negative: before)
    audience: str  # "assignee" | "assignee+groups" | "to"
    to: tuple[str, ...] = ()


@dataclass
class Policy:
    enabled: bool = True
    levels: list[Level] = field(default_factory=list)
    reminder_elapsed: float = 0.5  # share of the task's time that passes before a reminder

    @property
    def lookahead(self) -> timedelta:
        return max((-lv.offset for lv in self.levels), default=timedelta(0))


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def policy_from(props: dict[str, str]) -> Policy:
    if str(props.get("escalation.enabled", "on")).strip().lower() in OFF:
        return Policy(enabled=False)
    levels: list[Level] = []
    reminder = _duration(props.get("escalation.reminder"))
    if reminder is not None:
        levels.append(Level("reminder", -reminder, "assignee"))
    levels.append(Level("overdue", timedelta(0), "assignee+groups"))
    to = _split(props.get("escalation.to")) or ("quality_lead",)
    grace = _duration(props.get("escalation.grace"))
    if grace is not None:
        levels.append(Level("escalation", grace, "to", to))
    for n in range(2, MAX_LEVELS + 1):
        after = _duration(props.get(f"escalation.level{n}"))
        if after is not None:
            levels.append(Level(f"escalation_{n}", after, "to", _split(props.get(f"escalation.level{n}.to")) or to))
    return Policy(True, sorted(levels, key=lambda lv: lv.offset), _fraction(props.get("escalation.reminder.elapsed")))


def _fraction(text: str | None, default: float = 0.5) -> float:
    try:
        value = float(str(text).strip()) if text not in (None, "") else default
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1:
        log.warning("escalation.reminder.elapsed %r is not a fraction from 0 to 1; using %s", text, default)
        return default
    return value


def level_at(level: Level, created_at: datetime, due_at: datetime, policy: Policy) -> datetime:
    """When a level comes due. A reminder also waits until `policy.reminder_elapsed` of the task's
    time (creation to due) has passed: a reminder lead time as long as the task never fires at creation."""
    at = due_at + level.offset
    if level.name == "reminder" and due_at > created_at:
        at = max(at, created_at + (due_at - created_at) * policy.reminder_elapsed)
    return at


# ---------------------------------------------------------------------- camunda:properties from the XML
# keyed by (id, content hash): ids repeat across databases (tests, several deployments), hashes don't lie
_props_cache: dict[tuple[int, str], tuple[dict[str, str], dict[str, dict[str, str]]]] = {}
_props_lock = threading.Lock()


def _properties_of(element: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for prop in element.findall(f"{{{BPMN_NS}}}extensionElements/{{{CAMUNDA_NS}}}properties/{{{CAMUNDA_NS}}}property"):
        if prop.get("name", "").startswith("escalation."):
            out[prop.get("name")] = prop.get("value", "")
    return out


def definition_properties(session: Session, definition_id: int) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(process-level escalation properties, {task element id: its properties}) of a deployed version."""
    content_hash = session.scalar(select(ProcessDefinition.content_hash).where(ProcessDefinition.id == definition_id))
    cached = _props_cache.get((definition_id, content_hash or ""))
    if cached is not None:
        return cached
    definition = session.get(ProcessDefinition, definition_id)
    process_props: dict[str, str] = {}
    task_props: dict[str, dict[str, str]] = {}
    if definition is not None:
        root = parse_stored_model(definition.xml)
        for process in root.iter(f"{{{BPMN_NS}}}process"):
            if process.get("id") == definition.key:
                process_props = _properties_of(process)
            for task in process.iter(f"{{{BPMN_NS}}}userTask"):
                props = _properties_of(task)
                if props:
                    task_props[task.get("id")] = props
    with _props_lock:
        _props_cache[(definition_id, content_hash or "")] = (process_props, task_props)
    return process_props, task_props


def policy_for(session: Session, definition_id: int, spec_id: str, defaults: dict[str, str] | None = None) -> Policy:
    process_props, task_props = definition_properties(session, definition_id)
    merged = {**(defaults if defaults is not None else _env_properties()), **process_props,
              **task_props.get(spec_id, {})}
    return policy_from(merged)


# ---------------------------------------------------------------------- the pass
@dataclass
class EscalationResult:
    applied: int = 0
    stopped: int = 0
    skipped: int = 0


def _audience(session: Session, task: HumanTask, level: Level) -> list[Recipient]:
    groups = list(task.candidate_groups or [])
    if level.audience == "assignee":
        return recipients(session, users=[task.assignee]) if task.assignee else recipients(session, groups=groups)
    if level.audience == "assignee+groups":
        return recipients(session, users=[task.assignee] if task.assignee else [], groups=groups)
    users = [t[5:] for t in level.to if t.startswith("user:")]
    names = [t for t in level.to if not t.startswith("user:")]
    roles = [n[5:] if n.startswith("role:") else n for n in names]
    groups_to = [n[6:] if n.startswith("group:") else n for n in names if not n.startswith("role:")]
    return recipients(session, users=users, groups=groups_to, roles=roles)


def _apply(db: Database, task_id: str, due_at: datetime, level: Level, worker: str, now: datetime) -> bool:
    """Apply one level in its own unit of work; False if it was already applied (by anyone)."""
    try:
        with db.write() as session:
            # locked (PostgreSQL): a completion committing between this check and the writes below
            # would get an escalation after it; it waits for this one instead (no instance lock here)
            task = session.get(HumanTask, task_id, with_for_update=True)
            if task is None or task.state not in ("open", "claimed") or task.due_at != due_at:
                return False
            if level.name == COMPLETE:
                session.add(TaskEscalation(task_id=task_id, instance_id=task.instance_id, level=COMPLETE,
                                           due_at=due_at, at=now, notified=[], worker=worker))
                return True
            to = _audience(session, task, level)
            session.add(TaskEscalation(task_id=task_id, instance_id=task.instance_id, level=level.name,
                                       due_at=due_at, at=now, notified=[r.username for r in to], worker=worker))
            session.flush()  # the unique constraint decides who applies the level
            kind = "escalation" if level.name.startswith("escalation") else level.name
            enqueue(session, kind, to, task_context(session, task, level=level.name),
                    f"esc:{task_id}:{due_at.isoformat()}:{level.name}", task_id=task_id,
                    instance_id=task.instance_id, now=now)
            session.add(AuditEvent(at=now, actor="scheduler", type="escalation", instance_id=task.instance_id,
                                   task_id=task_id, payload={"level": level.name,
                                                             "notified": [r.username for r in to]}))
        log.info("escalation task=%s level=%s notified=%s", task_id, level.name, [r.username for r in to])
        return True
    except IntegrityError:
        return False


def escalate_overdue(db: Database, worker: str = "scheduler", *, batch: int = 200,
                     defaults: dict[str, str] | None = None,
                     max_lookahead: timedelta = timedelta(days=30)) -> EscalationResult:
    """Apply every escalation level that has come due, for open/claimed tasks with a due date."""
    now = clock.now()
    defaults = defaults if defaults is not None else _env_properties()
    result = EscalationResult()
    last: tuple[datetime, str] | None = None
    while True:
        with db.read() as session:
            done = exists().where(TaskEscalation.task_id == HumanTask.id, TaskEscalation.due_at == HumanTask.due_at,
                                  TaskEscalation.level == COMPLETE)
            stmt = (select(HumanTask.id, HumanTask.due_at, HumanTask.created_at, HumanTask.spec_id,
                           HumanTask.instance_id, ProcessInstance.definition_id)
                    .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
                    .where(HumanTask.state.in_(("open", "claimed")), HumanTask.due_at.is_not(None),
                           HumanTask.due_at <= now + max_lookahead, ~done)
                    .order_by(HumanTask.due_at, HumanTask.id).limit(batch))
            if last is not None:
                stmt = stmt.where(or_(HumanTask.due_at > last[0], and_(HumanTask.due_at == last[0],
                                                                       HumanTask.id > last[1])))
            rows = session.execute(stmt).all()
            if not rows:
                break
            ids = [r.id for r in rows]
            applied: dict[str, dict[datetime, dict[str, datetime]]] = {}
            for esc in session.scalars(select(TaskEscalation).where(TaskEscalation.task_id.in_(ids))):
                applied.setdefault(esc.task_id, {}).setdefault(esc.due_at, {})[esc.level] = esc.at
            instance_ids = list({r.instance_id for r in rows})
            reassigned: dict[str, datetime] = {}
            for task_id, at in session.execute(select(AuditEvent.task_id, AuditEvent.at).where(
                    AuditEvent.instance_id.in_(instance_ids), AuditEvent.type == "assign",
                    AuditEvent.task_id.in_(ids))):
                reassigned[task_id] = max(at, reassigned.get(task_id, at))
            plans = []
            for r in rows:
                policy = policy_for(session, r.definition_id, r.spec_id, defaults)
                plans.append((r, policy))
        for r, policy in plans:
            last = (r.due_at, r.id)
            cycle = applied.get(r.id, {}).get(r.due_at, {})
            if not policy.enabled:
                _apply(db, r.id, r.due_at, Level(COMPLETE, timedelta(0), "to"), worker, now)
                continue
            if r.due_at - policy.lookahead > now:
                continue
            started = min(cycle.values()) if cycle else None
            if started is not None and r.id in reassigned and reassigned[r.id] > started:
                _apply(db, r.id, r.due_at, Level(COMPLETE, timedelta(0), "to"), worker, now)
                result.stopped += 1
                continue
            pending = [lv for lv in policy.levels if lv.name not in cycle and f"_{lv.name}_skipped" not in cycle]
            for level in pending:
                if level_at(level, r.created_at, r.due_at, policy) > now:
                    break
                if level.name == "reminder" and now >= r.due_at:
                    result.skipped += 1  # came too late to remind; the overdue notice goes out instead
                    _apply_skip(db, r.id, r.due_at, level, worker, now)
                    continue
                if _apply(db, r.id, r.due_at, level, worker, now):
                    result.applied += 1
            else:
                _apply(db, r.id, r.due_at, Level(COMPLETE, timedelta(0), "to"), worker, now)
        if len(rows) < batch:
            break
    return result


def _apply_skip(db: Database, task_id: str, due_at: datetime, level: Level, worker: str, now: datetime) -> None:
    """Record a level as passed without notifying anyone (so it is not looked at again)."""
    try:
        with db.write() as session:
            task = session.get(HumanTask, task_id)
            if task is None:
                return
            session.add(TaskEscalation(task_id=task_id, instance_id=task.instance_id, level=f"_{level.name}_skipped",
                                       due_at=due_at, at=now, notified=[], worker=worker))
    except IntegrityError:
        pass


def escalations_for(db: Database, task_id: str) -> list[dict[str, Any]]:
    """`[{level, at, notified, due_at}]` of a task, oldest first (every due-date cycle; internal markers left out)."""
    with db.read() as session:
        rows = session.scalars(select(TaskEscalation).where(TaskEscalation.task_id == task_id)
                               .order_by(TaskEscalation.at, TaskEscalation.id)).all()
        return [{"level": r.level, "at": r.at.isoformat(), "notified": list(r.notified or []),
                 "due_at": r.due_at.isoformat()} for r in rows if not r.level.startswith("_")]
