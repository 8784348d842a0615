"""Projection: what the human-task, timer and message-subscription tables must say for a workflow.

A workflow's state is one opaque JSON column; the inbox, the scheduler and message correlation
read these indexed tables instead. `project` compares the workflow with a snapshot of the
instance's current projection rows and returns the changes (it writes nothing itself); `write`
issues the changes of any number of instances as multi-row statements. Views for callers are
built here too, from the rows a unit of work already holds where it can.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from engine.assignment import AssignmentError, hold_unavailable_assignees, resolve, split_candidates
from engine.forms import form_fields, generic_form, get_path
from engine.placeholders import fill, has_placeholders
from engine.runtime import incidents, spiff
from engine.runtime.values import json_roundtrip, json_safe
from engine.views import Actor, AuditView, IncidentView, InstanceView, TaskView
from storage import instances as store

if TYPE_CHECKING:
    from engine.runtime.unit_of_work import Loaded, UnitOfWork

OPEN_STATES = store.OPEN_STATES
TaskRows = dict[str, tuple[Any, list[str]]]  # task id -> (row, sorted groups)


@dataclass
class Snapshot:
    """The projection rows of one instance as the database holds them at the start of a save."""

    tasks: TaskRows = field(default_factory=dict)
    timers: list[Any] = field(default_factory=list)  # waiting timer rows
    subscriptions: list[Any] = field(default_factory=list)
    # False: only the task rows were read (with the instance's lock, by a completion); the save reads
    # the timers and subscriptions when the workflow may have some (`read_waits`)
    waits_read: bool = True


def read_snapshot(conn: Connection, instance_id: str, *, new: bool, waits: bool, human: bool = True) -> Snapshot:
    """`human=False`: the process has no task a person completes, so it has no human-task rows to read."""
    if new:
        return Snapshot()
    snapshot = Snapshot(tasks=store.tasks_of_instances(conn, [instance_id]).get(instance_id, {}) if human else {})
    if waits:
        read_waits(conn, instance_id, snapshot)
    return snapshot


def read_waits(conn: Connection, instance_id: str, snapshot: Snapshot) -> None:
    snapshot.timers = store.waiting_timers(conn, [instance_id]).get(instance_id, [])
    snapshot.subscriptions = store.subscriptions(conn, [instance_id]).get(instance_id, [])
    snapshot.waits_read = True


def read_snapshots(conn: Connection, instance_ids: list[str]) -> dict[str, Snapshot]:
    """Snapshots of several instances with one statement per table (a timer batch)."""
    tasks = store.tasks_of_instances(conn, instance_ids)
    timers = store.waiting_timers(conn, instance_ids)
    subs = store.subscriptions(conn, instance_ids)
    return {i: Snapshot(tasks.get(i, {}), timers.get(i, []), subs.get(i, [])) for i in instance_ids}


@dataclass
class Changes:
    cancelled_tasks: list[dict[str, Any]] = field(default_factory=list)  # {b_id, completed_at}
    new_tasks: list[dict[str, Any]] = field(default_factory=list)
    new_groups: list[dict[str, str]] = field(default_factory=list)
    timers_done: list[int] = field(default_factory=list)
    timers_moved: list[dict[str, Any]] = field(default_factory=list)
    timers_new: list[dict[str, Any]] = field(default_factory=list)
    subscriptions_gone: list[int] = field(default_factory=list)
    subscriptions_new: list[dict[str, Any]] = field(default_factory=list)
    leases_released: list[int] = field(default_factory=list)


def project(conn: Connection, loaded: Loaded, snapshot: Snapshot, now: datetime, waits: spiff.Waits) -> Changes:
    """`waits`: the workflow's waiting timers, messages and signals (spiff.waiting_events), worked out once per save.
    `conn` reads only the accounts of the assignees new tasks name (engine/assignment.py)."""
    changes = Changes()
    _human_tasks(conn, loaded, snapshot, now, changes)
    _waits(loaded, snapshot, waits, changes)
    return changes


def _human_tasks(conn: Connection, loaded: Loaded, snapshot: Snapshot, now: datetime, changes: Changes) -> None:
    """Ready user tasks get a row; open rows whose task is no longer ready are cancelled.

    Every row of the instance is compared, not only open ones, so a READY task that was projected
    before (e.g. after a retry) never gets a second row.
    """
    row = loaded.row
    ready = spiff.ready_user_tasks(loaded.workflow)
    rows: TaskRows = dict(snapshot.tasks)
    for task_id, (ht, groups) in list(rows.items()):
        if ht.state in OPEN_STATES and task_id not in ready:
            changes.cancelled_tasks.append({"b_id": task_id, "completed_at": now})
            rows[task_id] = (SimpleNamespace(**{**ht._mapping, "state": "cancelled", "completed_at": now}), groups)
            loaded.audit("task_cancelled", None, task_id, {"task": ht.name})
    created = []
    for task_id, task in ready.items():
        if task_id in rows:
            continue
        attrs = spiff.pdca_attributes(task)
        try:
            created.append((task_id, task, attrs, resolve(attrs, task.data, now, spiff.expression_context(task))))
        except AssignmentError as exc:
            incidents.on_loaded(loaded, task, exc, Actor.system())
    hold_unavailable_assignees(conn, [who for *_, who in created])  # an assignee must be an active user
    for task_id, task, attrs, who in created:
        fields = form_fields(spiff.task_form(task))
        if not fields and (attrs.get("formKey") or attrs.get("formRef")):
            fields = generic_form()  # an app's or Camunda Forms' form: the client submits any variables
        for f in fields:
            current = get_path(task.data, f["id"])
            if current is not None and not isinstance(current, (dict, list)):
                f["default"] = current
            elif has_placeholders(f.get("default")):  # a template, e.g. "Dear ${customer_name}," (Camunda: an expression)
                f["default"] = fill(f["default"], task.data)
        name = spiff.element_name(task)
        values = dict(context=json_safe(_records_edited(fields, task.data)),
            id=task_id, instance_id=row.id, process_key=row.process_key, spec_id=spiff.element_id(task),
            name=name, state="claimed" if who.assignee else "open", assignee=who.assignee,
            candidate_groups=json_safe(who.groups), priority=who.priority, due_at=who.due_at,
            follow_up_at=who.follow_up_at, form=json_safe(fields), documentation=attrs.get("documentation"),
            created_at=now, claimed_at=now if who.assignee else None, completed_at=None, completed_by=None,
            submitted=None)
        groups = who.candidates  # candidate groups and users (engine.assignment.candidate_key)
        changes.new_tasks.append(values)
        changes.new_groups.extend({"task_id": task_id, "group_name": g} for g in groups)
        rows[task_id] = (SimpleNamespace(**values), sorted(groups))
        audit = {"task": name, "assignee": who.assignee, "groups": who.groups}
        if who.users:
            audit["candidate_users"] = who.users
        if who.unavailable:
            audit["assignee_unavailable"] = who.unavailable  # the notifier tells the quality leads
        loaded.audit("task_created", None, task_id, audit)
        if who.unavailable:
            loaded.audit("assignee_unavailable", None, task_id,
                         {"task": name, **who.unavailable, "groups": who.groups, "candidate_users": who.users})
    loaded.tasks = rows


def _waits(loaded: Loaded, snapshot: Snapshot, waits: spiff.Waits, changes: Changes) -> None:
    """Waiting timers, message and signal catches, so the scheduler and correlation stay indexed.

    A wait that ended (fired, or lost a race at an event-based gateway, or its scope was cancelled)
    loses its row: the timer becomes 'done', the subscription is deleted.
    """
    timers = waits.timers
    known = set()
    for t in snapshot.timers:
        known.add(t.task_id)
        if t.task_id not in timers:
            changes.timers_done.append(t.id)
            continue
        if t.due_at != timers[t.task_id][1]:
            changes.timers_moved.append({"b_id": t.id, "due_at": timers[t.task_id][1]})
        if t.id in loaded.leased_timers:  # still waiting after its firing (a cycle, or not due yet)
            changes.leases_released.append(t.id)
    for task_id, (element, due) in timers.items():
        if task_id not in known:
            changes.timers_new.append({"instance_id": loaded.row.id, "task_id": task_id, "spec_id": element,
                                       "due_at": due, "state": "waiting", "attempts": 0})
    wanted = {("message", name) for name in waits.messages} | {("signal", name) for name in waits.signals}
    subscribed = set()
    for s in snapshot.subscriptions:
        subscribed.add((s.kind, s.name))
        if (s.kind, s.name) not in wanted:
            changes.subscriptions_gone.append(s.id)
    for kind, name in sorted(wanted - subscribed):
        changes.subscriptions_new.append({"instance_id": loaded.row.id, "kind": kind, "name": name,
                                          "correlation": loaded.row.business_key, "process_key": None})


def write(conn: Connection, all_changes: list[Changes]) -> None:
    """The projection changes of several instances, one statement per kind of change."""
    def gather(name: str) -> list[Any]:
        return [item for c in all_changes for item in getattr(c, name)]

    if cancelled := gather("cancelled_tasks"):
        store.cancel_tasks(conn, cancelled)
    store.insert_tasks(conn, gather("new_tasks"), gather("new_groups"))
    if done := gather("timers_done"):
        store.finish_timers(conn, done)
    if moved := gather("timers_moved"):
        store.move_timers(conn, moved)
    if new := gather("timers_new"):
        store.insert_timers(conn, new)
    if gone := gather("subscriptions_gone"):
        store.delete_subscriptions(conn, gone)
    if subs := gather("subscriptions_new"):
        store.insert_subscriptions(conn, subs)
    if released := gather("leases_released"):
        store.release_timer_leases(conn, released)


def _records_edited(fields: list[dict[str, Any]], data: dict[str, Any]) -> dict[str, Any] | None:
    """{name: record} of the records the form's dotted fields edit (`action.done_at` edits `action`):
    what the step is about, kept on the task so its page and the KPIs can name it."""
    names = {f["id"].split(".", 1)[0] for f in fields if "." in f.get("id", "")}
    records = {n: data[n] for n in sorted(names) if isinstance(data.get(n), dict)}
    return records or None


# ---------------------------------------------------------------------- views
def task_view(row: Any, groups: list[str]) -> TaskView:
    """The view of a task row; `groups` are its stored candidate names (groups and `user:` keys)."""
    real_groups, users = split_candidates(list(groups))
    return TaskView(
        id=row.id, name=row.name, spec_id=row.spec_id, instance_id=row.instance_id, process_key=row.process_key,
        state=row.state, assignee=row.assignee, groups=real_groups, candidate_users=users, due_at=row.due_at,
        follow_up_at=row.follow_up_at, priority=row.priority, created_at=row.created_at,
        completed_at=row.completed_at, completed_by=row.completed_by, form=list(row.form or []),
        documentation=row.documentation, values=dict(row.submitted or {}),
        context=dict(getattr(row, "context", None) or {}),
    )


def instance_view(uow: UnitOfWork, loaded: Loaded, *, history: bool = True) -> InstanceView:
    """The view at the end of a unit of work that saved `loaded` (flushes it first).

    The tasks come from the save; a new instance has no incidents or audit rows but this unit's, which
    were just written; otherwise audit rows and incidents are read in one statement. Without `history`
    (a caller that shows only what comes next, e.g. the inbox after a completion) the view carries
    only this unit's audit rows and incidents, and nothing is read.
    """
    uow.flush()
    row = loaded.row
    if loaded.tasks is None:  # nothing was saved: read everything back
        return read_instance_view(uow.conn, row.id)
    tasks = sorted(loaded.tasks.values(), key=lambda tg: (tg[0].created_at, tg[0].id))
    if loaded.inserted or not history:
        incident_rows = [SimpleNamespace(**i) for i in loaded.incidents]
        audit = [AuditView(a["at"], a["actor"], a["type"], a["task_id"], a["payload"])
                 for a in uow.written_audit if a["instance_id"] == row.id]
    else:
        incident_rows, audit = _audit_and_incidents(uow.conn, row.id)
    return _view(row, [task_view(t, g) for t, g in tasks], incident_rows, audit)


def read_instance_view(conn: Connection, instance_id: str) -> InstanceView | None:
    row = store.instance_row(conn, instance_id)
    if row is None:
        return None
    tasks = store.tasks_of_instances(conn, [instance_id]).get(instance_id, {})
    incident_rows, audit = _audit_and_incidents(conn, instance_id)
    return _view(row, [task_view(t, sorted(g)) for t, g in tasks.values()], incident_rows, audit)


def _audit_and_incidents(conn: Connection, instance_id: str) -> tuple[list[Any], list[AuditView]]:
    incident_rows, audit = [], []
    for r in store.audit_and_incidents(conn, instance_id):
        if r.kind == 0:
            audit.append(AuditView(r.at, r.actor, r.type, r.task_id, r.payload))
        else:
            incident_rows.append(SimpleNamespace(id=r.id, task_id=r.task_id, task_name=r.task_name,
                                                 message=r.message, data=r.payload, created_at=r.at,
                                                 resolved_at=r.resolved_at))
    return incident_rows, audit


def _view(row: Any, tasks: list[TaskView], incident_rows: list[Any], audit: list[AuditView]) -> InstanceView:
    return InstanceView(
        id=row.id, key=row.process_key, version=row.process_version, status=row.status,
        business_key=row.business_key, data=dict(row.data or {}), started_at=row.started_at, ended_at=row.ended_at,
        tasks=tasks,
        incidents=[IncidentView(i.id, i.task_id, i.task_name, i.message, json_roundtrip(i.data), i.created_at,
                                i.resolved_at) for i in incident_rows],
        audit=audit, variable_types=dict(row.variable_types or {}),
    )
