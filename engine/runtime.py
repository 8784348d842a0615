"""The runtime service API: the only way web handlers, the API, the CLI and the scheduler change
process state.

Each call is one unit of work: load the instance row, restore the SpiffWorkflow state against the
cached spec, act, run engine steps, then write the state and the projections (human tasks,
timers, message subscriptions, incidents, audit) in the same transaction. The instance's
`version` column makes concurrent writers safe: exactly one wins, the other gets ConflictError.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition, TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent as BpmnStartEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, cast, insert, literal, null, or_, select, union_all, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from engine import clock
from engine.assignment import AssignmentError, parse_when, resolve
from engine.definitions import DefinitionStore, DeployReport, DeployResult, collect_files
from engine.errors import (
    ConflictError,
    DeploymentError,
    EngineError,
    FormValidationError,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
)
from engine.forms import check_start_data, form_fields, get_path, set_path, validate_submission
from engine.permissions import check_may_act as _check_may_act
from engine.permissions import may_see_task as _may_see
from engine.sandbox import SandboxScriptEngine
from engine.serialization import dump_state, load_state
from engine.views import Actor, AuditView, IncidentView, InstanceView, TaskView
from storage import queries
from storage.db import Database
from storage.errors import ConcurrentUpdateError
from storage.models import (
    AuditEvent,
    HumanTask,
    HumanTaskGroup,
    Incident,
    MessageSubscription,
    ProcessDefinition,
    ProcessInstance,
    Timer,
)

log = logging.getLogger("pdcaflow.engine")

OPEN_STATES = ("open", "claimed")


class _Loaded:
    """An instance row with its restored workflow, inside one unit of work."""

    def __init__(self, row: _InstanceRecord, workflow: BpmnWorkflow, *, new: bool = False) -> None:
        self.row = row
        self.workflow = workflow
        # A started instance not yet inserted: nothing of it exists in the database, so `_save` reads
        # no projections and inserts the row (with its final state) before the rows that refer to it.
        self.new = new
        # Every human task row of the instance with its groups, as `_save` left them (for the view).
        self.task_rows: list[Any] | None = None
        self.task_groups: dict[str, list[str]] = {}
        self.incidents: list[Incident] = []  # raised in this unit of work
        # Whether projections of timers/messages may exist, so saves of plain user-task steps skip
        # the two projection queries.
        timers, messages = _waiting_events(workflow)
        self.had_waits = bool(timers or messages)


class Runtime:
    def __init__(self, db: Database, definitions: DefinitionStore | None = None) -> None:
        self.db = db
        self.definitions = definitions or DefinitionStore()
        self.script_engine = SandboxScriptEngine()

    # ------------------------------------------------------------------ units of work
    @contextmanager
    def _write(self) -> Iterator[Session]:
        try:
            with self.db.write() as session:
                yield session
                _flush_audit(session)
        except ConcurrentUpdateError as exc:
            raise ConflictError(str(exc)) from exc

    # ------------------------------------------------------------------ definitions
    def deploy(self, files: list[tuple[str, bytes]], actor: Actor | None = None) -> DeployReport:
        """Deploy the files that are valid; the report lists results and every problem."""
        with self._write() as session:
            report = self.definitions.deploy(session, files, actor.username if actor else None)
            for result in report.results:
                if not result.unchanged:
                    self._audit(session, "deploy", actor, None, None,
                                {"key": result.key, "version": result.version, "kind": result.kind})
        return report

    def deploy_paths(self, paths: Iterable[Path | str], actor: Actor | None = None) -> list[DeployResult]:
        """Deploy files/folders; raise DeploymentError (deploying nothing) if any file has a problem."""
        files = [(str(p), Path(p).read_bytes()) for p in collect_files(paths)]
        with self._write() as session:
            report = self.definitions.deploy(session, files, actor.username if actor else None)
            if report.problems:
                raise DeploymentError(report.problems)
            for result in report.results:
                if not result.unchanged:
                    self._audit(session, "deploy", actor, None, None,
                                {"key": result.key, "version": result.version, "kind": result.kind})
        return report.results

    def definitions_list(self, all_versions: bool = False) -> list[dict[str, Any]]:
        with self.db.read() as session:
            if all_versions:
                rows = list(session.scalars(select(ProcessDefinition).order_by(
                    ProcessDefinition.key, ProcessDefinition.version)))
            else:
                rows = DefinitionStore.latest_all(session)
            return [{"key": d.key, "version": d.version, "name": d.name, "kind": d.kind,
                     "deployed_at": d.deployed_at, "source_name": d.source_name} for d in rows]

    def definition_xml(self, key: str, version: int | None = None) -> str:
        with self.db.read() as session:
            definition = self._definition(session, key, version)
            return definition.xml

    def _definition(self, session: Session, key: str, version: int | None) -> ProcessDefinition:
        if version is None:
            definition = DefinitionStore.latest(session, key)
        else:
            definition = session.scalars(select(ProcessDefinition).where(
                ProcessDefinition.key == key, ProcessDefinition.version == version,
                ProcessDefinition.kind == "bpmn")).first()
        if definition is None:
            raise NotFoundError(f"process '{key}'" + (f" version {version}" if version else "") + " is not deployed")
        return definition

    # ------------------------------------------------------------------ instances
    def start(self, key: str, data: dict[str, Any] | None, actor: Actor, *, version: int | None = None,
              business_key: str | None = None) -> InstanceView:
        data = dict(data or {})
        with self._write() as session:
            # id, key and version only: the definition's XML and serialized spec stay in the database
            if version is None:
                definition = session.connection().execute(_LATEST_DEFINITION, {"key": key}).first()
            else:
                definition = session.connection().execute(_DEFINITION_VERSION, {"key": key, "version": version}).first()
            if definition is None:
                raise NotFoundError(f"process '{key}'" + (f" version {version}" if version else "") + " is not deployed")
            # the start event's form checks and coerces its fields; other variables pass (programmatic starts)
            data = check_start_data(self.definitions.start_form(session, definition.id), data)
            spec, subs = self.definitions.specs(session, definition.id)
            try:
                workflow = BpmnWorkflow(spec, subs, script_engine=self.script_engine)
            except SpiffWorkflowException as exc:
                # e.g. an element id that collides with SpiffWorkflow's own 'Start'/'End' task specs
                raise InvalidStateError(f"process '{key}' v{definition.version} cannot start: {_message_of(exc)}"
                                        ) from exc
            workflow.task_tree.data.update(data)
            start_task = workflow.get_next_task(state=TaskState.READY)
            if start_task is not None:
                start_task.data.update(data)
            now = clock.now()
            _fire_start_timers(workflow, now)
            row = _InstanceRecord(dict(
                id=uuid.uuid4().hex, definition_id=definition.id, process_key=definition.key,
                process_version=definition.version, business_key=business_key or _text(data.get("reference")),
                status="running", state=b"", data=data, started_at=now, started_by=actor.username, ended_at=None,
                version=0,
            ))
            self._audit(session, "start", actor, row.id, None,
                        {"key": key, "version": definition.version, "business_key": row.business_key})
            loaded = _Loaded(row, workflow, new=True)
            self._advance(session, loaded, actor)
            self._save(session, loaded)
            view = self._loaded_view(session, loaded)
        return view

    def instance(self, instance_id: str) -> InstanceView:
        with self.db.read() as session:
            return self._instance_view(session, instance_id)

    def _instance_view(self, session: Session, instance_id: str) -> InstanceView:
        """The instance as callers see it; also used inside a write so the result needs no second transaction."""
        row = session.get(ProcessInstance, instance_id)
        if row is None:
            raise NotFoundError(f"instance {instance_id} not found")
        tasks = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id)
                                .order_by(HumanTask.created_at, HumanTask.id)).all()
        incidents = session.scalars(select(Incident).where(Incident.instance_id == instance_id)
                                    .order_by(Incident.id)).all()
        audit = session.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance_id)
                                .order_by(AuditEvent.id)).all()
        groups = self._groups_of(session, [t.id for t in tasks])
        return InstanceView(
            id=row.id, key=row.process_key, version=row.process_version, status=row.status,
            business_key=row.business_key, data=dict(row.data or {}), started_at=row.started_at,
            ended_at=row.ended_at,
            tasks=[_task_view(t, groups.get(t.id, [])) for t in tasks],
            incidents=[IncidentView(i.id, i.task_id, i.task_name, i.message, i.data, i.created_at, i.resolved_at)
                       for i in incidents],
            audit=[AuditView(a.at, a.actor, a.type, a.task_id, a.payload) for a in audit],
        )

    def instances(self, *, key: str | None = None, status: str | None = None, limit: int = 100,
                  offset: int = 0) -> list[dict[str, Any]]:
        with self.db.read() as session:
            stmt = select(ProcessInstance.id, ProcessInstance.process_key, ProcessInstance.process_version,
                          ProcessInstance.status, ProcessInstance.business_key, ProcessInstance.started_at,
                          ProcessInstance.ended_at)
            if key:
                stmt = stmt.where(ProcessInstance.process_key == key)
            if status:
                stmt = stmt.where(ProcessInstance.status == status)
            rows = session.execute(stmt.order_by(ProcessInstance.started_at.desc()).limit(limit).offset(offset))
            return [dict(r._mapping) for r in rows]

    def cancel(self, instance_id: str, actor: Actor, reason: str = "") -> InstanceView:
        if not actor.is_lead:
            raise PermissionDeniedError("only quality leads and admins can cancel an instance")
        with self._write() as session:
            loaded = self._load(session, instance_id)
            if loaded.row.status in ("completed", "cancelled"):
                raise InvalidStateError(f"instance {instance_id} is already {loaded.row.status}")
            loaded.workflow.cancel()
            loaded.row.status = "cancelled"
            loaded.row.ended_at = clock.now()
            for incident in session.scalars(select(Incident).where(
                    Incident.instance_id == instance_id, Incident.resolved_at.is_(None))):
                incident.resolved_at, incident.resolved_by = loaded.row.ended_at, actor.username
            self._audit(session, "cancel", actor, instance_id, None, {"reason": reason})
            self._save(session, loaded)
        return self.instance(instance_id)

    def retry(self, instance_id: str, actor: Actor, data: dict[str, Any] | None = None) -> InstanceView:
        """Run the failed task again, optionally with corrected data, after the cause is fixed."""
        if not actor.is_lead:
            raise PermissionDeniedError("only quality leads and admins can retry an incident")
        with self._write() as session:
            loaded = self._load(session, instance_id)
            if loaded.row.status != "incident":
                raise InvalidStateError(f"instance {instance_id} is {loaded.row.status}; there is no incident to retry")
            open_incidents = session.scalars(select(Incident).where(
                Incident.instance_id == instance_id, Incident.resolved_at.is_(None))).all()
            if not open_incidents:
                raise InvalidStateError(f"instance {instance_id} has no open incident to retry")
            now = clock.now()
            for incident in open_incidents:
                incident.resolved_at = now
                incident.resolved_by = actor.username
            for task in loaded.workflow.get_tasks(state=TaskState.ERROR):
                if data:
                    task.data.update(data)
                task._set_state(TaskState.READY)
            loaded.row.status = "running"
            self._audit(session, "retry", actor, instance_id, None, {"data": data or {}})
            waiting_before, _ = _waiting_events(loaded.workflow)
            self._advance(session, loaded, actor, refresh_timers=True)
            waiting_after, _ = _waiting_events(loaded.workflow)
            # A timer that came due while the instance was stuck fires here, once: record it like the
            # scheduler would, and close its (possibly 'failed') projection row.
            fired = sorted(set(waiting_before) - set(waiting_after))
            for task_id in fired:
                self._audit(session, "timer_fired", actor, instance_id, task_id, {"worker": "retry"})
            if fired:
                session.execute(update(Timer).where(Timer.instance_id == instance_id, Timer.task_id.in_(fired))
                                .values(state="done", locked_by=None, locked_until=None))
            self._save(session, loaded)
        return self.instance(instance_id)

    # ------------------------------------------------------------------ human tasks
    def tasks(self, actor: Actor, *, state: str | None = None, mine: bool = False, instance_id: str | None = None,
              process_key: str | None = None, limit: int = 200, in_groups: bool = False,
              offset: int = 0, overdue: bool = False) -> list[TaskView]:
        """Tasks the actor may see: assigned to them, or in one of their groups (leads see all).

        `mine`: only tasks assigned to or completed by the actor; `in_groups`: only tasks of the
        actor's candidate groups (the inbox's "my groups" tab, for leads too). Open or claimed tasks
        unless `state` is given; due first (undated last), then priority, then age; at most `limit`
        after skipping `offset`. `overdue`: only open/claimed tasks whose due date has passed (for a
        quality lead: every overdue task of every process).
        """
        states = (state,) if state else OPEN_STATES
        if overdue:
            states = tuple(s for s in states if s in OPEN_STATES)
        stmt = queries.task_filters(select(HumanTask), states, instance_id, process_key)
        if overdue:
            # overdue tasks are the earliest-due ones, so the leads' ordered ranges below still cover them
            stmt = stmt.where(HumanTask.due_at < clock.now())
        if mine or in_groups or not actor.is_lead:
            # a UNION of indexed branches (assigned / completed by / open in my groups), see storage.queries
            stmt = stmt.where(HumanTask.id.in_(queries.visible_task_ids(
                actor.username, actor.groups, lead=actor.is_lead, states=states, mine=mine, in_groups=in_groups,
                instance_id=instance_id, process_key=process_key)))
        else:  # leads see every task: take the first ones from ordered index ranges, not a sort of all
            stmt = stmt.where(HumanTask.id.in_(queries.first_task_ids(
                states, limit + max(0, offset), instance_id=instance_id, process_key=process_key)))
        stmt = (stmt.order_by(HumanTask.due_at.is_(None), HumanTask.due_at, HumanTask.priority.desc(),
                              HumanTask.created_at, HumanTask.id).limit(limit).offset(max(0, offset)))
        with self.db.read() as session:
            rows = session.scalars(stmt).all()
            groups = self._groups_of(session, [t.id for t in rows])
            return [_task_view(t, groups.get(t.id, [])) for t in rows]

    def task(self, task_id: str, actor: Actor) -> TaskView:
        with self.db.read() as session:
            row = session.get(HumanTask, task_id)
            if row is None:
                raise NotFoundError(f"task {task_id} not found")
            groups = self._groups_of(session, [row.id]).get(row.id, [])
            if not _may_see(actor, row, groups):
                raise NotFoundError(f"task {task_id} not found")
            return _task_view(row, groups)

    def claim(self, task_id: str, actor: Actor) -> TaskView:
        with self._write() as session:
            row, groups = self._task_row(session, task_id, actor)
            _check_open(row)
            if row.state == "claimed" and row.assignee == actor.username:
                return _task_view(row, groups)
            _check_may_act(actor, row, groups)
            if row.state == "claimed":
                raise ConflictError(f"task '{row.name}' is already claimed by {row.assignee}")
            # Conditional update: a concurrent claim of the same task loses cleanly.
            result = session.execute(update(HumanTask).where(HumanTask.id == task_id, HumanTask.state == "open")
                                     .values(state="claimed", assignee=actor.username, claimed_at=clock.now()))
            if result.rowcount != 1:
                session.refresh(row)
                raise ConflictError(_taken_message(row))
            session.refresh(row)
            self._audit(session, "claim", actor, row.instance_id, row.id, {"task": row.name})
            return _task_view(row, groups)

    def unclaim(self, task_id: str, actor: Actor) -> TaskView:
        with self._write() as session:
            row, groups = self._task_row(session, task_id, actor)
            _check_open(row)
            _check_may_act(actor, row, groups)
            if row.state != "claimed":
                raise ConflictError(f"task '{row.name}' is not claimed")
            if row.assignee != actor.username and not actor.is_lead:
                raise ConflictError(f"task '{row.name}' is held by {row.assignee}")
            if not groups:
                raise InvalidStateError(f"task '{row.name}' has no candidate groups to return to; "
                                        "a quality lead can reassign it")
            result = session.execute(update(HumanTask).where(
                HumanTask.id == task_id, HumanTask.state == "claimed", HumanTask.assignee == row.assignee)
                .values(state="open", assignee=None, claimed_at=None))
            if result.rowcount != 1:
                session.refresh(row)
                raise ConflictError(_taken_message(row))
            session.refresh(row)
            self._audit(session, "unclaim", actor, row.instance_id, row.id, {"task": row.name})
            return _task_view(row, groups)

    def assign(self, task_id: str, actor: Actor, assignee: str | None) -> TaskView:
        """A quality lead (re)assigns a task to a person, or back to its groups with None."""
        if not actor.is_lead:
            raise PermissionDeniedError("only quality leads and admins can reassign tasks")
        with self._write() as session:
            row, groups = self._task_row(session, task_id, actor)
            _check_open(row)
            if not assignee and not groups:
                raise InvalidStateError(f"task '{row.name}' has no candidate groups; assign it to a person")
            previous = row.assignee
            row.assignee = assignee or None
            row.state = "claimed" if assignee else "open"
            row.claimed_at = clock.now() if assignee else None
            self._audit(session, "assign", actor, row.instance_id, row.id,
                        {"task": row.name, "from": previous, "to": row.assignee})
            return _task_view(row, groups)

    def set_due_date(self, task_id: str, actor: Actor, due: datetime | str | None) -> TaskView:
        """A quality lead sets or changes a task's due date (ISO date-time, date or duration from now).

        Escalation keys its levels on the due date, so a new date starts a new escalation cycle.
        """
        if not actor.is_lead:
            raise PermissionDeniedError("only quality leads and admins can change due dates")
        now = clock.now()
        try:
            due_at = parse_when(due, now, "dueDate") if due not in (None, "") else None
        except AssignmentError as exc:
            raise FormValidationError(exc.message, [{"field": "due_at", "message": exc.message}]) from exc
        with self._write() as session:
            row, groups = self._task_row(session, task_id, actor)
            _check_open(row)
            previous = row.due_at
            row.due_at = due_at
            self._audit(session, "due_changed", actor, row.instance_id, row.id,
                        {"task": row.name, "from": previous.isoformat() if previous else None,
                         "to": due_at.isoformat() if due_at else None})
            return _task_view(row, groups)

    def complete(self, task_id: str, actor: Actor, data: dict[str, Any] | None = None) -> InstanceView:
        with self._write() as session:
            # The task, its groups and its instance in one statement that also locks the instance row
            # (PostgreSQL FOR UPDATE OF process_instance; SQLite write units hold the database lock):
            # the same lock order as `_load`, instance first, then the task's conditional update.
            row, groups, instance = _task_with_instance(session, task_id)
            _check_open(row)
            _check_may_act(actor, row, groups)
            if row.assignee and row.assignee != actor.username:
                raise ConflictError(f"task '{row.name}' is held by {row.assignee}")
            values, errors = validate_submission(row.form or [], data or {})
            if errors:
                names = ", ".join(e["field"] or "form" for e in errors)
                raise FormValidationError(f"please correct: {names}", errors)
            loaded = self._restore(session, instance)
            # Take the task with a conditional update: of two concurrent completions (or a completion
            # racing a claim) exactly one matches; the other stops here with a conflict.
            now = clock.now()
            done = {"state": "completed", "completed_at": now, "completed_by": actor.username, "submitted": values,
                    "assignee": row.assignee or actor.username}
            result = session.connection().execute(
                _TAKE_TASK_UNASSIGNED if row.assignee is None else _TAKE_TASK_ASSIGNED,
                {**done, "b_id": task_id, "b_state": row.state, "b_assignee": row.assignee})
            if result.rowcount != 1:
                raise ConflictError(_taken_message(_task_record(session, task_id)[0]))
            if loaded.row.status in ("cancelled", "completed"):
                raise ConflictError(f"instance {loaded.row.id} is {loaded.row.status}")
            task = loaded.workflow.get_task_from_id(uuid.UUID(task_id))
            if task is None or task.state != TaskState.READY:
                raise ConflictError(f"task '{row.name}' can no longer be completed")
            for key, value in values.items():
                set_path(task.data, key, value)
            self._audit(session, "complete", actor, row.instance_id, row.id, {"task": row.name, "data": values})
            self._run_task(session, loaded, task, actor)
            self._advance(session, loaded, actor)
            self._save(session, loaded)
            view = self._loaded_view(session, loaded)
        return view

    def _task_row(self, session: Session, task_id: str, actor: Actor) -> tuple[HumanTask, list[str]]:
        # The task and its groups in one statement (an outer join: one result row per group).
        row, found = None, []
        for task, group in session.execute(_TASK_WITH_GROUPS, {"task_id": task_id}):
            row = task
            if group is not None:
                found.append(group)
        if row is None:
            raise NotFoundError(f"task {task_id} not found")
        groups = sorted(found)
        # Acting on a task outside one's groups is refused (403) by _check_may_act; only reads hide it.
        return row, groups

    @staticmethod
    def _groups_of(session: Session, task_ids: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        if not task_ids:
            return out
        for task_id, group in session.execute(select(HumanTaskGroup.task_id, HumanTaskGroup.group_name)
                                              .where(HumanTaskGroup.task_id.in_(task_ids))):
            out.setdefault(task_id, []).append(group)
        return {k: sorted(v) for k, v in out.items()}

    # ------------------------------------------------------------------ events
    def correlate_message(self, name: str, correlation: str | None, data: dict[str, Any] | None,
                          actor: Actor) -> list[str]:
        """Deliver a message to every instance waiting for it (matching the business key, if given)."""
        with self._write() as session:
            stmt = select(MessageSubscription.instance_id).where(MessageSubscription.name == name).distinct()
            if correlation:
                stmt = stmt.where(or_(MessageSubscription.correlation == correlation,
                                      MessageSubscription.instance_id == correlation))
            instance_ids = list(session.scalars(stmt))
            if not instance_ids:
                raise NotFoundError(f"no instance is waiting for message '{name}'"
                                    + (f" with correlation '{correlation}'" if correlation else ""))
            delivered: list[str] = []
            for instance_id in instance_ids:
                loaded = self._load(session, instance_id)
                if loaded.row.status in ("completed", "cancelled"):
                    continue
                if not _deliver_message(loaded.workflow, name, dict(data or {})):
                    continue  # a stale subscription; _save below re-projects it
                self._audit(session, "message", actor, instance_id, None, {"name": name, "data": data or {}})
                delivered.append(instance_id)
                self._advance(session, loaded, actor)
                self._save(session, loaded)
            if not delivered:
                raise NotFoundError(f"no instance is waiting for message '{name}'"
                                    + (f" with correlation '{correlation}'" if correlation else ""))
        return delivered

    def fire_due_timers(self, *, limit: int = 500, worker: str = "runtime") -> int:
        """Fire timers whose due time has passed; returns how many instances were advanced."""
        now = clock.now()
        with self.db.read() as session:
            due = list(session.execute(
                select(Timer.instance_id).where(Timer.state == "waiting", Timer.due_at <= now)
                .group_by(Timer.instance_id).limit(limit)).scalars())
        fired = 0
        scheduler = Actor.system("scheduler")
        for instance_id in due:
            try:
                with self._write() as session:
                    loaded = self._load_unless_locked(session, instance_id)
                    if loaded is None:
                        continue  # being written right now; its timer stays due for the next pass
                    if loaded.row.status in ("completed", "cancelled"):
                        self._save(session, loaded)  # only re-projects: its timers become 'done'
                        continue
                    before = _waiting_timers(loaded.workflow)
                    self._advance(session, loaded, scheduler, refresh_timers=True)
                    after = _waiting_timers(loaded.workflow)
                    gone = sorted(set(before) - set(after), key=str)
                    for task_id in gone:
                        self._audit(session, "timer_fired", scheduler, instance_id, str(task_id),
                                    {"timer": before[task_id], "worker": worker})
                    self._save(session, loaded)
                    fired += 1 if gone else 0
            except (ConflictError, NotFoundError):
                continue  # another worker got there first; it will be projected correctly
        return fired

    # ------------------------------------------------------------------ internals
    def _load(self, session: Session, instance_id: str) -> _Loaded:
        # Lock the instance row first (PostgreSQL: FOR UPDATE; SQLite write units already hold the
        # database lock), so every writer of an instance takes its locks in the same order -
        # instance, then its tasks - and a concurrent writer waits and then sees the new state
        # instead of deadlocking. The version column stays as the optimistic safety net.
        record = session.connection().execute(_LOCK_INSTANCE, {"instance_id": instance_id}).first()
        if record is None:
            raise NotFoundError(f"instance {instance_id} not found")
        return self._restore(session, _InstanceRecord(record._mapping))

    def _load_unless_locked(self, session: Session, instance_id: str) -> _Loaded | None:
        """For the scheduler: None when another transaction is writing the instance right now
        (PostgreSQL SKIP LOCKED; SQLite ignores it and queues on the database lock instead)."""
        record = session.connection().execute(_LOCK_INSTANCE_UNLESS_LOCKED, {"instance_id": instance_id}).first()
        return self._restore(session, _InstanceRecord(record._mapping)) if record is not None else None

    def _restore(self, session: Session, row: _InstanceRecord) -> _Loaded:
        spec, subs = self.definitions.specs(session, row.definition_id)
        workflow = load_state(row.state, spec, subs, self.script_engine)
        return _Loaded(row, workflow)

    def _run_task(self, session: Session, loaded: _Loaded, task: Any, actor: Actor) -> None:
        try:
            task.run()
        except (SpiffWorkflowException, EngineError) as exc:
            self._incident(session, loaded, task, exc, actor)
        except Exception as exc:  # a bug or an unforeseen model: an incident, never a 500
            log.exception("unexpected error running task %s of instance %s", task.id, loaded.row.id)
            self._incident(session, loaded, task, exc, actor)

    def _advance(self, session: Session, loaded: _Loaded, actor: Actor, refresh_timers: bool = False) -> None:
        """Run engine steps; a failing script/expression becomes an incident, never a crash."""
        if loaded.row.status in ("cancelled",):
            return
        try:
            if refresh_timers:
                loaded.workflow.refresh_timers()
            loaded.workflow.do_engine_steps()
        except (SpiffWorkflowException, EngineError) as exc:
            task = getattr(exc, "task", None)
            self._incident(session, loaded, task, exc, actor)
        except Exception as exc:  # a bug or an unforeseen model: an incident, never a 500
            log.exception("unexpected error advancing instance %s", loaded.row.id)
            failed = loaded.workflow.get_tasks(state=TaskState.ERROR)
            self._incident(session, loaded, failed[0] if failed else None, exc, actor)

    def _incident(self, session: Session, loaded: _Loaded, task: Any, exc: Exception, actor: Actor) -> None:
        message = _message_of(exc)
        data = dict(task.data) if task is not None else {}
        if task is not None and task.state != TaskState.ERROR:
            task._set_state(TaskState.ERROR)
        incident = Incident(
            instance_id=loaded.row.id, task_id=str(task.id) if task is not None else None,
            task_name=(task.task_spec.bpmn_name or task.task_spec.bpmn_id) if task is not None else None,
            message=message, data=_json_safe(data), created_at=clock.now())
        session.add(incident)
        loaded.incidents.append(incident)
        loaded.row.status = "incident"
        self._audit(session, "incident", actor, loaded.row.id, incident.task_id,
                    {"message": message, "task": incident.task_name})
        log.warning("incident instance=%s task=%s: %s", loaded.row.id, incident.task_id, message)

    def _save(self, session: Session, loaded: _Loaded) -> None:
        try:
            # Nothing is read while the projections are worked out, so nothing pending is flushed early
            # (a new instance's row must be inserted before the rows that refer to it).
            with session.no_autoflush:
                self._save_rows(session, loaded)
        except BaseException:
            # Audit rows of a unit of work (or savepoint) that failed must never be written later.
            _audit_buffer(session).clear()
            raise

    def _save_rows(self, session: Session, loaded: _Loaded) -> None:
        workflow, row = loaded.workflow, loaded.row
        now = clock.now()
        new_tasks, new_groups = self._sync_human_tasks(session, loaded, now)
        self._sync_waits(session, loaded)
        if row.status not in ("cancelled", "incident"):
            if workflow.is_completed():
                row.status = "completed"
                row.ended_at = row.ended_at or now
                self._audit(session, "end", None, row.id, None, {})
            else:
                row.status = "running"
        row.data = _json_safe(_instance_data(workflow))
        row.state = dump_state(workflow)
        if loaded.new:
            row.version = 1
            session.connection().execute(_INSERT_INSTANCE, [{
                "id": row.id, "definition_id": row.definition_id, "process_key": row.process_key,
                "process_version": row.process_version, "business_key": row.business_key, "status": row.status,
                "state": row.state, "data": row.data, "started_at": row.started_at, "started_by": row.started_by,
                "ended_at": row.ended_at, "version": 1}])
        else:
            # Optimistic locking: the update only matches the version this unit of work read.
            result = session.connection().execute(_UPDATE_INSTANCE, {
                "b_id": row.id, "b_version": row.version, "version": row.version + 1, "status": row.status,
                "state": row.state, "data": row.data, "ended_at": row.ended_at})
            if result.rowcount != 1:
                raise ConflictError("The instance was changed by someone else at the same time; reload and try again.")
            row.version += 1
        if new_tasks:
            session.connection().execute(_INSERT_TASK, new_tasks)
        if new_groups:
            session.connection().execute(_INSERT_TASK_GROUP, new_groups)
        session.flush()  # incidents, timers, subscriptions
        _flush_audit(session)

    def _sync_human_tasks(self, session: Session, loaded: _Loaded, now: datetime
                          ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        """Project the ready user tasks; returns the rows to insert (human tasks, their groups)."""
        workflow, row = loaded.workflow, loaded.row
        ready = {str(t.id): t for t in workflow.get_tasks(state=TaskState.READY, manual=True)}
        # Every task row of the instance in one statement: the open ones are synchronised, the ids of
        # the others keep a READY task that was projected before (e.g. after a retry) from a second row.
        rows: dict[str, Any] = {}
        groups: dict[str, list[str]] = {}
        if not loaded.new:
            for record in session.connection().execute(_INSTANCE_TASKS_WITH_GROUPS, {"instance_id": row.id}):
                task_id = record.id
                if task_id not in rows:
                    rows[task_id] = record
                    groups[task_id] = []
                if record.group_name is not None:
                    groups[task_id].append(record.group_name)
        cancelled = []
        for task_id, ht in rows.items():
            if ht.state in OPEN_STATES and task_id not in ready:
                cancelled.append(task_id)
                rows[task_id] = _TaskRecord({**ht._mapping, "state": "cancelled", "completed_at": now})
                self._audit(session, "task_cancelled", None, row.id, task_id, {"task": ht.name})
        if cancelled:
            session.connection().execute(_CANCEL_TASKS, [{"b_id": task_id, "completed_at": now} for task_id in cancelled])
        new_tasks: list[dict[str, Any]] = []
        new_groups: list[dict[str, str]] = []
        for task_id, task in ready.items():
            if task_id in rows:
                continue
            spec = task.task_spec
            attrs = (getattr(spec, "extensions", None) or {}).get("pdca", {})
            try:
                who = resolve(attrs, task.data, now)
            except AssignmentError as exc:
                self._incident(session, loaded, task, exc, Actor.system())
                continue
            fields = form_fields(getattr(spec, "form", None))
            for f in fields:
                current = get_path(task.data, f["id"])
                if current is not None and not isinstance(current, (dict, list)):
                    f["default"] = current
            values = dict(
                id=task_id, instance_id=row.id, process_key=row.process_key, spec_id=spec.bpmn_id or spec.name,
                name=spec.bpmn_name or spec.bpmn_id or spec.name, state="claimed" if who.assignee else "open",
                assignee=who.assignee, candidate_groups=_json_safe(who.groups), priority=who.priority,
                due_at=who.due_at, follow_up_at=who.follow_up_at, form=_json_safe(fields),
                documentation=attrs.get("documentation"), created_at=now, claimed_at=now if who.assignee else None,
                completed_at=None, completed_by=None, submitted=None)
            new_tasks.append(values)
            rows[task_id] = _TaskRecord(values)  # for the view built at the end of the unit of work
            groups[task_id] = list(dict.fromkeys(who.groups))
            new_groups.extend({"task_id": task_id, "group_name": group} for group in groups[task_id])
            self._audit(session, "task_created", None, row.id, task_id,
                        {"task": spec.bpmn_name or spec.bpmn_id, "assignee": who.assignee, "groups": who.groups})
        loaded.task_rows = list(rows.values())
        loaded.task_groups = {k: sorted(v) for k, v in groups.items()}
        return new_tasks, new_groups

    def _sync_waits(self, session: Session, loaded: _Loaded) -> None:
        """Project waiting timers and message catches so the scheduler and correlation stay indexed."""
        workflow, row = loaded.workflow, loaded.row
        timers, messages = _waiting_events(workflow)
        if not timers and not messages and (loaded.new or not loaded.had_waits):
            return
        current: dict[str, Timer] = {}
        subs: dict[str, MessageSubscription] = {}
        if not loaded.new:
            current = {t.task_id: t for t in session.scalars(select(Timer).where(
                Timer.instance_id == row.id, Timer.state == "waiting"))}
            subs = {s.name: s for s in session.scalars(select(MessageSubscription).where(
                MessageSubscription.instance_id == row.id))}
        for task_id, timer in current.items():
            if task_id not in timers:
                timer.state = "done"
            else:
                timer.due_at = timers[task_id][1]
        for task_id, (spec_id, due) in timers.items():
            if task_id not in current:
                session.add(Timer(instance_id=row.id, task_id=task_id, spec_id=spec_id, due_at=due))
        for name, sub in subs.items():
            if name not in messages:
                session.delete(sub)
        for name in messages - set(subs):
            session.add(MessageSubscription(instance_id=row.id, name=name, correlation=row.business_key))

    def _loaded_view(self, session: Session, loaded: _Loaded) -> InstanceView:
        """The InstanceView at the end of a unit of work that ran `_save`, from the rows it already has.

        Same contents as `_instance_view`: the human tasks and the instance come from the session; a new
        instance has no incidents or audit rows but this unit of work's, which were just inserted.
        """
        row = loaded.row
        if loaded.task_rows is None:  # `_save` did not run: read everything back
            _flush_audit(session)
            session.flush()
            return self._instance_view(session, row.id)
        tasks = sorted(loaded.task_rows, key=lambda t: (t.created_at, t.id))
        if loaded.new:
            incidents = sorted(loaded.incidents, key=lambda i: i.id)  # flushed by `_save`: ids assigned
            audit = [AuditView(a["at"], a["actor"], a["type"], a["task_id"], a["payload"])
                     for a in session.info.get(_AUDIT_WRITTEN, []) if a["instance_id"] == row.id]
        else:
            # audit rows and incidents in one statement (UNION ALL, audit rows first, each by id)
            incidents, audit = [], []
            for r in session.connection().execute(_INSTANCE_AUDIT_AND_INCIDENTS, {"instance_id": row.id}):
                if r.kind == 0:
                    audit.append(AuditView(r.at, r.actor, r.type, r.task_id, r.payload))
                else:
                    incidents.append(_TaskRecord({"id": r.id, "task_id": r.task_id, "task_name": r.task_name,
                                                  "message": r.message, "data": r.payload, "created_at": r.at,
                                                  "resolved_at": r.resolved_at}))
        return InstanceView(
            id=row.id, key=row.process_key, version=row.process_version, status=row.status,
            business_key=row.business_key, data=dict(row.data or {}), started_at=row.started_at,
            ended_at=row.ended_at,
            tasks=[_task_view(t, loaded.task_groups.get(t.id, [])) for t in tasks],
            incidents=[IncidentView(i.id, i.task_id, i.task_name, i.message, _json_roundtrip(i.data), i.created_at,
                                    i.resolved_at) for i in incidents],
            audit=audit,
        )

    @staticmethod
    def _audit(session: Session, type_: str, actor: Actor | None, instance_id: str | None, task_id: str | None,
               payload: dict[str, Any]) -> None:
        """Queue an audit row; `_save` (or the end of the unit of work) inserts the queue in one statement."""
        _audit_buffer(session).append({"at": clock.now(), "actor": actor.username if actor else None, "type": type_,
                                       "instance_id": instance_id, "task_id": task_id,
                                       "payload": _json_safe(payload)})

    # ------------------------------------------------------------------ scheduler (engine/timer_service.py)
    def fire_timer(self, instance_id: str, worker: str = "runtime", timer_ids: list[int] | None = None) -> int:
        """Fire the due timers of one instance in one unit of work; returns how many timer tasks fired.

        With `timer_ids` (leased by `worker` through engine.timer_service) nothing happens unless this
        worker still holds a waiting timer among them, so a timer whose lease expired and was taken
        over, or that already fired, is never fired twice. Clears the lease of timers still waiting
        afterwards (cycles, or not due yet by the engine's reckoning). Raises ConflictError when the
        instance was changed concurrently (nothing is written then).

        Inside `timer_batch` (same runtime and worker) the instance joins the batch's transaction
        instead: see `_TimerBatch`.
        """
        batch = _TIMER_BATCH.get()
        if batch is not None and batch.runtime is self and batch.worker == worker and timer_ids is not None:
            return batch.fire(instance_id, timer_ids)
        with self._write() as session:
            return self._fire_timer_in(session, instance_id, worker, timer_ids)

    @contextmanager
    def timer_batch(self, worker: str, claims: dict[str, list[int]]) -> Iterator[_TimerBatch]:
        """One unit of work for a claimed batch of timers ({instance_id: [timer_id, ...]}).

        While the block runs, `fire_timer(instance_id, worker, timer_ids)` for these instances fires
        within the batch's transaction; everything commits together when the block ends (nothing
        does if it raises). The instance rows are locked up front in id order (PostgreSQL
        ``FOR UPDATE``; SQLite holds the database lock), and their waiting timers, open human tasks
        and message subscriptions are read with one query each.
        """
        with self._write() as session:
            batch = _TimerBatch(self, session, worker)
            batch.prefetch(claims)
            token = _TIMER_BATCH.set(batch)
            try:
                yield batch
            finally:
                _TIMER_BATCH.reset(token)
            batch.flush()

    def _fire_timer_in(self, session: Session, instance_id: str, worker: str, timer_ids: list[int] | None) -> int:
        """`fire_timer`'s general path inside the caller's unit of work (full `_save`)."""
        actor = Actor.system("scheduler")
        if timer_ids is not None:
            held = session.scalars(select(Timer.id).where(
                Timer.id.in_(timer_ids), Timer.state == "waiting", Timer.locked_by == worker)).all()
            if not held:
                return 0
            held_tasks = set(session.scalars(select(Timer.task_id).where(Timer.id.in_(held))))
        else:
            held_tasks = set()
        loaded = self._load(session, instance_id)
        pending = TaskState.WAITING | TaskState.READY
        before = {str(t.id) for t in loaded.workflow.get_tasks(state=TaskState.WAITING)}
        # a leased timer may already be READY (came due during an incident retry) and still unrun
        before |= {str(t.id) for t in loaded.workflow.get_tasks(state=TaskState.READY, manual=False)
                   if str(t.id) in held_tasks}
        self._advance(session, loaded, actor, refresh_timers=True)
        after = {str(t.id) for t in loaded.workflow.get_tasks(state=pending)}
        fired = sorted(before - after)
        for task_id in fired:
            self._audit(session, "timer_fired", actor, instance_id, task_id, {"worker": worker})
        self._save(session, loaded)
        if timer_ids is not None:
            session.execute(update(Timer).where(Timer.id.in_(timer_ids), Timer.state == "waiting")
                            .values(locked_by=None, locked_until=None, attempts=0)
                            .execution_options(synchronize_session=False))
        if fired:
            log.info("timer fired instance=%s tasks=%s worker=%s", instance_id, ",".join(fired), worker)
        return len(fired)


# ---------------------------------------------------------------------- hot-path statements
# Built once: SQLAlchemy then reuses their cache keys and compiled forms instead of rebuilding them
# on every call. They are Core statements, run on the session's connection (same transaction,
# without the ORM's execution layer).
_TASK_WITH_GROUPS = (select(HumanTask, HumanTaskGroup.group_name)
                     .outerjoin(HumanTaskGroup, HumanTaskGroup.task_id == HumanTask.id)
                     .where(HumanTask.id == bindparam("task_id")))
_HTG = HumanTaskGroup.__table__
# Plain rows (no ORM objects): the runtime only reads them, and writes with the statements below.
_TASK_RECORD = (select(HumanTask.__table__, _HTG.c.group_name)
                .outerjoin(_HTG, _HTG.c.task_id == HumanTask.__table__.c.id)
                .where(HumanTask.__table__.c.id == bindparam("task_id")))
_INSTANCE_TASKS_WITH_GROUPS = (select(HumanTask.__table__, _HTG.c.group_name)
                               .outerjoin(_HTG, _HTG.c.task_id == HumanTask.__table__.c.id)
                               .where(HumanTask.__table__.c.instance_id == bindparam("instance_id")))
_AE, _INC = AuditEvent.__table__, Incident.__table__
_INSTANCE_AUDIT_AND_INCIDENTS = union_all(
    select(literal(0).label("kind"), _AE.c.id, _AE.c.at, _AE.c.actor, _AE.c.type, _AE.c.task_id, _AE.c.payload,
           cast(null(), _INC.c.task_name.type).label("task_name"), cast(null(), _INC.c.message.type).label("message"),
           cast(null(), _INC.c.resolved_at.type).label("resolved_at"))
    .where(_AE.c.instance_id == bindparam("instance_id")),
    select(literal(1), _INC.c.id, _INC.c.created_at, cast(null(), _AE.c.actor.type), cast(null(), _AE.c.type.type),
           _INC.c.task_id, _INC.c.data, _INC.c.task_name, _INC.c.message, _INC.c.resolved_at)
    .where(_INC.c.instance_id == bindparam("instance_id")),
).order_by("kind", "id")
_PI = ProcessInstance.__table__
_TASK_WITH_INSTANCE = (select(HumanTask.__table__, _HTG.c.group_name,
                              *[c.label(f"pi_{c.name}") for c in _PI.c])
                       .select_from(HumanTask.__table__.join(_PI, _PI.c.id == HumanTask.__table__.c.instance_id)
                                    .outerjoin(_HTG, _HTG.c.task_id == HumanTask.__table__.c.id))
                       .where(HumanTask.__table__.c.id == bindparam("task_id"))
                       .with_for_update(of=_PI))
_PD = ProcessDefinition.__table__
_LATEST_DEFINITION = (select(_PD.c.id, _PD.c.key, _PD.c.version)
                      .where(_PD.c.key == bindparam("key"), _PD.c.kind == "bpmn")
                      .order_by(_PD.c.version.desc()).limit(1))
_DEFINITION_VERSION = select(_PD.c.id, _PD.c.key, _PD.c.version).where(
    _PD.c.key == bindparam("key"), _PD.c.version == bindparam("version"), _PD.c.kind == "bpmn")
# Lock the instance row (PostgreSQL FOR UPDATE) and read it.
_LOCK_INSTANCE = select(_PI).where(_PI.c.id == bindparam("instance_id")).with_for_update()
_LOCK_INSTANCE_UNLESS_LOCKED = (select(_PI).where(_PI.c.id == bindparam("instance_id"))
                                .with_for_update(skip_locked=True))
_UPDATE_INSTANCE = _PI.update().where(_PI.c.id == bindparam("b_id"), _PI.c.version == bindparam("b_version"))
_HT = HumanTask.__table__
_TAKE_TASK_UNASSIGNED = _HT.update().where(_HT.c.id == bindparam("b_id"), _HT.c.state == bindparam("b_state"),
                                           _HT.c.assignee.is_(None))
_TAKE_TASK_ASSIGNED = _HT.update().where(_HT.c.id == bindparam("b_id"), _HT.c.state == bindparam("b_state"),
                                         _HT.c.assignee == bindparam("b_assignee"))
_CANCEL_TASKS = (_HT.update().where(_HT.c.id == bindparam("b_id"))
                 .values(state="cancelled", completed_at=bindparam("completed_at", type_=_HT.c.completed_at.type)))
_INSERT_INSTANCE = insert(ProcessInstance.__table__)
_INSERT_TASK = insert(_HT)
_INSERT_TASK_GROUP = insert(HumanTaskGroup.__table__)
_INSERT_AUDIT = insert(AuditEvent.__table__)


# ---------------------------------------------------------------------- helpers
_AUDIT_PENDING = "pdcaflow_audit_pending"
_AUDIT_WRITTEN = "pdcaflow_audit_written"


def _audit_buffer(session: Session) -> list[dict[str, Any]]:
    return session.info.setdefault(_AUDIT_PENDING, [])


def _flush_audit(session: Session) -> None:
    """Insert the queued audit rows (in the order they were recorded) with one statement."""
    pending = session.info.get(_AUDIT_PENDING)
    if not pending:
        return
    rows = list(pending)
    pending.clear()
    session.connection().execute(_INSERT_AUDIT, rows)
    session.info.setdefault(_AUDIT_WRITTEN, []).extend(rows)


class _InstanceRecord:
    """A process_instance row as plain, mutable attributes; `Runtime._save` writes it back (Core, versioned)."""

    def __init__(self, values: Any) -> None:
        self.__dict__.update(values)


class _TaskRecord:
    """A human task row as plain attributes (what `_task_view` and the checks read)."""

    def __init__(self, values: Any) -> None:
        self.__dict__.update(values)


def _task_record(session: Session, task_id: str) -> tuple[Any, list[str]]:
    """A task row (plain, read-only) and its sorted groups, in one statement."""
    row, found = None, []
    for record in session.connection().execute(_TASK_RECORD, {"task_id": task_id}):
        row = record
        if record.group_name is not None:
            found.append(record.group_name)
    if row is None:
        raise NotFoundError(f"task {task_id} not found")
    return row, sorted(found)


def _task_with_instance(session: Session, task_id: str) -> tuple[Any, list[str], _InstanceRecord]:
    """A task row, its sorted groups and its (now locked) instance row, in one statement."""
    row, found = None, []
    for record in session.connection().execute(_TASK_WITH_INSTANCE, {"task_id": task_id}):
        row = record
        if record.group_name is not None:
            found.append(record.group_name)
    if row is None:
        raise NotFoundError(f"task {task_id} not found")
    mapping = row._mapping
    instance = _InstanceRecord({c.name: mapping[f"pi_{c.name}"] for c in _PI.c})
    return row, sorted(found), instance


def _json_roundtrip(value: Any) -> Any:
    """What a JSON column gives back for `value`."""
    return json.loads(json.dumps(value)) if value is not None else None


def _check_open(row: HumanTask) -> None:
    if row.state in ("completed", "cancelled"):
        who = f" by {row.completed_by}" if row.state == "completed" and row.completed_by else ""
        raise ConflictError(f"task '{row.name}' is already {row.state}{who}")


def _taken_message(row: HumanTask) -> str:
    """Why a conditional task update matched nothing: someone else changed the task first."""
    if row.state in ("completed", "cancelled"):
        who = f" by {row.completed_by}" if row.state == "completed" and row.completed_by else ""
        return f"task '{row.name}' was {row.state}{who} at the same time"
    if row.assignee:
        return f"task '{row.name}' was claimed by {row.assignee} at the same time"
    return f"task '{row.name}' was changed by someone else at the same time; reload and try again"


def _task_view(row: HumanTask, groups: list[str]) -> TaskView:
    return TaskView(
        id=row.id, name=row.name, spec_id=row.spec_id, instance_id=row.instance_id, process_key=row.process_key,
        state=row.state, assignee=row.assignee, groups=groups, due_at=row.due_at, follow_up_at=row.follow_up_at,
        priority=row.priority, created_at=row.created_at, completed_at=row.completed_at,
        completed_by=row.completed_by, form=list(row.form or []), documentation=row.documentation,
        values=dict(row.submitted or {}),
    )


def _deliver_message(workflow: BpmnWorkflow, name: str, data: dict[str, Any]) -> int:
    """Hand a message to the tasks waiting for it; its data becomes process variables.

    The event must carry the waiting task's own event definition class (SpiffWorkflow matches
    definitions by class, and the Camunda parser uses its own subclass). The Camunda definition
    also keeps the whole payload under its result variable, which we name after the message.
    """
    waiting = [t for t in workflow.get_tasks(state=TaskState.WAITING)
               if isinstance(getattr(t.task_spec, "event_definition", None), MessageEventDefinition)
               and t.task_spec.event_definition.name == name]
    if not waiting:
        return 0
    for task in waiting:
        task.data.update(data)
    definition = waiting[0].task_spec.event_definition
    if hasattr(definition, "result_var"):
        payload: dict[str, Any] = {"payload": dict(data), "result_var": definition.result_var or name}
    else:
        payload = dict(data)
    # One catch reaches every task waiting for an equal definition.
    return workflow.event_manager.catch(BpmnEvent(definition, payload), internal=False)


def _waiting_timers(workflow: BpmnWorkflow) -> dict[Any, str]:
    """Waiting timer events of the workflow: task id -> element id."""
    return {t.id: t.task_spec.bpmn_id or t.task_spec.name for t in workflow.get_tasks(state=TaskState.WAITING)
            if isinstance(getattr(t.task_spec, "event_definition", None), TimerEventDefinition)}


def _fire_start_timers(workflow: BpmnWorkflow, now: datetime) -> None:
    """A timer start event has done its work once an instance is being started (by the schedule in
    engine.schedules, or by hand): mark it fired, as Camunda starts one instance per timer event."""
    for task in workflow.get_tasks(state=TaskState.ANY_MASK):
        spec = task.task_spec
        definition = getattr(spec, "event_definition", None)
        if not (isinstance(spec, BpmnStartEvent) and isinstance(definition, TimerEventDefinition)):
            continue
        if isinstance(definition, CycleTimerEventDefinition):
            # SpiffWorkflow grows a cycle's outgoing path one repetition at a time; grow exactly one
            for output in spec.outputs:
                child = task._add_child(output, TaskState.FUTURE)
                child.task_spec._predict(child, mask=TaskState.NOT_FINISHED_MASK)
            task._set_internal_data(event_fired=True)
        else:
            task._set_internal_data(event_value=(now - timedelta(seconds=1)).isoformat(), event_fired=True)


def _waiting_events(workflow: BpmnWorkflow) -> tuple[dict[str, tuple[str, datetime]], set[str]]:
    """Waiting timer tasks (id -> (BPMN id, due)) and the names of awaited messages."""
    timers: dict[str, tuple[str, datetime]] = {}
    messages: set[str] = set()
    for task in workflow.get_tasks(state=TaskState.WAITING):
        definition = getattr(task.task_spec, "event_definition", None)
        if isinstance(definition, TimerEventDefinition):
            due = _timer_due(task)
            if due is not None:
                timers[str(task.id)] = (task.task_spec.bpmn_id or task.task_spec.name, due)
        elif isinstance(definition, MessageEventDefinition):
            messages.add(definition.name)
    return timers, messages


def _timer_due(task: Any) -> datetime | None:
    value = task._get_internal_data("event_value")
    if isinstance(value, dict):
        value = value.get("next")
    if not value:
        return None
    try:
        return TimerEventDefinition.get_datetime(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _instance_data(workflow: BpmnWorkflow) -> dict[str, Any]:
    """The instance's current variables: the data of the most recently finished task, plus data objects."""
    data: dict[str, Any] = {}
    last = workflow.last_task
    if last is not None:
        data.update(last.data)
    else:
        data.update(workflow.task_tree.data)
    # Ready/waiting tasks inherited the freshest data from the tasks before them.
    for task in workflow.get_tasks(state=TaskState.READY | TaskState.WAITING | TaskState.ERROR):
        data.update(task.data)
    data.update(workflow.data)
    return data


