"""Human task operations: list, read, claim, unclaim, assign, change the due date, complete.

Who may do what is decided by engine.permissions (one home for those rules). Every change is a
conditional update of the task row, so of two people acting on one task at once exactly one wins
and the other gets a ConflictError saying who did.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from engine import clock
from engine.assignment import AssignmentError, parse_when
from engine.cases import case_of, cases_of_instances
from engine.errors import ConflictError, FormValidationError, InvalidStateError, NotFoundError
from engine.forms import set_path, user_fields, validate_submission
from engine.permissions import check_lead, check_may_act, may_see_task, task_viewer
from engine.runtime import projection, scopes, spiff
from engine.runtime.unit_of_work import UnitOfWork
from engine.views import Actor, InstanceView, TaskView
from storage import instances as store

OPEN_STATES = store.OPEN_STATES


def unknown_users(conn: Any, named: dict[str, Any]) -> list[dict[str, str]]:
    """Field errors for the values of `named` (field id → user name) that are not active users."""
    known = store.active_usernames(conn, [str(v) for v in named.values()])
    return [{"field": f, "message": f"names no active user ({v})"} for f, v in named.items() if str(v) not in known]


DUE_FILTERS = ("overdue", "today", "week", "none")  # the inbox's and the API's `due` filter


def _due_range(due: str | None, overdue: bool) -> tuple[Any, Any, bool]:
    """(due before, due on or after, undated only) of the `due` filter; `overdue` is `due=overdue`."""
    now = clock.now()
    if overdue or due == "overdue":
        return now, None, False
    if due == "today":  # due by the end of today (UTC), overdue ones included
        return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1), None, False
    if due == "week":  # due within the next seven days, overdue ones included
        return now + timedelta(days=7), None, False
    return None, None, due == "none"


def list_tasks(conn: Any, actor: Actor, *, state: str | None, mine: bool, instance_id: str | None,
               process_key: str | None, limit: int, in_groups: bool, offset: int, overdue: bool,
               unassigned: bool = False, q: str | None = None, sort: str = "due", group: str | None = None,
               assignee: str | None = None, due: str | None = None, min_priority: int | None = None) -> list[TaskView]:
    states = (state,) if state else OPEN_STATES
    due_before, due_after, undated = _due_range(due, overdue)
    if overdue or due in ("overdue", "today", "week"):
        states = tuple(s for s in states if s in OPEN_STATES)  # a due date is a promise of open work
    if unassigned:  # the Unassigned queue holds open tasks only (assigning one claims it)
        states = tuple(s for s in states if s == "open")
    if not states:
        return []
    viewer = task_viewer(actor)
    rows = store.list_tasks(conn, username=viewer.username, groups=viewer.names, lead=viewer.sees_all,
                            states=states, mine=mine, in_groups=in_groups, instance_id=instance_id,
                            process_key=process_key, due_before=due_before, limit=limit,
                            offset=offset, unassigned=unassigned, q=(q or "").strip()[:200] or None,
                            sort=sort if sort in store.TASK_SORTS else "due", group=group or None,
                            assignee=assignee or None, due_after=due_after, undated=undated,
                            min_priority=min_priority)
    groups = store.groups_of(conn, [r.id for r in rows])
    views = [projection.task_view(r, groups.get(r.id, [])) for r in rows]
    cases = cases_of_instances(conn, (v.instance_id for v in views))
    names = store.process_names(conn, (v.process_key for v in views))
    for v in views:
        v.case = cases.get(v.instance_id) or case_of(None, None)
        v.process_name = names.get(v.process_key, v.process_key)
    return views


def read_task(conn: Any, task_id: str, actor: Actor) -> TaskView:
    row, groups = store.task_with_groups(conn, task_id)
    if row is None or not may_see_task(actor, row, groups):
        raise NotFoundError(f"task {task_id} not found")
    return projection.task_view(row, groups)


def _task(uow: UnitOfWork, task_id: str, actor: Actor | None = None) -> tuple[Any, list[str]]:
    """The task row and its groups; with `actor`, a task they may not see does not exist for them
    (checked before its state, so not even a 409 names it)."""
    row, groups = store.task_with_groups(uow.conn, task_id)
    if row is None or (actor is not None and not may_see_task(actor, row, groups)):
        raise NotFoundError(f"task {task_id} not found")
    return row, groups


def _check_open(row: Any) -> None:
    if row.state in ("completed", "cancelled"):
        who = f" by {row.completed_by}" if row.state == "completed" and row.completed_by else ""
        raise ConflictError(f"task '{row.name}' is already {row.state}{who}")


def _taken(uow: UnitOfWork, task_id: str) -> ConflictError:
    """Why a conditional task update matched nothing: someone else changed the task first."""
    row, _ = _task(uow, task_id)
    if row.state in ("completed", "cancelled"):
        who = f" by {row.completed_by}" if row.state == "completed" and row.completed_by else ""
        return ConflictError(f"task '{row.name}' was {row.state}{who} at the same time")
    if row.assignee:
        return ConflictError(f"task '{row.name}' was claimed by {row.assignee} at the same time")
    return ConflictError(f"task '{row.name}' was changed by someone else at the same time; reload and try again")


def claim(uow: UnitOfWork, task_id: str, actor: Actor) -> TaskView:
    row, groups = _task(uow, task_id, actor)
    _check_open(row)
    if row.state == "claimed" and row.assignee == actor.username:
        return projection.task_view(row, groups)
    check_may_act(actor, row, groups)
    if row.state == "claimed":
        raise ConflictError(f"task '{row.name}' is already claimed by {row.assignee}")
    if not store.take_task(uow.conn, task_id, "open", None,
                           {"state": "claimed", "assignee": actor.username, "claimed_at": clock.now()}):
        raise _taken(uow, task_id)
    uow.audit("claim", actor, row.instance_id, row.id, {"task": row.name})
    return projection.task_view(_task(uow, task_id)[0], groups)


def unclaim(uow: UnitOfWork, task_id: str, actor: Actor) -> TaskView:
    row, groups = _task(uow, task_id, actor)
    _check_open(row)
    check_may_act(actor, row, groups)
    if row.state != "claimed":
        raise ConflictError(f"task '{row.name}' is not claimed")
    if row.assignee != actor.username and not actor.is_lead:
        raise ConflictError(f"task '{row.name}' is held by {row.assignee}")
    if not groups:
        raise InvalidStateError(f"task '{row.name}' has no candidate groups to return to; a quality lead can reassign it")
    if not store.take_task(uow.conn, task_id, "claimed", row.assignee,
                           {"state": "open", "assignee": None, "claimed_at": None}):
        raise _taken(uow, task_id)
    uow.audit("unclaim", actor, row.instance_id, row.id, {"task": row.name})
    return projection.task_view(_task(uow, task_id)[0], groups)


def assign(uow: UnitOfWork, task_id: str, actor: Actor, assignee: str | None) -> TaskView:
    """A quality lead (re)assigns a task to a person, or back to its groups with None."""
    check_lead(actor, "reassign tasks")
    row, groups = _task(uow, task_id)
    _check_open(row)
    if not assignee and not groups:
        raise InvalidStateError(f"task '{row.name}' has no candidate groups; assign it to a person")
    problems = unknown_users(uow.conn, {"assignee": assignee} if assignee else {})
    if problems:
        raise FormValidationError(f"there is no active user named {assignee}", problems)
    # conditional on the state read above: a completion or claim committed in between wins (409), so
    # a reassignment never reopens a task someone just completed
    if not store.take_task(uow.conn, task_id, row.state, row.assignee,
                           {"assignee": assignee or None, "state": "claimed" if assignee else "open",
                            "claimed_at": clock.now() if assignee else None}):
        raise _taken(uow, task_id)
    uow.audit("assign", actor, row.instance_id, row.id, {"task": row.name, "from": row.assignee, "to": assignee or None})
    return projection.task_view(_task(uow, task_id)[0], groups)


def set_due_date(uow: UnitOfWork, task_id: str, actor: Actor, due: datetime | str | None) -> TaskView:
    """A quality lead sets or changes a task's due date (ISO date-time, date or duration from now).

    Escalation keys its levels on the due date, so a new date starts a new escalation cycle.
    """
    check_lead(actor, "change due dates")
    try:
        due_at = parse_when(due, clock.now(), "dueDate") if due not in (None, "") else None
    except AssignmentError as exc:
        raise FormValidationError(exc.message, [{"field": "due_at", "message": exc.message}]) from exc
    row, groups = _task(uow, task_id)
    _check_open(row)
    if not store.take_task(uow.conn, task_id, row.state, row.assignee, {"due_at": due_at}):
        raise _taken(uow, task_id)
    uow.audit("due_changed", actor, row.instance_id, row.id,
              {"task": row.name, "from": row.due_at.isoformat() if row.due_at else None,
               "to": due_at.isoformat() if due_at else None})
    return projection.task_view(_task(uow, task_id)[0], groups)


def complete(uow: UnitOfWork, task_id: str, actor: Actor, data: dict[str, Any] | None, *,
             history: bool = True, types: Mapping[str, str] | None = None) -> InstanceView:
    # The task, its groups and its instance in one statement that also locks the instance row: the
    # same lock order as UnitOfWork.load, instance first, then the task's conditional update.
    row, groups, instance, instance_tasks = store.task_with_instance(uow.conn, task_id)
    if row is None or not may_see_task(actor, row, groups):
        raise NotFoundError(f"task {task_id} not found")
    _check_open(row)
    check_may_act(actor, row, groups)
    if row.assignee and row.assignee != actor.username:
        raise ConflictError(f"task '{row.name}' is held by {row.assignee}")
    values, errors = validate_submission(row.form or [], data or {})
    # people are checked on the submitted text too, so one answer names every bad field at once
    raw = data if isinstance(data, dict) else {}
    named = {f: str(values.get(f, raw.get(f)) or "").strip() for f in user_fields(row.form or [])}
    errors += unknown_users(uow.conn, {f: v for f, v in named.items() if v})
    if errors:
        raise FormValidationError(f"please correct: {', '.join(e['field'] or 'form' for e in errors)}", errors)
    # Take the task with a conditional update: of two concurrent completions (or a completion racing a
    # claim) exactly one matches; the other stops here with a conflict.
    done = {"state": "completed", "completed_at": clock.now(), "completed_by": actor.username, "submitted": values,
            "assignee": row.assignee or actor.username}
    if not store.take_task(uow.conn, task_id, row.state, row.assignee, done):
        raise _taken(uow, task_id)
    # the save diffs against the task rows read above (this one as just written), not a second read
    instance_tasks[task_id] = (SimpleNamespace(**{**row._mapping, **done}), groups)
    loaded = uow.restore(instance, projection.Snapshot(tasks=instance_tasks, waits_read=False))
    if loaded.row.status in ("cancelled", "completed"):
        raise ConflictError(f"instance {loaded.row.id} is {loaded.row.status}")
    task = spiff.task_by_id(loaded.workflow, task_id)
    if not spiff.is_ready(task):
        raise ConflictError(f"task '{row.name}' can no longer be completed")
    before = scopes.snapshot(task)
    for key, value in values.items():
        set_path(task.data, key, value)
    loaded.declare_types(values, types)
    loaded.audit("complete", actor, row.id, {"task": row.name, "data": values})
    uow.run_task(loaded, task, actor, before)
    uow.advance(loaded, actor)
    uow.save(loaded)
    return projection.instance_view(uow, loaded, history=history)
