"""The public complaint status page `/status` (reference + e-mail address, no account) and the
look-up it shares with `GET /api/v1/complaints/{reference}?email=`: one rate limit per client
address for both (the app's "status" limit, web/ratelimit.py), the answer from engine/complaint_status.py."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, request

from engine.complaint_status import complaint_status
from engine.rate_limits import RateLimitedError
from web import ratelimit
from web.context import runtime

bp = Blueprint("status", __name__)
STATUS_LABELS = {"received": "Received", "in_progress": "In progress", "closed": "Closed"}
NOT_FOUND = ("We found no complaint with this reference and e-mail address. Please check both; "
             "the reference is in our e-mail and on the page you saw after sending the complaint.")


def lookup_status(reference: str, email: str) -> dict[str, Any] | None:
    """The status, or None when reference and address do not match; RateLimitedError (429 with
    Retry-After) past the limit (every look-up counts, found or not, so guessing references is slow)."""
    ratelimit.take("status", "too many status look-ups from this address; try again later")
    return complaint_status(runtime(), current_app.config["COMPLAINT_PROCESS"], reference[:255], email[:254])


@bp.route("/status", methods=["GET", "POST"])
def status() -> Any:
    if request.method == "GET":  # links from the e-mail and the thank-you page fill in the reference
        return render_template("status.html", reference=(request.args.get("reference") or "")[:255], email="",
                               result=None, error=None, errors={})
    reference = (request.form.get("reference") or "").strip()[:255]
    email = (request.form.get("email") or "").strip()[:254]
    errors = {name: "is required" for name, value in (("reference", reference), ("email", email)) if not value}
    result, error, code, retry_after = None, None, 200, None
    if errors:
        code = 422
    else:
        try:
            result = lookup_status(reference, email)
        except RateLimitedError as exc:
            error, code = "You have looked up several complaints in a short time. Please try again later.", 429
            retry_after = exc.retry_after
        else:
            if result is None:
                error, code = NOT_FOUND, 404
    page = render_template("status.html", reference=reference, email=email, result=result, error=error,
                           errors=errors, labels=STATUS_LABELS)
    return page, code, ({"Retry-After": str(retry_after)} if retry_after else {})
