"""External tasks (Camunda 7's pattern): workers fetch and lock work by topic, then complete it,
report a failure or throw a BPMN error. The service behind `/engine-rest/external-task`.

- A task is created when its token arrives (engine/runtime/external_projection.py) and waits.
- Fetch-and-lock leases tasks to a worker id until the lock expires (storage/leases.py: SKIP LOCKED
  on PostgreSQL, so any number of web processes never lock one task twice); an expired lock makes
  the task fetchable again. Long polling re-checks with a cheap read until work appears.
- complete / failure / bpmnError need the worker that holds the lock; each is one unit of work that
  locks the instance row first (the one lock order), then the task row.
- A failure sets the retries the worker reports; with retries left the task is offered again after
  `retryTimeout`; at 0 the instance gets an incident (engine/runtime/incidents.py) that a lead
  resolves by setting retries (`set_retries`, or the instance's retry).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from engine import clock
from engine.errors import EngineError, NotFoundError
from engine.permissions import check_lead_or_worker, check_may_work_external_tasks
from engine.runtime import incidents, scopes, spiff
from engine.runtime.values import json_safe
from engine.views import Actor
from storage import external_tasks as store
from storage import instances as instance_store

if TYPE_CHECKING:
    from engine.runtime.facade import Runtime
    from engine.runtime.unit_of_work import Loaded, UnitOfWork

SORT_FIELDS = store.SORT_FIELDS  # what a listing can be ordered by
MAX_WAIT = timedelta(minutes=5)  # the longest long poll we hold a request for
POLL_SECONDS = 0.05
MAX_TASKS = 1000
FILTER_SCAN = 1000  # tasks looked at per fetch when a topic filters by process variables


class LockMismatchError(EngineError):
    """The worker does not hold the task's lock (Camunda answers 400)."""

    http_status = 400
    code = "bad_user_request"


@dataclass
class TopicRequest:
    name: str
    lock_duration_ms: int
    variables: list[str] | None = None
    business_key: str | None = None
    process_key: str | None = None
    instance_id: str | None = None
    process_variables: dict[str, Any] | None = None  # only tasks whose instance has these values
    process_keys: list[str] | None = None  # only tasks of these processes
    definitions: list[tuple[str, int]] | None = None  # only tasks of these (key, version) definitions
    tenant_ids: list[str] | None = None  # PDCA Flow has no tenants: a non-empty list matches no task
    version_tag: str | None = None  # nor version tags: any tag matches no task
    extension_properties: bool = True  # answer the task's camunda:properties (Camunda: only when asked)
    local_variables: bool = False  # the task's local variables only, not the process's (Camunda's localVariables)

    def matches_nothing(self) -> bool:
        """A filter no task here can meet (Camunda answers no task for it, as it would on an engine
        without tenants or version tags)."""
        return bool(self.tenant_ids) or self.version_tag is not None or self.definitions == [] \
            or self.process_keys == []


@dataclass
class ExternalTaskView:
    id: str
    topic: str
    worker_id: str | None
    lock_expires_at: datetime | None
    retries: int | None
    error_message: str | None
    error_details: str | None
    activity_id: str
    activity_name: str | None
    instance_id: str
    process_key: str
    process_version: int
    definition_id: int
    business_key: str | None
    priority: int
    created_at: datetime
    variables: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)  # camunda:properties of the task
    # the remembered Camunda types of `variables` (engine/runtime/variable_types.py)
    variable_types: dict[str, str] = field(default_factory=dict)


