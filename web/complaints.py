"""The public complaint form (no account): validated, rate-limited per IP, starts the configured
complaint process with a unique reference such as C-2026-000123."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, current_app, render_template, request

from engine import directory
from engine.errors import NotFoundError
from engine.views import Actor, InstanceView
from web.context import client_ip, database, runtime

bp = Blueprint("complaints", __name__)

EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")
FIELDS = {  # id: (label, required, max length)
    "customer_name": ("Your name", True, 200),
    "customer_email": ("Your e-mail address", True, 254),
    "product": ("Product concerned", True, 200),
    "order_ref": ("Order or invoice number", False, 100),
    "description": ("What went wrong?", True, 5000),
    "desired_outcome": ("What would you like us to do?", False, 2000),
}


class ComplaintRejected(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("invalid complaint")
        self.errors = errors


def validate_complaint(raw: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(clean values, errors by field)."""
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for key, (_, required, limit) in FIELDS.items():
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            errors[key] = "must be text"
            continue
        value = (value or "").strip()
        values[key] = value
        if required and not value:
            errors[key] = "is required"
        elif len(value) > limit:
            errors[key] = f"must be at most {limit} characters"
    if values.get("customer_email") and "customer_email" not in errors and not EMAIL.match(values["customer_email"]):
        errors["customer_email"] = "is not a valid e-mail address"
    return values, errors


def file_complaint(values: dict[str, str], channel: str) -> tuple[str, InstanceView]:
    reference = directory.new_complaint_reference(database())
    data = dict(values, reference=reference, channel=channel)
    instance = runtime().start(current_app.config["COMPLAINT_PROCESS"], data, Actor.system("public"),
                               business_key=reference)
    current_app.logger.info("complaint filed reference=%s instance=%s", reference, instance.id)
    return reference, instance


@bp.route("/complain", methods=["GET", "POST"])
def complain() -> Any:
    if request.method == "GET":
        return render_template("complain.html", fields=FIELDS, values={}, errors={})
    values, errors = validate_complaint(request.form.to_dict())
    if errors:
        return render_template("complain.html", fields=FIELDS, values=values, errors=errors), 422
    if not current_app.extensions["pdcaflow.limits"]["complaint"].hit(client_ip()):
        return render_template("complain.html", fields=FIELDS, values=values, errors={},
                               error="You have sent several complaints in a short time. Please try again later."), 429
    try:
        reference, _ = file_complaint(values, "web")
    except NotFoundError:
        return render_template("complain.html", fields=FIELDS, values=values, errors={},
                               error="Complaints cannot be received right now. Please try again later."), 503
    return render_template("complain_done.html", reference=reference)
