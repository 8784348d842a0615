"""Instance list and page: data, tasks, incidents, audit trail, BPMN diagram; cancel, retry, and set
the retries of an external task in incident."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required

from engine import case_notes, clock, external_tasks, settings
from engine.errors import FormValidationError, TooLargeError
from engine.inbox import process_choices
from engine.permissions import check_may_see_instance, visible_tasks
from engine.schedules import list_schedules
from web.attachments import send_attachment, uploaded_attachments
from web.case_timeline import ahead, timeline
from web.case_values import actor_name, instance_case_values
from web.context import actor, database, lead_required, runtime
from web.diagram import instance_diagram

bp = Blueprint("instances", __name__)
STATUSES = ("running", "incident", "completed", "cancelled")


@bp.get("/instances")
@login_required
@lead_required
def index() -> Any:
    status = request.args.get("status") or None
    if status not in STATUSES:
        status = None
    key = request.args.get("process") or None
    rows = runtime().instances(key=key, status=status, limit=200)
    # timer starts that failed have no instance to carry the incident: listed beside the instances
    failed_starts = list_schedules(database(), state="incident") if status in (None, "incident") else []
    return render_template("instances.html", rows=rows, status=status, process=key, statuses=STATUSES,
                           failed_starts=failed_starts)


@bp.get("/instances/<instance_id>")
@login_required
def show(instance_id: str) -> Any:
    a = actor()
    instance = check_may_see_instance(a, runtime().instance(instance_id))
    tasks = visible_tasks(a, instance)
    diagram = instance_diagram(a, instance)
    comments = case_notes.comments(runtime(), a, instance_id)
    return render_template("instance.html", instance=instance, tasks=tasks, diagram=diagram,
                           timeline=timeline(instance, comments, show_logs=a.is_lead),
                           ahead=ahead(instance, tasks, diagram), comments=comments,
                           attachments=case_notes.attachments(runtime(), a, instance_id),
                           accept=case_notes.accept_hint(), comment_max=case_notes.MAX_COMMENT_CHARS,
                           max_mb=max(1, settings.current().attachment_max_bytes // (1024 * 1024)), now=clock.now(),
                           case_rows=instance_case_values(runtime(), instance), person=actor_name,
                           process_name=dict(process_choices(database())).get(instance.key),
                           # the raw variables are a lead's diagnostic tool, not a case view
                           data_json=json.dumps(instance.data, indent=2, sort_keys=True, default=str) if a.is_lead
                           else None)


@bp.post("/instances/<instance_id>/comments")
@login_required
def comment(instance_id: str) -> Any:
    try:
        case_notes.add_comment(runtime(), actor(), instance_id, request.form.get("body") or "")
    except FormValidationError as exc:
        flash(f"Comment {exc.details[0]['message']}." if exc.details else exc.message, "error")
    else:
        flash("Comment added.")
    return redirect(url_for("instances.show", instance_id=instance_id) + "#comments")


@bp.post("/instances/<instance_id>/attachments")
@login_required
def attach(instance_id: str) -> Any:
    a = actor()
    check_may_see_instance(a, runtime().instance(instance_id))
    try:
        uploads = uploaded_attachments()
        if not uploads:
            raise FormValidationError("choose a file", [{"field": "file", "message": "choose a file to attach"}])
        stored = case_notes.attach(runtime(), a, instance_id, uploads)
    except (FormValidationError, TooLargeError) as exc:
        flash(f"Not attached: {exc.message}.", "error")
    else:
        flash("Attached " + ", ".join(f["filename"] for f in stored) + ".")
    return redirect(url_for("instances.show", instance_id=instance_id) + "#attachments")


@bp.get("/attachments/<attachment_id>")
@login_required
def download(attachment_id: str) -> Any:
    return send_attachment(actor(), attachment_id)


def _lead_on(instance_id: str) -> None:
    """Acting on an instance one may not see is a 404, like reading it (DESIGN §8); seeing it
    without being a lead is a 403."""
    a = actor()
    if not a.is_lead:
        check_may_see_instance(a, runtime().instance(instance_id))
        abort(403, "Only quality leads and admins may do this.")


@bp.post("/instances/<instance_id>/cancel")
@login_required
def cancel(instance_id: str) -> Any:
    _lead_on(instance_id)
    runtime().cancel(instance_id, actor(), (request.form.get("reason") or "").strip()[:500])
    flash("Instance cancelled.")
    return redirect(url_for("instances.show", instance_id=instance_id))


@bp.post("/instances/<instance_id>/retry")
@login_required
def retry(instance_id: str) -> Any:
    _lead_on(instance_id)
    raw = (request.form.get("data") or "").strip()
    try:
        data = json.loads(raw) if raw else None
    except json.JSONDecodeError as exc:
        flash(f"Corrected data is not valid JSON: {exc.msg}", "error")
        return redirect(url_for("instances.show", instance_id=instance_id))
    if data is not None and not isinstance(data, dict):
        flash("Corrected data must be a JSON object.", "error")
        return redirect(url_for("instances.show", instance_id=instance_id))
    instance = runtime().retry(instance_id, actor(), data)
    flash(f"Retried; the instance is {instance.status}.")
    return redirect(url_for("instances.show", instance_id=instance_id))


@bp.post("/instances/<instance_id>/external-tasks/<task_id>/retries")
@login_required
def set_retries(instance_id: str, task_id: str) -> Any:
    """The incident of an external task whose worker gave up: give it retries, the worker fetches it again."""
    _lead_on(instance_id)
    try:
        retries = int((request.form.get("retries") or "").strip())
    except ValueError:
        flash("Retries must be a whole number.", "error")
        return redirect(url_for("instances.show", instance_id=instance_id))
    task = external_tasks.get(runtime(), actor(), task_id)
    if task.instance_id != instance_id:
        abort(404)
    external_tasks.set_retries(runtime(), actor(), task_id, retries)
    flash(f"Retries of '{task.activity_name or task.activity_id}' set to {retries}.")
    return redirect(url_for("instances.show", instance_id=instance_id))