def _view(row: Any, variables: list[str] | None = None, local_only: bool = False) -> ExternalTaskView:
    """The task as a worker sees it: its variables are the process's with the task's locals (its input
    parameters) over them, as a Camunda execution sees them; only the locals with `local_only`."""
    local = dict(row.local_variables or {})
    data = local if local_only else {**(row.instance_data or {}), **local}
    if variables is not None:
        data = {k: data[k] for k in variables if k in data}
    # the instance's types are its process variables': none for a local that hides one of them
    types = {} if local_only or not row.instance_variable_types else {
        k: t for k, t in row.instance_variable_types.items() if k in data and k not in local}
    return ExternalTaskView(
        id=row.id, topic=row.topic, worker_id=row.locked_by, lock_expires_at=row.locked_until, retries=row.retries,
        error_message=row.error_message, error_details=row.error_details, activity_id=row.activity_id,
        activity_name=row.activity_name, instance_id=row.instance_id, process_key=row.process_key,
        process_version=row.process_version,
        definition_id=row.definition_id, business_key=row.business_key, priority=row.priority,
        created_at=row.created_at, variables=data, properties=dict(row.properties or {}), variable_types=types)


# ---------------------------------------------------------------------- fetch and lock
def fetch_and_lock(runtime: Runtime, actor: Actor, worker_id: str, topics: list[TopicRequest], *,
                   max_tasks: int = 1, use_priority: bool = False, wait_ms: int = 0,
                   newest_first: bool = False) -> list[ExternalTaskView]:
    """Lock up to `max_tasks` tasks of the topics to `worker_id` (by priority with `use_priority`, then
    by age: oldest first unless `newest_first`); with `wait_ms`, wait (long poll) until at least one
    is available or the time is up, answering as soon as one appears."""
    check_may_work_external_tasks(actor)
    if not worker_id:
        raise EngineError("workerId is required")
    topics = [t for t in topics if not t.matches_nothing()]
    if not topics:
        return []
    max_tasks = max(0, min(int(max_tasks), MAX_TASKS))
    deadline = time.monotonic() + min(max(wait_ms, 0) / 1000, MAX_WAIT.total_seconds())
    names = [t.name for t in topics]
    first = True
    while True:
        # the first attempt locks straight away; later polls first check with a cheap read, so an
        # idle long poll takes no write lock (SQLite has one for the whole database)
        if max_tasks and (first or _anything_fetchable(runtime, names)):
            locked = _lock(runtime, worker_id, topics, max_tasks, use_priority, newest_first)
            if locked:
                return locked
        first = False
        if time.monotonic() >= deadline:
            return []
        time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))


def _anything_fetchable(runtime: Runtime, topics: list[str]) -> bool:
    with runtime.db.read() as session:
        return store.any_fetchable(session.connection(), topics, clock.now())


def _lock(runtime: Runtime, worker_id: str, topics: list[TopicRequest], max_tasks: int,
          use_priority: bool, newest_first: bool) -> list[ExternalTaskView]:
    now = clock.now()
    held: list[tuple[Any, TopicRequest]] = []  # (claimed row, the topic that asked for it)
    # the usual fetch (one topic, no variable filter) is one claim statement, atomic by itself: it
    # needs no transaction around it (on PostgreSQL that saves the BEGIN and COMMIT round trips)
    single = len(topics) == 1 and not topics[0].process_variables and not topics[0].definitions
    with runtime.db.single_statement() if single else runtime.db.write_connection() as conn:
        for topic in topics:
            left = max_tasks - len(held)
            if left <= 0:
                break
            until = now + timedelta(milliseconds=max(0, int(topic.lock_duration_ms)))
            among = None
            definition_ids = None
            if topic.definitions:
                definition_ids = store.definition_ids(conn, topic.definitions)
                if not definition_ids:
                    continue
            if topic.process_variables:
                wanted_values = topic.process_variables.items()
                among = [r.id for r in store.candidates_with_data(conn, topic.name, now, FILTER_SCAN)
                         if all((r.data or {}).get(k) == v for k, v in wanted_values)]
                if not among:
                    continue
            rows = store.claim(conn, worker_id, topic.name, now=now, until=until, limit=left,
                               use_priority=use_priority, business_key=topic.business_key,
                               process_key=topic.process_key, instance_id=topic.instance_id, among=among,
                               process_keys=topic.process_keys, definition_ids=definition_ids,
                               newest_first=newest_first)
            held.extend((r, topic) for r in rows)
        return [_locked_view(r, topic) for r, topic in held]


