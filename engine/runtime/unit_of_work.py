"""The unit of work: the only code that opens an instance write transaction.

A unit of work loads instance rows (locked), restores their workflows against the cached spec,
lets the caller act, advances them (a failing script becomes an incident, never a crash) and
saves them. Saving works out what the projections must change (engine/runtime/projection.py)
and *queues* the writes; they go out as a few multi-row statements when the unit flushes (before
a view is built, and at commit). So a batch of timer firings costs the same statements as one,
and an instance whose save fails queues nothing: the others in the batch are unharmed.

The instance's `version` column is the optimistic safety net behind the row locks: a versioned
update that matches nothing means someone else wrote the instance, and the unit fails with
ConflictError (nothing of it is committed).
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from sqlalchemy.orm import Session

from engine import cases, clock, sandbox
from engine.definitions import DefinitionStore
from engine.errors import ConflictError, EngineError, NotFoundError
from engine.runtime import camunda, external_projection, incidents, projection, scopes, spiff, variable_types
from engine.runtime.values import json_safe
from engine.views import Actor
from storage import instances as store
from storage.db import Database
from storage.errors import ConcurrentUpdateError

log = logging.getLogger("pdcaflow.engine")

CONFLICT = "The instance was changed by someone else at the same time; reload and try again."


class Loaded:
    """An instance row with its restored workflow, and what this unit of work has to write for it."""

    def __init__(self, row: SimpleNamespace, workflow: spiff.Workflow, *, new: bool = False,
                 snapshot: projection.Snapshot | None = None) -> None:
        self.row = row
        self.workflow = workflow
        # A started instance not yet inserted: nothing of it exists in the database, so saving reads
        # no projections and inserts the row (with its final state) before the rows that refer to it.
        self.new = new
        self.inserted = new  # new when the unit of work began (its view is built from what was written)
        self.snapshot = snapshot  # projections read up front (a timer batch), else read when saving
        # Whether projections of timers/messages may exist, so saves of plain user-task steps skip
        # reading them.
        self.had_waits = bool(spiff.waiting_events(workflow))
        self.audits: list[dict[str, Any]] = []
        self.incidents: list[dict[str, Any]] = []
        self.leased_timers: set[int] = set()  # timer rows this worker fires (engine/runtime/timers.py)
        self.tasks: projection.TaskRows | None = None  # every human task of the instance after saving
        # {id: state} of every external-task row of the instance, when its lock read them (a worker's
        # completion, engine/external_tasks.py) and as this unit changed them; else read when saving
        self.external_rows: dict[str, str] | None = None
        # messages and signals it threw that its own catches did not take (engine/runtime/events.py)
        self.thrown: list[spiff.ThrownEvent] = []
        # the remembered variable types as stored (engine/runtime/variable_types.py): a save writes
        # the column only when they changed
        self.stored_types = row.variable_types

    def declare_types(self, written: Iterable[str], declared: Mapping[str, str] | None) -> None:
        """`/engine-rest` wrote the variables `written` with these `declared` types (None: a caller that
        declares none, whose writes keep the types their values still fit)."""
        if declared is not None:
            self.row.variable_types = variable_types.declare(self.row.variable_types, written, declared) or None

    def audit(self, type_: str, actor: Actor | None, task_id: str | None, payload: dict[str, Any]) -> None:
        self.audits.append(audit_row(type_, actor, self.row.id, task_id, payload))


def audit_row(type_: str, actor: Actor | None, instance_id: str | None, task_id: str | None,
              payload: dict[str, Any]) -> dict[str, Any]:
    return {"at": clock.now(), "actor": actor.username if actor else None, "type": type_,
            "instance_id": instance_id, "task_id": task_id, "payload": json_safe(payload)}


@contextmanager
def script_output(loaded: Loaded, actor: Actor | None = None) -> Iterator[None]:
    """What scripts print while the block runs becomes the instance's log: one `log` audit entry per
    script run (also when the script then failed), shown in the instance's history."""
    with sandbox.captured_output() as printed:
        try:
            yield
        finally:
            for output in printed:
                loaded.audit("log", actor, output.task_id, {"task": output.element, "message": output.text})


