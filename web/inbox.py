"""The task inbox and the task page (form generated from the task's form fields)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import login_required

from engine import clock, directory
from engine.errors import ConflictError, FormValidationError
from engine.escalation import escalations_for
from engine.forms import GENERIC_FORM_ID, is_generic, user_fields
from engine.inbox import InboxRead, inbox_read, process_choices
from engine.permissions import is_own_work, may_claim, may_complete, may_unclaim
from engine.views import Actor, TaskView
from web.case_timeline import earlier_answers, step_about, timeline
from web.case_values import instance_case_values
from web.context import actor, database, lead_required, runtime

bp = Blueprint("inbox", __name__)

TABS = ("mine", "groups", "overdue", "completed")
LEAD_TABS = ("all", "unassigned")  # quality leads and admins only
PAGE_SIZE = 50  # tasks listed per page of a tab


def tab_tasks(read: InboxRead, tab: str, process: str | None, limit: int = PAGE_SIZE, offset: int = 0,
              q: str | None = None, sort: str = "due", **filters: Any) -> list[TaskView]:
    """The tasks of an inbox tab; `filters`: group, assignee, due, min_priority (Runtime.tasks)."""
    a = read.actor
    kw: dict[str, Any] = {"process_key": process, "limit": limit, "offset": offset, "q": q, "sort": sort, **filters}
    if tab == "mine":
        return [t for t in read.tasks(mine=True, **kw) if t.assignee == a.username]
    if tab == "groups":
        return read.tasks(state="open", in_groups=True, **kw)
    if tab == "all" and a.is_lead:
        return read.tasks(**kw)
    if tab == "unassigned" and a.is_lead:  # tasks nobody is offered until a lead assigns them
        return read.tasks(unassigned=True, **kw)
    if tab == "overdue":  # a lead sees every overdue task of every process
        return read.tasks(overdue=True, **kw)
    return read.tasks(state="completed", mine=True, **kw)


SORTS = {"due": "Due date", "priority": "Priority", "created": "Newest", "reference": "Reference"}
DUE_CHOICES = {"overdue": "Overdue", "today": "Due today", "week": "Due this week", "none": "No due date"}
PRIORITY_CHOICES = {"51": "Above normal (51+)", "70": "High (70+)"}


def _filters(a: Actor) -> dict[str, Any]:
    """The filter bar's values from the query string; unknown choices are ignored, not an error page."""
    args = request.args
    group = args.get("group") or None
    priority = args.get("priority") if args.get("priority") in PRIORITY_CHOICES else None
    return {"group": group if group in a.groups or a.is_lead else None,
            "assignee": (args.get("assignee") or "").strip()[:80] or None,
            "due": args.get("due") if args.get("due") in DUE_CHOICES else None,
            "min_priority": int(priority) if priority else None}