def _locked_view(row: Any, topic: TopicRequest) -> ExternalTaskView:
    view = _view(row, topic.variables, topic.local_variables)
    if not topic.extension_properties:
        view.properties = {}
    return view


# ---------------------------------------------------------------------- reads
def get(runtime: Runtime, actor: Actor, task_id: str) -> ExternalTaskView:
    check_may_work_external_tasks(actor)  # reads too: tasks show business keys and workers' errors
    with runtime.db.read() as session:
        row = store.get(session.connection(), task_id)
    if row is None or row.state != "open":
        raise NotFoundError(f"External task with id {task_id} does not exist")
    return _view(row)


def error_details(runtime: Runtime, actor: Actor, task_id: str) -> str | None:
    """The last failure's details of a task still waiting (a finished task is gone, as in Camunda)."""
    check_may_work_external_tasks(actor)
    with runtime.db.read() as session:
        row = store.get(session.connection(), task_id)
    if row is None or row.state != "open":
        raise NotFoundError(f"External task with id {task_id} does not exist")
    return row.error_details


def list_tasks(runtime: Runtime, actor: Actor, **filters: Any) -> list[ExternalTaskView]:
    check_may_work_external_tasks(actor)
    with runtime.db.read() as session:
        rows = store.listing(session.connection(), now=clock.now(), **filters)
    return [_view(r) for r in rows]


def count_tasks(runtime: Runtime, actor: Actor, **filters: Any) -> int:
    """How many tasks `list_tasks` with these filters lists over all its pages (sort and paging ignored)."""
    check_may_work_external_tasks(actor)
    for paging in ("sort", "offset", "limit"):
        filters.pop(paging, None)
    with runtime.db.read() as session:
        return store.listing_count(session.connection(), now=clock.now(), **filters)


# ---------------------------------------------------------------------- outcomes
def _hold(uow: UnitOfWork, task_id: str, worker_id: str | None) -> tuple[Loaded, Any]:
    """The instance (locked first) and the task row (locked), checking the worker holds the lock."""
    loaded = _load_instance_of(uow, task_id)
    row = store.lock_row(uow.conn, task_id)
    _check_held(row, task_id, worker_id)
    return loaded, row


def _load_instance_of(uow: UnitOfWork, task_id: str, *, with_rows: bool = False) -> Loaded:
    """The task's instance, locked and restored; `with_rows` also reads its external-task rows' states
    in the same statement (Loaded.external_rows, unless they may be stale), which the caller then
    keeps current."""
    if with_rows:
        record, rows = store.lock_instance_with_rows(uow.conn, task_id) or (None, None)
    else:
        locked = store.lock_instance_of(uow.conn, task_id)
        record, rows = (locked._mapping if locked is not None else None), None
    if record is None:
        raise NotFoundError(f"External task with id {task_id} does not exist")
    loaded = uow.restore(record)
    loaded.external_rows = rows
    return loaded


def _check_held(row: Any, task_id: str, worker_id: str | None) -> None:
    if row is None or row.state != "open":
        raise NotFoundError(f"External task with id {task_id} does not exist")
    if worker_id is not None and row.locked_by != worker_id:
        holder = f"It is locked by worker '{row.locked_by}'." if row.locked_by else "It is not locked."
        raise LockMismatchError(f"External Task {task_id} cannot be handled by worker '{worker_id}'. {holder}")


def _open_row(conn: Any, task_id: str) -> Any:
    """The task's row; NotFoundError (Camunda's 404) unless it is open."""
    row = store.get(conn, task_id)
    _check_held(row, task_id, None)
    return row


def _waiting_task(loaded: Loaded, task_id: str) -> Any:
    task = spiff.task_by_id(loaded.workflow, task_id)
    if task is None or task_id not in spiff.waiting_external_tasks(loaded.workflow):
        raise NotFoundError(f"External task with id {task_id} does not exist")
    return task