def _message_of(exc: Exception) -> str:
    if isinstance(exc, EngineError):
        return exc.message
    text = str(exc.args[0]) if exc.args else exc.__class__.__name__
    if not isinstance(exc, SpiffWorkflowException):
        text = f"{exc.__class__.__name__}: {text}"
    notes = getattr(exc, "notes", None) or getattr(exc, "__notes__", None) or []
    if isinstance(exc, WorkflowException) and getattr(exc, "error_line", None):
        line = getattr(exc, "line_number", None) or "?"
        if f"(line {line})" in text:
            text = text.replace(f"(line {line})", f"(line {line}: {exc.error_line.strip()})")
        else:
            text += f" (line {line}: {exc.error_line.strip()})"
    extra = [n for n in notes if n not in text]
    return text + ("; " + "; ".join(extra) if extra else "")


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


# ---------------------------------------------------------------------- timer batches (engine/timer_service.py)
class _NeedsFullSave(Exception):
    """The fast path cannot project this instance; `_TimerBatch` uses `Runtime._fire_timer_in`."""


class _TimerBatch:
    """A claimed batch of timers fired in one transaction (`Runtime.timer_batch`).

    Each instance is still loaded, advanced and saved on its own. The common case - a running
    instance without open human tasks or message subscriptions that, after firing, has none either
    and raised no incident - takes a fast path: its state is restored from the row read up front,
    and its writes (instance row with the optimistic version check, timer projection, audit) are
    collected and issued as a few multi-row statements when the batch ends. Anything else (human
    tasks, messages, incidents, a cancelled or failed instance) goes through the general path,
    `Runtime._fire_timer_in` with the full `_save`, inside a SAVEPOINT of its own, so a failing
    instance rolls back alone and the others' work stays. The fast path writes nothing until the
    end, so a failure there loses nothing either.
    """

    def __init__(self, runtime: Runtime, session: Session, worker: str) -> None:
        self.runtime = runtime
        self.session = session
        self.worker = worker
        self.actor = Actor.system("scheduler").username
        self.rows: dict[str, Any] = {}
        self.waiting: dict[str, list[Any]] = {}
        self.busy: set[str] = set()
        self.fast = 0
        self.full = 0
        self._instances: list[dict[str, Any]] = []
        self._audits: list[dict[str, Any]] = []
        self._timers_done: list[int] = []
        self._timers_due: list[dict[str, Any]] = []
        self._timers_new: list[dict[str, Any]] = []
        self._timers_release: list[int] = []

    def prefetch(self, claims: dict[str, list[int]]) -> None:
        ids = sorted(claims)
        if not ids:
            return
        session = self.session
        stmt = (select(ProcessInstance.id, ProcessInstance.definition_id, ProcessInstance.status,
                       ProcessInstance.state, ProcessInstance.version, ProcessInstance.ended_at)
                .where(ProcessInstance.id.in_(ids)).order_by(ProcessInstance.id))
        if self.runtime.db.dialect == "postgresql":
            stmt = stmt.with_for_update()
        self.rows = {r.id: r for r in session.execute(stmt)}
        for t in session.execute(select(Timer.id, Timer.instance_id, Timer.task_id, Timer.due_at, Timer.locked_by)
                                 .where(Timer.instance_id.in_(ids), Timer.state == "waiting")):
            self.waiting.setdefault(t.instance_id, []).append(t)
        self.busy = set(session.scalars(select(HumanTask.instance_id).where(
            HumanTask.instance_id.in_(ids), HumanTask.state.in_(OPEN_STATES)).distinct()))
        self.busy |= set(session.scalars(select(MessageSubscription.instance_id).where(
            MessageSubscription.instance_id.in_(ids)).distinct()))

    # ---- per instance
    def fire(self, instance_id: str, timer_ids: list[int]) -> int:
        wanted = set(timer_ids)
        waiting = self.waiting.get(instance_id, [])
        held = [t for t in waiting if t.id in wanted and t.locked_by == self.worker]
        if not held:
            return 0
        row = self.rows.get(instance_id)
        if row is not None and row.status == "running" and instance_id not in self.busy:
            try:
                fired = self._fire_fast(row, waiting, held, wanted)
                self.fast += 1
                return fired
            except _NeedsFullSave:
                pass
        self.full += 1
        try:
            with self.session.begin_nested():
                return self.runtime._fire_timer_in(self.session, instance_id, self.worker, timer_ids)
        except StaleDataError as exc:
            raise ConflictError("The instance was changed by someone else at the same time; "
                                "reload and try again.") from exc

    def _fire_fast(self, row: Any, waiting: list[Any], held: list[Any], wanted: set[int]) -> int:
        runtime = self.runtime
        spec, subs = runtime.definitions.specs(self.session, row.definition_id)
        workflow = load_state(row.state, spec, subs, runtime.script_engine)
        held_tasks = {t.task_id for t in held}
        before: set[str] = set()
        for task in workflow.get_tasks(state=TaskState.WAITING | TaskState.READY):
            task_id = str(task.id)
            # a leased timer may already be READY (came due during an incident retry) and still unrun
            if task.state == TaskState.WAITING or (not task.task_spec.manual and task_id in held_tasks):
                before.add(task_id)
        try:
            workflow.refresh_timers()
            workflow.do_engine_steps()
        except Exception as exc:  # the general path redoes it and records the incident
            raise _NeedsFullSave() from exc
        after: set[str] = set()
        timers: dict[str, tuple[str, datetime]] = {}
        for task in workflow.get_tasks(state=TaskState.WAITING | TaskState.READY | TaskState.ERROR):
            if task.state == TaskState.ERROR or (task.state == TaskState.READY and task.task_spec.manual):
                raise _NeedsFullSave()  # an incident or a human task: full projection
            task_id = str(task.id)
            after.add(task_id)
            if task.state == TaskState.WAITING:
                definition = getattr(task.task_spec, "event_definition", None)
                if isinstance(definition, MessageEventDefinition):
                    raise _NeedsFullSave()  # a message subscription to project
                if isinstance(definition, TimerEventDefinition):
                    due = _timer_due(task)
                    if due is not None:
                        timers[task_id] = (task.task_spec.bpmn_id or task.task_spec.name, due)
        fired = sorted(before - after)
        now = clock.now()
        instance_id = row.id
        completed = workflow.is_completed()
        # everything that can fail comes before the first write is queued
        values = {"b_id": instance_id, "b_version": row.version, "version": row.version + 1,
                  "status": "completed" if completed else "running",
                  "ended_at": (row.ended_at or now) if completed else row.ended_at,
                  "data": _json_safe(_instance_data(workflow)), "state": dump_state(workflow)}
        for task_id in fired:
            self._audits.append({"at": now, "actor": self.actor, "type": "timer_fired", "instance_id": instance_id,
                                 "task_id": task_id, "payload": {"worker": self.worker}})
        if completed:
            self._audits.append({"at": now, "actor": None, "type": "end", "instance_id": instance_id,
                                 "task_id": None, "payload": {}})
        for t in waiting:
            if t.task_id not in timers:
                self._timers_done.append(t.id)
                continue
            due = timers[t.task_id][1]
            if t.due_at != due:
                self._timers_due.append({"b_id": t.id, "due_at": due})
            if t.id in wanted:
                self._timers_release.append(t.id)
        known = {t.task_id for t in waiting}
        for task_id, (spec_id, due) in timers.items():
            if task_id not in known:
                self._timers_new.append({"instance_id": instance_id, "task_id": task_id, "spec_id": spec_id,
                                         "due_at": due, "state": "waiting", "attempts": 0})
        self._instances.append(values)
        if fired:
            log.info("timer fired instance=%s tasks=%s worker=%s", instance_id, ",".join(fired), self.worker)
        return len(fired)

    # ---- batch-level writes
    def release(self, timer_ids: list[int]) -> None:
        """Give leases back without counting an attempt (timer_service.release, in this transaction)."""
        self.session.execute(update(Timer).where(Timer.id.in_(timer_ids), Timer.locked_by == self.worker,
                                                 Timer.state == "waiting")
                             .values(locked_by=None, locked_until=None)
                             .execution_options(synchronize_session=False))

    def mark_done(self, timer_ids: list[int]) -> None:
        self.session.execute(update(Timer).where(Timer.id.in_(timer_ids))
                             .values(state="done", locked_by=None, locked_until=None)
                             .execution_options(synchronize_session=False))

    def flush(self) -> None:
        """Issue the fast path's collected writes: a few multi-row statements for the whole batch."""
        self.session.flush()
        conn = self.session.connection()
        if self._instances:
            table = ProcessInstance.__table__
            result = conn.execute(table.update().where(table.c.id == bindparam("b_id"),
                                                       table.c.version == bindparam("b_version")), self._instances)
            if result.rowcount != len(self._instances):  # we hold the rows' locks; this is a safety net
                raise ConflictError("an instance of the timer batch was changed by someone else at the same time")
        if self._timers_done:
            conn.execute(update(Timer.__table__).where(Timer.__table__.c.id.in_(self._timers_done))
                         .values(state="done"))
        if self._timers_due:
            table = Timer.__table__
            conn.execute(table.update().where(table.c.id == bindparam("b_id")), self._timers_due)
        if self._timers_release:
            table = Timer.__table__
            conn.execute(table.update().where(table.c.id.in_(self._timers_release), table.c.state == "waiting")
                         .values(locked_by=None, locked_until=None, attempts=0))
        if self._timers_new:
            conn.execute(Timer.__table__.insert(), self._timers_new)
        if self._audits:
            conn.execute(AuditEvent.__table__.insert(), self._audits)


_TIMER_BATCH: ContextVar[_TimerBatch | None] = ContextVar("pdcaflow_timer_batch", default=None)