@bp.get("/inbox")
@login_required
def inbox() -> Any:
    a = actor()
    tabs = TABS + (LEAD_TABS if a.is_lead else ())
    tab = request.args.get("tab")
    q = (request.args.get("q") or "").strip()[:200] or None
    sort = request.args.get("sort") if request.args.get("sort") in SORTS else "due"
    filters = _filters(a)
    narrowed = bool(q or any(v is not None for v in filters.values()))
    if tab not in tabs:
        tab = "mine"
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), 10_000)
    with inbox_read(database(), a) as read:  # the list, the counts and the process filter: one transaction
        process = read.resolve_process(request.args.get("process") or None)
        tasks = tab_tasks(read, tab, process, PAGE_SIZE, (page - 1) * PAGE_SIZE, q, sort, **filters)
        if not request.args.get("tab") and not tasks and not narrowed:
            # nothing of one's own yet: land on the group queue when it holds work
            group_tasks = tab_tasks(read, "groups", process, PAGE_SIZE, 0, None, sort)
            if group_tasks:
                tab, tasks = "groups", group_tasks
        # the listed tab is counted only when it has more pages (a search counts only what it lists)
        counted = [t for t in tabs if t != tab or page > 1 or len(tasks) >= PAGE_SIZE]
        counts = read.counts(counted, process)
        processes = read.process_choices()
    if narrowed:
        counts[tab] = (page - 1) * PAGE_SIZE + len(tasks) + (1 if len(tasks) >= PAGE_SIZE else 0)
    counts.setdefault(tab, len(tasks))
    pages = max(1, -(-counts[tab] // PAGE_SIZE))
    groups = directory.group_names(database()) if a.is_lead else sorted(a.groups)
    query = {"process": process, "q": q, "sort": sort, "group": filters["group"], "assignee": filters["assignee"],
             "due": filters["due"], "priority": request.args.get("priority") if filters["min_priority"] else None}
    return render_template("inbox.html", tasks=tasks, rows=_rows(a, tasks), tab=tab, tabs=tabs, counts=counts,
                           process=process, processes=processes, page=page, pages=pages,
                           first=(page - 1) * PAGE_SIZE + 1, q=q, sort=sort, sorts=SORTS, narrowed=narrowed,
                           filters=filters, groups=groups, due_choices=DUE_CHOICES, priority_choices=PRIORITY_CHOICES,
                           query={k: v for k, v in query.items() if v})


def _rows(a: Actor, tasks: list[TaskView]) -> list[tuple[TaskView, str, bool, str | None]]:
    """(task, its page's address, overdue, "claim"/"unclaim"/None) per listed task, decided here once
    per row: the request-bound template globals (the signed-in user behind a proxy, a URL build per
    link) cost more than the rest of the row when a page lists fifty tasks."""
    base = url_for("inbox.task", task_id="-")[:-1]  # "/tasks/" (behind any script root)
    overdue = current_app.jinja_env.filters["overdue"]  # the one rule the task pages' badge follows too
    out = []
    for t in tasks:
        action = "claim" if may_claim(a, t, t.groups) else "unclaim" if may_unclaim(a, t, t.groups) else None
        out.append((t, base + quote(t.id, safe=""), overdue(t), action))
    return out


def _back(task_id: str) -> Any:
    target = request.form.get("next") or ""
    if target in ("inbox", "task"):
        return redirect(url_for("inbox.inbox", tab=request.form.get("tab", "mine")) if target == "inbox"
                        else url_for("inbox.task", task_id=task_id))
    return redirect(url_for("inbox.task", task_id=task_id))


def _render_task(task_id: str, values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                 status: int = 200) -> Any:
    a = actor()
    task = runtime().task(task_id, a)
    instance = runtime().instance(task.instance_id)
    if values is None:
        values = dict(task.values) if task.state == "completed" else {
            f["id"]: f.get("default") for f in task.form if f.get("default") is not None}
    active = [u["username"] for u in directory.users(database()) if u.get("active", True)] \
        if a.is_lead or user_fields(task.form) else []
    users = active if a.is_lead else []
    people = active if user_fields(task.form) else []  # the user picker of fields naming a person
    return render_template("task.html", task=task, instance=instance, values=values, errors=errors or {},
                           case_rows=instance_case_values(runtime(), instance),
                           about=step_about(task), earlier=earlier_answers(instance, task.id),
                           history=timeline(instance, []),
                           process_name=dict(process_choices(database())).get(instance.key),
                           may_complete=may_complete(a, task, task.groups), users=users, people=people,
                           today=clock.now().date().isoformat(),
                           escalations=escalations_for(database(), task.id)), status


@bp.get("/tasks/<task_id>")
@login_required
def task(task_id: str) -> Any:
    return _render_task(task_id)


@bp.post("/tasks/<task_id>/claim")
@login_required
def claim(task_id: str) -> Any:
    t = runtime().claim(task_id, actor())
    flash(f"You now hold “{t.name}”.")
    return _back(task_id)


@bp.post("/tasks/<task_id>/unclaim")
@login_required
def unclaim(task_id: str) -> Any:
    t = runtime().unclaim(task_id, actor())
    flash(f"“{t.name}” is back in its groups.")
    return _back(task_id)


@bp.post("/tasks/<task_id>/assign")
@login_required
@lead_required
def assign(task_id: str) -> Any:
    assignee = (request.form.get("assignee") or "").strip() or None
    try:
        t = runtime().assign(task_id, actor(), assignee)
    except FormValidationError:
        flash(f"There is no active user named {assignee}.", "error")
        return redirect(url_for("inbox.task", task_id=task_id))
    flash(f"“{t.name}” assigned to {assignee}." if assignee else f"“{t.name}” returned to its groups.")
    return redirect(url_for("inbox.task", task_id=task_id))


@bp.post("/tasks/<task_id>/due")
@login_required
@lead_required
def due(task_id: str) -> Any:
    value = (request.form.get("due_at") or "").strip() or None
    try:
        t = runtime().set_due_date(task_id, actor(), value)
    except FormValidationError as exc:
        flash(exc.message, "error")
        return redirect(url_for("inbox.task", task_id=task_id))
    flash(f"“{t.name}” is now due {t.due_at:%Y-%m-%d}." if t.due_at else f"“{t.name}” has no due date now.")
    return redirect(url_for("inbox.task", task_id=task_id))


@bp.post("/tasks/<task_id>/complete")
@login_required
def complete(task_id: str) -> Any:
    a = actor()
    task_view = runtime().task(task_id, a)
    field_ids = [f["id"] for f in task_view.form if not f.get("readonly")]
    values = {fid: request.form[fid] for fid in field_ids if fid in request.form}
    submitted: dict[str, Any] = values
    if is_generic(task_view.form):  # a form key without fields: the variables come as one JSON object
        text = (values.get(GENERIC_FORM_ID) or "").strip() or "{}"
        try:
            submitted = json.loads(text)
        except json.JSONDecodeError as exc:
            submitted = None
            problem = f"is not valid JSON: {exc.msg} (line {exc.lineno})"
        else:
            problem = None if isinstance(submitted, dict) else 'must be a JSON object, e.g. {"approved": true}'
        if problem:
            return _render_task(task_id, values=values, errors={GENERIC_FORM_ID: problem}, status=422)
    try:
        instance = runtime().complete(task_id, a, submitted, history=False)
    except FormValidationError as exc:
        errors = {d.get("field") or "": d.get("message", "") for d in exc.details}
        if is_generic(task_view.form):  # name the variables in the one field they were typed into
            errors = {GENERIC_FORM_ID: "; ".join(f"{k} {m}".strip() for k, m in errors.items())}
        return _render_task(task_id, values=values, errors=errors, status=422)
    except ConflictError as exc:
        flash(exc.message, "error")
        return _render_task(task_id, values=values, status=409)
    flash(f"“{task_view.name}” completed.")
    nxt = [t for t in instance.tasks if is_own_work(a, t, t.groups)]
    if nxt:
        return redirect(url_for("inbox.task", task_id=nxt[0].id))
    return redirect(url_for("inbox.inbox"))
