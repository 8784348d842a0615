"""The public complaint form (no account): rate-limited per client address (the app's "complaint"
limit, web/ratelimit.py, shared with `POST /api/v1/complaints`), starts the configured complaint
process with a unique reference such as C-2026-000123.

The fields and their rules are the complaint process's start form (engine.intake), the same rules
`POST /api/v1/complaints` and staff starts are held to.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for

from engine import case_notes, intake, settings
from engine.errors import FormValidationError, InvalidStateError, NotFoundError, TooLargeError
from engine.rate_limits import RateLimitedError
from engine.views import InstanceView
from web import ratelimit
from web.attachments import MAX_FILES, uploaded_attachments
from web.context import runtime

bp = Blueprint("complaints", __name__)
ATTACHMENTS_FIELD = "attachments"  # the form's file input (photos, documents), beside the start form's fields
UNAVAILABLE = "Complaints cannot be received right now. Please try again later."


def complaint_form(log: bool = True) -> list[dict[str, Any]] | None:
    """The configured complaint process's start form, or None (logged) when it cannot take complaints."""
    key = current_app.config["COMPLAINT_PROCESS"]
    try:
        return intake.intake_form(runtime(), key)
    except (NotFoundError, InvalidStateError) as exc:
        if log:
            current_app.logger.error("complaints cannot be received: %s", exc.message)
        return None


def file_complaint(fields: list[dict[str, Any]], submitted: dict[str, Any], channel: str) -> tuple[str, InstanceView]:
    """Validate and file a complaint (`submitted` already passed `intake.validate_intake`): one attempt
    under the client address's complaint limit first (RateLimitedError: 429 with Retry-After, nothing
    filed); FormValidationError names the bad fields."""
    ratelimit.take("complaint", "too many complaints from this address; try again later")
    reference, instance = intake.file_complaint(runtime(), current_app.config["COMPLAINT_PROCESS"], fields,
                                                submitted, channel)
    current_app.logger.info("complaint filed reference=%s instance=%s", reference, instance.id)
    return reference, instance


def _page(fields: list[dict[str, Any]], values: dict[str, Any], errors: dict[str, str] | None = None,
          error: str | None = None, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    return render_template("complain.html", fields=fields, values=values, errors=errors or {}, error=error,
                           accept=case_notes.accept_hint(), max_files=MAX_FILES, field=ATTACHMENTS_FIELD,
                           max_mb=max(1, settings.current().attachment_max_bytes // (1024 * 1024))), status, headers or {}


@bp.route("/complain", methods=["GET", "POST"])
def complain() -> Any:
    fields = complaint_form()
    if fields is None:
        return _page([], {}, error=UNAVAILABLE, status=503)
    if request.method == "GET":
        return _page(fields, {})
    # only the form's own inputs (the page also sends its CSRF token)
    submitted = {f["id"]: request.form[f["id"]] for f in fields if f["id"] in request.form}
    _, problems = intake.validate_intake(fields, submitted)
    try:  # photos and documents: checked before anything is filed, so a bad file files nothing
        uploads = uploaded_attachments(ATTACHMENTS_FIELD)
    except (FormValidationError, TooLargeError) as exc:
        uploads = []
        problems = [*problems, {"field": ATTACHMENTS_FIELD, "message": exc.message}]
    if problems:
        return _page(fields, submitted, {d["field"] or "": d["message"] for d in problems}, status=422)
    try:
        reference, instance = file_complaint(fields, submitted, "web")
    except RateLimitedError as exc:
        return _page(fields, submitted, error="You have sent several complaints in a short time. "
                                              "Please try again later.", status=429,
                     headers={"Retry-After": str(exc.retry_after)})
    except FormValidationError as exc:  # the process changed between showing and filing the form
        return _page(fields, submitted, {d.get("field") or "": d.get("message", "") for d in exc.details},
                     status=422)
    except NotFoundError:
        return _page(fields, submitted, error=UNAVAILABLE, status=503)
    if uploads:
        case_notes.attach(runtime(), None, instance.id, uploads)
    # Post/Redirect/Get: the confirmation is a GET page, so reloading it files nothing again. The
    # reference travels in the signed session cookie, so only this browser sees it on that page.
    session["complaint_reference"] = reference
    return redirect(url_for("complaints.complain_done"), code=303)


@bp.get("/complain/thanks")
def complain_done() -> Any:
    reference = session.get("complaint_reference")
    if not reference:  # nothing filed from this browser (or its session ended): back to the form
        return redirect(url_for("complaints.complain"))
    return render_template("complain_done.html", reference=reference)