def complete(runtime: Runtime, actor: Actor, task_id: str, worker_id: str, variables: dict[str, Any] | None,
             local_variables: dict[str, Any] | None = None, types: Mapping[str, str] | None = None) -> None:
    """The worker's result: variables become process variables and the token moves on. `types`: the
    Camunda types they were sent with (engine/runtime/variable_types.py), here and below."""
    check_may_work_external_tasks(actor)
    data = {**(local_variables or {}), **(variables or {})}  # no local scope here: both become process data
    with runtime.unit_of_work() as uow:
        loaded = _load_instance_of(uow, task_id, with_rows=True)
        # the hot path: check the lock and close the row in one statement (any error below rolls it back)
        row = store.finish_held(uow.conn, task_id, worker_id, "done", clock.now())
        if row is None:
            _check_held(store.lock_row(uow.conn, task_id), task_id, worker_id)
            raise LockMismatchError(f"External Task {task_id} cannot be handled by worker '{worker_id}'.")
        if loaded.external_rows is not None:
            loaded.external_rows[task_id] = "done"
        task = _waiting_task(loaded, task_id)
        if row.retries == 0:  # completed after all: its incident is over
            _resolve_incidents(uow, loaded, task_id, actor)
        spiff.complete_external(task, data)
        loaded.declare_types(data, types)
        loaded.audit("external_task_completed", actor, task_id,
                     {"task": row.activity_name, "topic": row.topic, "worker": worker_id, "variables": sorted(data)})
        uow.advance(loaded, actor)
        uow.save(loaded)


def handle_failure(runtime: Runtime, actor: Actor, task_id: str, worker_id: str, message: str | None,
                   details: str | None, retries: int, retry_timeout_ms: int,
                   variables: dict[str, Any] | None = None, types: Mapping[str, str] | None = None) -> None:
    """The worker could not do it: `retries` left (0 raises an incident), offered again after the timeout.
    The `variables` it reports are set all the same (the task waits on; no local scope here)."""
    check_may_work_external_tasks(actor)
    retries = max(0, int(retries))
    now = clock.now()
    with runtime.unit_of_work() as uow:
        loaded, row = _hold(uow, task_id, worker_id)
        task = _waiting_task(loaded, task_id)
        if variables:
            scopes.receive(task, variables)
            loaded.declare_types(variables, types)
        store.set_values(uow.conn, task_id, retries=retries, error_message=message, error_details=details,
                         locked_until=now + timedelta(milliseconds=max(0, int(retry_timeout_ms))))
        loaded.audit("external_task_failed", actor, task_id, {"task": row.activity_name, "worker": worker_id,
                                                              "message": message, "retries": retries})
        if retries == 0:
            incidents.on_external_task(loaded, task_id, row.activity_name or row.activity_id,
                                       message or "the external task failed", details, actor)
        uow.save(loaded)


def handle_bpmn_error(runtime: Runtime, actor: Actor, task_id: str, worker_id: str, code: str,
                      message: str | None, variables: dict[str, Any] | None,
                      types: Mapping[str, str] | None = None) -> None:
    """A business error: the matching error boundary event takes over; uncaught, the path ends."""
    check_may_work_external_tasks(actor)
    if not code:
        raise EngineError("errorCode is required")
    with runtime.unit_of_work() as uow:
        loaded, row = _hold(uow, task_id, worker_id)
        task = _waiting_task(loaded, task_id)
        store.set_values(uow.conn, task_id, state="done", ended_at=clock.now(), locked_by=None, locked_until=None,
                         error_message=message)
        if row.retries == 0:
            _resolve_incidents(uow, loaded, task_id, actor)
        caught = spiff.throw_error(task, code, dict(variables or {}))
        loaded.declare_types(variables or {}, types)
        loaded.audit("external_task_bpmn_error", actor, task_id,
                     {"task": row.activity_name, "worker": worker_id, "code": code, "message": message,
                      "caught": caught})
        uow.advance(loaded, actor)
        uow.save(loaded)


