"""Customer service registers a complaint that arrived by phone, e-mail or a visit: the complaint
process's start form (the same fields and rules as the public form, engine/intake.py) plus how it
arrived (`channel`). Who may: engine/permissions.py (`may_register_complaints`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import login_required

from engine import intake
from engine.errors import FormValidationError, NotFoundError
from engine.permissions import is_own_work, may_register_complaints
from web.complaints import UNAVAILABLE, complaint_form
from web.context import actor, runtime

bp = Blueprint("intake", __name__)
CHANNEL_CHOICES = [(c, intake.CHANNELS[c]) for c in intake.STAFF_CHANNELS]


def staff_fields(fields: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The start form as staff read it: a field's `staff_label` property (e.g. "Customer's name"
    for the customer's "Your name") replaces its label; rules and ids stay the same."""
    return [{**f, "label": (f.get("properties") or {}).get("staff_label") or f["label"]} for f in fields]


def _page(fields: list[dict[str, Any]], values: dict[str, Any], errors: dict[str, str] | None = None,
          error: str | None = None, status: int = 200) -> Any:
    return render_template("register_complaint.html", fields=staff_fields(fields), values=values,
                           errors=errors or {}, error=error, channels=CHANNEL_CHOICES), status


@bp.route("/complaints/new", methods=["GET", "POST"])
@login_required
def register() -> Any:
    a = actor()
    if not may_register_complaints(a):
        abort(403, "Only customer service, quality leads and admins may register complaints.")
    fields = complaint_form()
    if fields is None:
        return _page([], {}, error=UNAVAILABLE, status=503)
    if request.method == "GET":
        return _page(fields, {"channel": request.args.get("channel", "phone")})
    submitted = {f["id"]: request.form[f["id"]] for f in fields if f["id"] in request.form}
    channel = request.form.get("channel", "")
    try:
        reference, instance = intake.register_complaint(runtime(), current_app.config["COMPLAINT_PROCESS"], fields,
                                                        submitted, channel, a)
    except FormValidationError as exc:
        errors = {d.get("field") or "": d.get("message", "") for d in exc.details}
        return _page(fields, {**submitted, "channel": channel}, errors, status=422)
    except NotFoundError:
        return _page(fields, {**submitted, "channel": channel}, error=UNAVAILABLE, status=503)
    flash(f"Complaint {reference} registered ({intake.CHANNELS[channel]}). The customer gets the acknowledgement "
          "e-mail with the reference.")
    own = [t for t in instance.tasks if is_own_work(a, t, t.groups)]
    if own:  # usually "Acknowledge the customer": the caller is often the one to do it
        return redirect(url_for("inbox.task", task_id=own[0].id), code=303)
    return redirect(url_for("intake.register"), code=303)
