"""Marshmallow schemas of the REST API (request validation and the OpenAPI document)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from engine.accounts import GROUP, MAX_PASSWORD, MIN_PASSWORD, USERNAME
from engine.case_notes import MAX_COMMENT_CHARS
from engine.views import ROLES
from web.errors import ApiError

INT32_MAX = 2**31 - 1  # the largest integer column (version numbers) on SQLite and PostgreSQL alike


class TokenRequest(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=80))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024), load_only=True)


class TokenResponse(Schema):
    token = fields.String(required=True)
    expires_at = fields.DateTime(required=True)


class ProcessSchema(Schema):
    key = fields.String(required=True)
    version = fields.Integer(required=True)
    name = fields.String(allow_none=True)
    kind = fields.String()
    deployed_at = fields.DateTime()


class DeployWarningSchema(Schema):
    """Something in the file that is ignored or defaulted at run time; the file deployed."""

    file = fields.String(required=True)
    line = fields.Integer(allow_none=True)
    element = fields.String(required=True)
    message = fields.String(required=True)


class DeployedSchema(Schema):
    key = fields.String(required=True)
    version = fields.Integer(required=True)
    unchanged = fields.Boolean()
    warnings = fields.List(fields.Nested(DeployWarningSchema))  # of the file this key came from


class StartRequest(Schema):
    data = fields.Dict(keys=fields.String(), load_default=dict)
    business_key = fields.String(allow_none=True, validate=validate.Length(max=255))
    version = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=INT32_MAX))


class InstanceSummary(Schema):
    id = fields.String(required=True)
    key = fields.String(required=True)
    version = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["running", "completed", "incident", "cancelled"]))
    business_key = fields.String(allow_none=True)


class FormFieldSchema(Schema):
    id = fields.String(required=True)
    label = fields.String()
    # "variables": Camunda's generic form (a form key without form fields) takes any variables
    type = fields.String(validate=validate.OneOf(["string", "long", "boolean", "date", "enum", "variables"]))
    required = fields.Boolean()
    options = fields.List(fields.Dict())
    validation = fields.Dict()
    default = fields.Raw(allow_none=True)


class FormSchema(Schema):
    fields = fields.List(fields.Nested(FormFieldSchema))


class EscalationSchema(Schema):
    level = fields.String()
    at = fields.DateTime()
    notified = fields.List(fields.String())
    due_at = fields.DateTime()


class NotificationSchema(Schema):
    id = fields.String()
    kind = fields.String()
    subject = fields.String()
    body = fields.String()
    task_id = fields.String(allow_none=True)
    instance_id = fields.String(allow_none=True)
    case = fields.Nested("CaseSchema", allow_none=True)
    created_at = fields.DateTime()
    read = fields.Boolean()


class NotificationsResponse(Schema):
    items = fields.List(fields.Nested(NotificationSchema))
    unread = fields.Integer()


class ComplaintStatusSchema(Schema):
    """What a customer sees of their complaint (engine/complaint_status.py)."""
    reference = fields.String()
    status = fields.String(metadata={"enum": ["received", "in_progress", "closed"]})
    stage = fields.String(metadata={"description": "where the case is, in words for the customer"})
    received_at = fields.DateTime()
    updated_at = fields.DateTime()


class MarkReadRequest(Schema):
    ids = fields.List(fields.String(), load_default=None, validate=validate.Length(max=1000))


class CaseSchema(Schema):
    """The case a task belongs to (engine/cases.py); parts the instance does not have are null."""
    reference = fields.String(allow_none=True)
    title = fields.String(allow_none=True)
    summary = fields.String(allow_none=True)
    customer = fields.String(allow_none=True)
    product = fields.String(allow_none=True)
    severity = fields.String(allow_none=True)


class TaskSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    instance_id = fields.String(required=True)
    process_key = fields.String(required=True)
    assignee = fields.String(allow_none=True)
    groups = fields.List(fields.String())
    candidate_users = fields.List(fields.String())
    unassigned = fields.Boolean()  # open, no assignee, no candidates: in the leads' Unassigned queue
    due_at = fields.DateTime(allow_none=True)
    state = fields.String(validate=validate.OneOf(["open", "claimed", "completed", "cancelled"]))
    priority = fields.Integer()
    form = fields.Nested(FormSchema)
    process_name = fields.String(allow_none=True)  # in task lists
    case = fields.Nested(CaseSchema, allow_none=True)  # in task lists
    context = fields.Dict(metadata={"description": "the record(s) the step's form edits, e.g. "
                                                   "{\"action\": {what, owner, due}} as planned"})


class TaskDetailSchema(TaskSchema):
    documentation = fields.String(allow_none=True)
    values = fields.Dict()
    escalations = fields.List(fields.Nested(EscalationSchema))


class InstanceSchema(InstanceSummary):
    data = fields.Dict()
    started_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)
    tasks = fields.List(fields.Nested(TaskSchema))
    incidents = fields.List(fields.Dict())
    audit = fields.List(fields.Dict())


class DueDateRequest(Schema):
    due_at = fields.String(required=True, allow_none=True,
                           metadata={"description": "ISO 8601 date-time or date, or a duration from now (P2D); null clears"})


class AssignRequest(Schema):
    assignee = fields.String(required=True, allow_none=True)


class CompleteRequest(Schema):
    data = fields.Dict(keys=fields.String(), load_default=dict)


class CompleteResponse(Schema):
    instance = fields.Nested(InstanceSchema)


class ComplaintResponse(Schema):
    reference = fields.String(required=True)
    instance_id = fields.String(required=True)


class MessageRequest(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=255))
    correlation = fields.String(allow_none=True, validate=validate.Length(max=255))
    data = fields.Dict(keys=fields.String(), load_default=dict)


class SignalRequest(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=255))
    data = fields.Dict(keys=fields.String(), load_default=dict)


class MessageResponse(Schema):
    instance_ids = fields.List(fields.String())


class DecisionEvaluateRequest(Schema):
    variables = fields.Dict(keys=fields.String(), load_default=dict)
    version = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=INT32_MAX))


class DecisionEvaluateResponse(Schema):
    result = fields.List(fields.Dict(keys=fields.String()), metadata={
        "description": "one object {output name: value} per rule the hit policy keeps; "
                       "one object holding the aggregate for COLLECT with SUM, MIN, MAX or COUNT"})


class ScheduleSchema(Schema):
    """A process's timer start. `incident`: every attempt to start an instance failed and no instance
    was started; `POST /schedules/{key}/retry` (or deploying a new version) re-arms it."""

    key = fields.String(required=True)
    version = fields.Integer(required=True)
    expression = fields.String()
    state = fields.String(required=True, validate=validate.OneOf(["scheduled", "retrying", "incident", "done"]))
    next_at = fields.DateTime(allow_none=True)
    remaining = fields.Integer()
    started = fields.Integer()
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    failed_at = fields.DateTime(allow_none=True)
    retry_at = fields.DateTime(allow_none=True)


_USERNAME = validate.Regexp(USERNAME, error="2-80 letters, digits or . _ @ -")
_GROUPS = fields.List(fields.String(validate=validate.Regexp(GROUP, error="letters, digits or . _ -")),
                      validate=validate.Length(max=50))
_PASSWORD = dict(validate=validate.Length(min=MIN_PASSWORD, max=MAX_PASSWORD), load_only=True)


class UserCreateRequest(Schema):
    username = fields.String(required=True, validate=_USERNAME)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    password = fields.String(required=True, **_PASSWORD)
    email = fields.Email(allow_none=True, validate=validate.Length(max=255))
    groups = _GROUPS


class UserUpdateRequest(Schema):
    """Only the fields sent change. `active: false` deactivates (ends sessions and tokens); a new
    `password` ends them too; `email: null` clears the address."""

    role = fields.String(validate=validate.OneOf(ROLES))
    password = fields.String(**_PASSWORD)
    email = fields.Email(allow_none=True, validate=validate.Length(max=255))
    groups = _GROUPS
    active = fields.Boolean()


class UserSchema(Schema):
    username = fields.String(required=True)
    role = fields.String(required=True)
    email = fields.String(allow_none=True)
    active = fields.Boolean(required=True)
    groups = fields.List(fields.String(), required=True, metadata={"description": "groups besides the role's own"})
    created_at = fields.DateTime()


class ApiTokenSchema(Schema):
    id = fields.String(required=True)
    label = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(allow_none=True, metadata={"description": "recorded at most every 5 minutes"})
    revoked_at = fields.DateTime(allow_none=True)
    active = fields.Boolean(required=True, metadata={"description": "not revoked (expiry aside)"})


class RevokedResponse(Schema):
    revoked = fields.Integer(required=True)


class CommentRequest(Schema):
    body = fields.String(required=True, validate=validate.Length(min=1, max=MAX_COMMENT_CHARS))


class CommentSchema(Schema):
    id = fields.String(required=True)
    author = fields.String(required=True)
    body = fields.String(required=True)
    created_at = fields.DateTime(required=True)


class AttachmentSchema(Schema):
    id = fields.String(required=True)
    filename = fields.String(required=True)
    content_type = fields.String(required=True, metadata={"description": "as sniffed from the content"})
    size = fields.Integer(required=True)
    sha256 = fields.String()
    uploaded_by = fields.String(allow_none=True, metadata={"description": "null: the customer (public form)"})
    uploaded_at = fields.DateTime(required=True)


class ErrorDetail(Schema):
    field = fields.String(allow_none=True)
    file = fields.String(allow_none=True)  # deployment problems: the file, line and element at fault
    line = fields.Integer(allow_none=True)
    element = fields.String(allow_none=True)
    message = fields.String()


class ErrorBody(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    details = fields.List(fields.Nested(ErrorDetail))


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBody, required=True)


_INSTANCES: dict[type[Schema], Schema] = {}  # one per request schema: building one costs more than a load


def load(schema: type[Schema], payload: Any) -> dict[str, Any]:
    """Validate a JSON payload against a request schema: 400 when it is not an object, 422 naming
    every bad field."""
    if not isinstance(payload, dict):
        raise ApiError(400, "the request body must be a JSON object")
    instance = _INSTANCES.get(schema)
    if instance is None:
        instance = _INSTANCES.setdefault(schema, schema())
    try:
        return instance.load(payload)
    except ValidationError as exc:
        details = []
        for name, messages in sorted(exc.normalized_messages().items()):
            text = "; ".join(str(m) for m in messages) if isinstance(messages, list) else str(messages)
            details.append({"field": name, "message": text})
        raise ApiError(422, "please correct: " + ", ".join(d["field"] for d in details), details) from exc


def task_json(task: Any, detail: bool = False, database: Any = None) -> dict[str, Any]:
    return _task_out(task, task.as_dict(), detail, database)


def _task_out(task: Any, out: dict[str, Any], detail: bool = False, database: Any = None) -> dict[str, Any]:
    """A task's JSON from its view and the view's `as_dict()`."""
    out["form"] = {"fields": out.pop("form", [])}
    out["unassigned"] = bool(getattr(task, "unassigned", False))
    if detail:
        from engine.escalation import escalations_for

        out["escalations"] = escalations_for(database, task.id) if database is not None else []
    else:
        for key in ("documentation", "values"):
            out.pop(key, None)
    return out


def instance_json(instance: Any) -> dict[str, Any]:
    out = instance.as_dict()  # its tasks are converted once, here, not again by task_json
    out["tasks"] = [_task_out(t, d) for t, d in zip(instance.tasks, out["tasks"], strict=True)]
    return out