def extend_lock(runtime: Runtime, actor: Actor, task_id: str, worker_id: str, new_duration_ms: int) -> None:
    check_may_work_external_tasks(actor)
    now = clock.now()
    with runtime.db.write() as session:
        conn = session.connection()
        _open_row(conn, task_id)
        if not store.extend_lock(conn, task_id, worker_id, now + timedelta(milliseconds=max(0, int(new_duration_ms))),
                                 now):
            raise LockMismatchError(f"The lock of the External Task {task_id} cannot be extended by worker "
                                    f"'{worker_id}': it is not locked by that worker (or the lock has expired).")


def lock(runtime: Runtime, actor: Actor, task_id: str, worker_id: str, duration_ms: int) -> None:
    """Lock one task by id to `worker_id` (Camunda's lock): refused while another worker holds an
    unexpired lock (after a failure that includes the retry timeout)."""
    check_may_work_external_tasks(actor)
    now = clock.now()
    with runtime.db.write() as session:
        conn = session.connection()
        row = _open_row(conn, task_id)
        if not store.lock_one(conn, task_id, worker_id, now + timedelta(milliseconds=max(1, int(duration_ms))), now):
            raise LockMismatchError(f"External Task {task_id} cannot be locked by worker '{worker_id}'. "
                                    f"It is locked by worker '{row.locked_by}'.")


def unlock(runtime: Runtime, actor: Actor, task_id: str) -> None:
    check_may_work_external_tasks(actor)
    with runtime.db.write() as session:
        conn = session.connection()
        _open_row(conn, task_id)
        store.set_values(conn, task_id, locked_by=None, locked_until=None)


def set_retries(runtime: Runtime, actor: Actor, task_id: str, retries: int) -> None:
    """Set the retries left; above 0 this resolves the task's incident (the task is fetchable again at
    once). A task a worker holds without an incident stays held by it (Camunda keeps that lock too)."""
    check_lead_or_worker(actor, "set the retries of an external task")
    retries = int(retries)
    if retries < 0:
        raise EngineError("retries must be 0 or more")
    with runtime.unit_of_work() as uow:
        loaded, row = _hold(uow, task_id, None)
        exhausted = row.retries == 0  # its worker gave up: nobody holds it any more
        store.set_values(uow.conn, task_id, retries=retries,
                         locked_until=None if retries and exhausted else row.locked_until)
        loaded.audit("external_task_retries", actor, task_id, {"task": row.activity_name, "retries": retries})
        if retries > 0:
            _resolve_incidents(uow, loaded, task_id, actor)
        elif (row.retries or 0) > 0 or row.retries is None:
            incidents.on_external_task(loaded, task_id, row.activity_name or row.activity_id,
                                       row.error_message or "retries set to 0", row.error_details, actor)
        uow.save(loaded)


def _resolve_incidents(uow: UnitOfWork, loaded: Loaded, task_id: str, actor: Actor) -> None:
    open_incidents = instance_store.open_incidents(uow.conn, loaded.row.id)
    mine = [i.id for i in open_incidents if i.task_id == task_id]
    instance_store.resolve_incidents(uow.conn, mine, clock.now(), actor.username)
    if loaded.row.status == "incident" and len(mine) == len(open_incidents):
        loaded.row.status = "running"


def rearm_exhausted(uow: UnitOfWork, instance_id: str) -> list[str]:
    """A lead's retry of an instance gives its external tasks without retries one more attempt."""
    ids = store.exhausted_ids(uow.conn, instance_id)
    for task_id in ids:
        store.set_values(uow.conn, task_id, retries=1, locked_until=None)
    return ids


def as_json(view: ExternalTaskView) -> dict[str, Any]:
    return json_safe(view.__dict__)
