"""Intake of new cases through a process's start form.

The start event's `camunda:formData` is the one rule set for what a new case needs: the public
complaint page, `POST /api/v1/complaints`, customer service registering a complaint that came by
phone, e-mail or a visit (`register_complaint`) and staff starts (`Runtime.start`, which checks every
start) all validate with it, so they accept and refuse the same data with the same field messages.
Each complaint records how it arrived in the variable `channel` (CHANNELS).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from engine import directory
from engine.errors import InvalidStateError, NotFoundError
from engine.forms import invalid, validate_submission
from engine.permissions import check_may_register_complaints
from engine.runtime import Runtime
from engine.views import Actor, InstanceView
from storage.models import ProcessDefinition

PUBLIC = Actor.system("public")
# how a complaint arrived: the public form, the public API, or registered by customer service
CHANNELS = {"web": "Web form", "api": "API", "phone": "Phone", "email": "E-mail", "visit": "Visit"}
STAFF_CHANNELS = ("phone", "email", "visit")


def start_form(runtime: Runtime, key: str, version: int | None = None) -> list[dict[str, Any]]:
    """The start form's fields of process KEY (its latest version unless `version`); [] when its
    start event has no form. NotFoundError when the process is not deployed."""
    stmt = select(ProcessDefinition.id).where(ProcessDefinition.key == key, ProcessDefinition.kind == "bpmn")
    stmt = (stmt.where(ProcessDefinition.version == version) if version is not None
            else stmt.order_by(ProcessDefinition.version.desc()).limit(1))
    with runtime.db.read() as session:
        definition_id = session.scalar(stmt)
        if definition_id is None:
            raise NotFoundError(f"process '{key}'" + (f" version {version}" if version else "") + " is not deployed")
        return runtime.definitions.start_form(session, definition_id)


def intake_form(runtime: Runtime, key: str) -> list[dict[str, Any]]:
    """The form a public intake shows and checks. A process without a start form cannot take cases
    from the public (nothing would say what they must send): InvalidStateError, like NotFoundError
    when it is not deployed."""
    fields = start_form(runtime, key)
    if not fields:
        raise InvalidStateError(f"process '{key}' has no start form to take cases with")
    return fields


def validate_intake(fields: list[dict[str, Any]], submitted: dict[str, Any]
                    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(clean values, errors naming each field). Only the form's fields may be sent: the public sets
    no other process variable (a reference, a severity, ...)."""
    return validate_submission(fields, submitted)


def file_complaint(runtime: Runtime, key: str, fields: list[dict[str, Any]], submitted: dict[str, Any],
                   channel: str, actor: Actor = PUBLIC) -> tuple[str, InstanceView]:
    """Validate a complaint against `fields` (the process's `intake_form`), then start process KEY
    with a new reference such as C-2026-000123. FormValidationError before any reference is used."""
    values, errors = validate_intake(fields, submitted)
    if errors:
        raise invalid(errors)
    reference = directory.new_complaint_reference(runtime.db)
    data = dict(values, reference=reference, channel=channel)
    return reference, runtime.start(key, data, actor, business_key=reference)


def register_complaint(runtime: Runtime, key: str, fields: list[dict[str, Any]], submitted: dict[str, Any],
                       channel: str, actor: Actor) -> tuple[str, InstanceView]:
    """Customer service files a complaint that arrived by `channel` (phone, e-mail or visit) through
    the same start form; the instance is started by `actor`. 403 for others, 422 naming the field
    for a bad channel or bad form values."""
    check_may_register_complaints(actor)
    problems = [] if channel in STAFF_CHANNELS else [
        {"field": "channel", "message": "must be one of " + ", ".join(STAFF_CHANNELS)}]
    _, errors = validate_intake(fields, submitted)
    if problems or errors:
        raise invalid(problems + errors)
    return file_complaint(runtime, key, fields, submitted, channel, actor)
