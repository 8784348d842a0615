"""The customer's satisfaction survey, reached through the signed link in the final-reply e-mail.

No account: the link's signature proves it came from our mail. The answer completes the case's open
"survey" task through the runtime (validated by that task's own form), so it is stored with the
complaint and counted in the KPIs like an answer recorded by customer service.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, render_template, request

from engine.customer_mail import SURVEY_PURPOSE
from engine.errors import ConflictError, FormValidationError, NotFoundError
from engine.signing import verify
from engine.views import Actor
from web.context import runtime

bp = Blueprint("survey", __name__)
CUSTOMER = Actor("customer", frozenset(), "admin")  # acts for the customer on this one task only
SURVEY_TASK = "survey"


def _open_survey_task(instance_id: str) -> Any:
    tasks = runtime().tasks(CUSTOMER, instance_id=instance_id)
    return next((t for t in tasks if t.spec_id == SURVEY_TASK and t.state in ("open", "claimed")), None)


def _check(instance_id: str, signature: str) -> None:
    if not verify(SURVEY_PURPOSE, instance_id, signature, current_app.config["SECRET_KEY"]):
        abort(404)


@bp.route("/survey/<instance_id>/<signature>", methods=["GET", "POST"])
def survey(instance_id: str, signature: str) -> Any:
    _check(instance_id, signature)
    try:
        reference = runtime().instance(instance_id).business_key
    except NotFoundError:
        abort(404)
    task = _open_survey_task(instance_id)
    if task is None:
        return render_template("survey.html", reference=reference, closed=True, values={}, errors={})
    values = {k: (request.form.get(k) or "").strip() for k in ("csat", "nps", "survey_comment")}
    if request.method == "GET":
        return render_template("survey.html", reference=reference, closed=False, values={}, errors={})
    errors = {k: "please choose an answer" for k in ("csat", "nps") if not values[k]}
    if not errors:
        try:
            runtime().complete(task.id, CUSTOMER, {"survey_status": "answered", **values}, history=False)
        except FormValidationError as exc:
            errors = {d["field"]: d["message"] for d in exc.details if d.get("field")}
        except ConflictError:
            return render_template("survey.html", reference=reference, closed=True, values={}, errors={})
    if errors:
        return render_template("survey.html", reference=reference, closed=False, values=values, errors=errors), 422
    return render_template("survey.html", reference=reference, closed=False, done=True, values={}, errors={})