def _records_script_output(method: Callable[..., None]) -> Callable[..., None]:
    """Wraps a UnitOfWork method whose first argument is a Loaded in `script_output`."""
    @functools.wraps(method)
    def wrapper(self: UnitOfWork, loaded: Loaded, *args: Any, **kwargs: Any) -> None:
        with script_output(loaded):
            method(self, loaded, *args, **kwargs)

    return wrapper


@dataclass
class _Queue:
    """Writes of saved instances, issued in an order that respects foreign keys."""

    new_instances: list[dict[str, Any]] = field(default_factory=list)
    instance_updates: list[dict[str, Any]] = field(default_factory=list)
    changes: list[projection.Changes] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)
    external: list[external_projection.ExternalChanges] = field(default_factory=list)


class UnitOfWork:
    def __init__(self, session: Session, definitions: DefinitionStore, script_engine: Any) -> None:
        self.session = session
        self.conn = session.connection()
        self.definitions = definitions
        self.script_engine = script_engine
        self.dialect = self.conn.dialect.name
        self._queue = _Queue()
        self.written_audit: list[dict[str, Any]] = []
        # instances this unit has loaded or started, so an event delivered to one of them acts on the
        # same object instead of a stale second copy
        self.loaded: dict[str, Loaded] = {}
        # (thrower instance id, event) waiting to be delivered to other instances before the commit
        self.thrown: list[tuple[str, Any, spiff.ThrownEvent]] = []

    # ---------------------------------------------------------------- loading
    def load(self, instance_id: str) -> Loaded:
        """Lock the instance row first, so every writer takes its locks in one order (instance, then
        its tasks): a concurrent writer waits and then sees the new state instead of deadlocking."""
        if instance_id in self.loaded:
            return self.loaded[instance_id]
        record = store.lock_instance(self.conn, instance_id)
        if record is None:
            raise NotFoundError(f"instance {instance_id} not found")
        return self.restore(record._mapping)

    def restore(self, record: Any, snapshot: projection.Snapshot | None = None) -> Loaded:
        row = SimpleNamespace(**dict(record))
        spec, subs = self.definitions.specs(self.session, row.definition_id)
        workflow = spiff.load_state(row.state, spec, subs, self.script_engine)
        camunda.set_instance_context(workflow, instance_id=row.id, business_key=row.business_key,
                                     process_key=row.process_key, started_by=row.started_by)
        loaded = Loaded(row, workflow, snapshot=snapshot)
        self.loaded[row.id] = loaded
        return loaded

    def start(self, definition: Any, data: dict[str, Any], actor: Actor, business_key: str | None,
              types: Mapping[str, str] | None = None) -> Loaded:
        """A new instance with `data`; `types`: the declared types of its variables (`declare_types`)."""
        spec, subs = self.definitions.specs(self.session, definition.id)
        data = {**data, **camunda.initiator_variables(spec, actor.username)}  # camunda:initiator
        workflow = spiff.new_workflow(spec, subs, self.script_engine, data)
        now = clock.now()
        spiff.fire_start_timers(workflow, now)
        row = SimpleNamespace(
            id=uuid.uuid4().hex, definition_id=definition.id, process_key=definition.key,
            process_version=definition.version, business_key=business_key, status="running", state=b"", data=data,
            started_at=now, started_by=actor.username, ended_at=None, version=0,
            variable_types=(variable_types.declare(None, data, types) or None) if types else None)
        camunda.set_instance_context(workflow, instance_id=row.id, business_key=business_key,
                                     process_key=definition.key, started_by=actor.username)
        loaded = Loaded(row, workflow, new=True)
        self.loaded[row.id] = loaded
        loaded.audit("start", actor, None, {"key": definition.key, "version": definition.version,
                                            "business_key": business_key})
        return loaded

    # ---------------------------------------------------------------- acting
    def run_task(self, loaded: Loaded, task: Any, actor: Actor, before: dict[str, Any] | None = None) -> None:
        """Run a ready task (a person or a worker completed it); what it wrote since `before` (its
        data before the caller changed it) becomes visible to the whole process scope. Without
        `before`, all of the task's variables are published (correct, as a live task holds the
        current scope, only dearer)."""
        before = {} if before is None else before
        try:
            task.run()
            scopes.publish(task, before)
        except (spiff.EngineFailure, EngineError) as exc:
            incidents.on_loaded(loaded, task, exc, actor)
        except Exception as exc:  # a bug or an unforeseen model: an incident, never a 500
            log.exception("unexpected error running task %s of instance %s", task.id, loaded.row.id)
            incidents.on_loaded(loaded, task, exc, actor)

    def advance(self, loaded: Loaded, actor: Actor | None, *, refresh_timers: bool = False) -> None:
        """Run engine steps; a failing script or expression becomes an incident, never a crash."""
        if loaded.row.status == "cancelled":
            return
        try:
            spiff.advance(loaded.workflow, refresh_timers=refresh_timers)
        except (spiff.EngineFailure, EngineError) as exc:
            incidents.on_loaded(loaded, spiff.failing_task(exc), exc, actor)
        except Exception as exc:  # a bug or an unforeseen model: an incident, never a 500
            log.exception("unexpected error advancing instance %s", loaded.row.id)
            failed = spiff.failed_tasks(loaded.workflow)
            incidents.on_loaded(loaded, failed[0] if failed else None, exc, actor)
        finally:
            loaded.thrown.extend(spiff.take_thrown_events(loaded.workflow))

    def fire_timers(self, loaded: Loaded, actor: Actor, worker: str, leased: set[str] = frozenset()) -> list[str]:
        """Advance with the timers refreshed; audit each timer task that fired (a cycle timer each
        time it fires). Returns their ids.

        The one way a timer fires: the scheduler's batches (engine/runtime/timers.py) and a lead's
        retry (a timer that came due while the instance was stuck) both come here.
        """
        waiting = spiff.waiting_events(loaded.workflow).timers
        before = spiff.pending_timer_ids(loaded.workflow, leased) & (set(waiting) | leased)
        self.advance(loaded, actor, refresh_timers=True)
        # A cycle timer (ISO repeat or cron) fires and goes on waiting, for a later time.
        still = spiff.waiting_events(loaded.workflow).timers
        repeated = {t for t in before & set(still) if t in waiting and still[t][1] > waiting[t][1]}
        fired = sorted((before - spiff.unfinished_task_ids(loaded.workflow)) | repeated)
        for task_id in fired:
            element = waiting[task_id][0] if task_id in waiting else None
            loaded.audit("timer_fired", actor, task_id, {"timer": element, "worker": worker})
        if fired:
            log.info("timer fired instance=%s tasks=%s worker=%s", loaded.row.id, ",".join(fired), worker)
        return fired

    # ---------------------------------------------------------------- saving
    def save(self, loaded: Loaded) -> None:
        """Work out the instance's new row and projections and queue their writes (nothing is queued
        when this raises: a failing instance of a batch loses only its own changes)."""
        now = clock.now()
        loaded.thrown.extend(spiff.take_thrown_events(loaded.workflow))  # they are not part of the state
        waits = spiff.waiting_events(loaded.workflow)
        snapshot = loaded.snapshot
        if snapshot is None:
            snapshot = projection.read_snapshot(self.conn, loaded.row.id, new=loaded.new,
                                                waits=loaded.had_waits or bool(waits),
                                                human=spiff.has_human_tasks(loaded.workflow))
        elif not snapshot.waits_read and (loaded.had_waits or waits):
            projection.read_waits(self.conn, loaded.row.id, snapshot)
        changes = projection.project(self.conn, loaded, snapshot, now, waits)
        external = external_projection.project(self.conn, loaded, now)
        row = loaded.row
        if row.status not in ("cancelled", "incident"):
            if spiff.is_completed(loaded.workflow):
                row.status = "completed"
                row.ended_at = row.ended_at or now
                loaded.audit("end", None, None, {})
            else:
                row.status = "running"
        row.data = json_safe(spiff.instance_data(loaded.workflow))
        row.state = spiff.dump_state(loaded.workflow)
        types = variable_types.surviving(row.variable_types, row.data) if row.variable_types else None
        row.variable_types = types
        # the case columns the inbox lists and searches (engine/cases.py), current with every save
        case = cases.case_columns(row.business_key, row.data,
                                  self.definitions.case_declaration(self.session, row.definition_id))
        for name, value in case.items():
            setattr(row, name, value)
        queue = self._queue
        if loaded.new:
            row.version = 1
            queue.new_instances.append({name: getattr(row, name) for name in store.INSTANCE_COLUMNS})
        else:
            queue.instance_updates.append({
                "b_id": row.id, "b_version": row.version, "version": row.version + 1, "status": row.status,
                "state": row.state, "data": row.data, "ended_at": row.ended_at, **case})
            if types != loaded.stored_types:  # most saves leave the column out of the UPDATE
                queue.instance_updates[-1]["variable_types"] = types
            row.version += 1
        loaded.stored_types = types
        queue.changes.append(changes)
        if external is not None:
            queue.external.append(external)
        queue.incidents.extend(loaded.incidents)
        queue.audits.extend(loaded.audits)
        loaded.audits = []
        loaded.new = False
        # a later save in this unit (an event delivered to it) reads its projections again, after a flush
        loaded.snapshot = None
        loaded.external_rows = None
        loaded.had_waits = True
        self.thrown.extend((row.id, row.business_key, event) for event in loaded.thrown)
        loaded.thrown = []

    def audit(self, type_: str, actor: Actor | None, instance_id: str | None, task_id: str | None,
              payload: dict[str, Any]) -> None:
        """Audit a change that is not an instance's save (claim, assign, deploy...)."""
        self._queue.audits.append(audit_row(type_, actor, instance_id, task_id, payload))

    def flush(self) -> None:
        """Issue the queued writes: a few multi-row statements whatever the number of instances."""
        queue, self._queue = self._queue, _Queue()
        conn = self.conn
        self.session.flush()  # ORM work of callers (deploy) goes first
        if queue.new_instances:
            store.insert_instances(conn, queue.new_instances)
        if queue.instance_updates:
            if store.update_instances(conn, queue.instance_updates) != len(queue.instance_updates):
                raise ConflictError(CONFLICT)
        projection.write(conn, queue.changes)
        if queue.external:
            external_projection.write(conn, queue.external)
        for incident in queue.incidents:
            incident["id"] = store.insert_incident(conn, {k: v for k, v in incident.items() if k != "id"})
        if queue.audits:
            store.insert_audit(conn, queue.audits)
            self.written_audit.extend(queue.audits)

    def discard(self) -> None:
        self._queue = _Queue()

    # print() in the scripts these run writes to the instance's log
    run_task = _records_script_output(run_task)
    advance = _records_script_output(advance)


@contextmanager
def unit_of_work(db: Database, definitions: DefinitionStore, script_engine: Any) -> Iterator[UnitOfWork]:
    """One write transaction: commits the flushed writes on success, nothing on any error."""
    try:
        with db.write() as session:
            uow = UnitOfWork(session, definitions, script_engine)
            try:
                yield uow
                if uow.thrown:
                    from engine.runtime import events  # events builds on this module

                    events.deliver_thrown(uow)
                uow.flush()
            except BaseException:
                uow.discard()
                raise
    except ConcurrentUpdateError as exc:
        raise ConflictError(str(exc)) from exc
