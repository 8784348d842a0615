"""The OpenAPI 3 document of /api/v1, built with apispec from the marshmallow schemas."""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from engine.forms import json_schema
from web import schemas as s

ERRORS = {400: "Bad request", 401: "No or invalid bearer token", 403: "Not allowed", 404: "Not found",
          409: "Conflict (claimed or completed by someone else)", 413: "Upload too large",
          415: "The body was not sent as JSON (Content-Type: application/json)",
          422: "Validation failed; details name the fields", 429: "Rate limited (Retry-After: seconds until the window ends)",
          503: "Not available right now (e.g. the complaint process is not deployed)"}


REQUEST_SCHEMAS = {"TokenRequest", "StartRequest", "CompleteRequest", "ComplaintRequest", "MessageRequest",
                   "SignalRequest", "MarkReadRequest", "DecisionEvaluateRequest", "UserCreateRequest",
                   "UserUpdateRequest"}


def _op(summary: str, ok: tuple[int, str, Any], errors: tuple[int, ...], *, body: Any = None, public: bool = False,
        params: list[dict[str, Any]] | None = None, tag: str = "") -> dict[str, Any]:
    status, description, schema = ok
    content = {"application/json": {"schema": schema}} if schema is not None else None
    responses: dict[Any, Any] = {str(status): {"description": description, **({"content": content} if content else {})}}
    for code in errors:
        responses[str(code)] = {"description": ERRORS[code],
                                "content": {"application/json": {"schema": "ErrorSchema"}}}
    op: dict[str, Any] = {"summary": summary, "responses": responses, "tags": [tag] if tag else []}
    if body is not None:
        json_body = not (isinstance(body, dict) and "multipart/form-data" in body)
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}} if json_body else body}
        if json_body and "415" not in responses:
            responses["415"] = {"description": ERRORS[415], "content": {"application/json": {"schema": "ErrorSchema"}}}
    if public:
        op["security"] = []
    if params:
        op["parameters"] = params
    return op


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, kind: str = "string", enum: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind}
    if enum:
        schema["enum"] = enum
    return {"name": name, "in": "query", "required": False, "schema": schema}


def document(complaint_fields: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The document, with the complaint body described by the complaint process's start form
    (the rules the API applies), or as an open object when no such form is available."""
    doc = copy.deepcopy(build_document())
    doc["components"]["schemas"]["ComplaintRequest"] = (
        json_schema(complaint_fields) if complaint_fields else {"type": "object"})
    return doc


@lru_cache(maxsize=1)
def build_document() -> dict[str, Any]:
    spec = APISpec(title="PDCA Flow API", version="1.0.0", openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()],
                   info={"description": "Complaint handling and BPMN workflows. Errors: "
                                        "{\"error\": {\"code\", \"message\", \"details\"}}."},
                   servers=[{"url": "/api/v1"}])
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for schema in (s.ErrorSchema, s.TokenRequest, s.TokenResponse, s.ProcessSchema, s.DeployedSchema, s.StartRequest,
                   s.TaskSchema, s.TaskDetailSchema, s.InstanceSummary, s.InstanceSchema, s.CompleteRequest,
                   s.CompleteResponse, s.ComplaintResponse, s.MessageRequest, s.SignalRequest, s.MessageResponse,
                   s.NotificationsResponse, s.MarkReadRequest, s.ComplaintStatusSchema,
                   s.DueDateRequest, s.AssignRequest, s.ScheduleSchema, s.DecisionEvaluateRequest,
                   s.DecisionEvaluateResponse, s.UserCreateRequest, s.UserUpdateRequest, s.UserSchema,
                   s.ApiTokenSchema, s.RevokedResponse, s.CommentRequest, s.CommentSchema, s.AttachmentSchema):
        spec.components.schema(schema.__name__, schema=schema)
    spec.components.schema("ComplaintRequest", {"type": "object"})  # `document` puts in the start form
    upload = {"multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
        "application/xml": {"schema": {"type": "string"}}}
    array = lambda name: {"type": "array", "items": {"$ref": f"#/components/schemas/{name}"}}  # noqa: E731
    spec.path("/auth/token", operations={"post": _op("Get a bearer token", (200, "Token", "TokenResponse"),
                                                     (400, 401, 422, 429), body="TokenRequest", public=True,
                                                     tag="auth")})
    spec.path("/processes", operations={
        "get": _op("Deployed processes (latest versions; all=1 for every version)",
                   (200, "Processes", array("ProcessSchema")), (401,), params=[_query("all", "integer")], tag="processes"),
        "post": _op("Deploy .bpmn/.dmn files (201 new version, 200 unchanged)", (201, "Deployed", array("DeployedSchema")),
                    (400, 401, 403, 413, 422), body=upload, tag="processes")})
    spec.path("/processes/{key}/instances", operations={"post": _op(
        "Start an instance", (201, "Started", "InstanceSummary"), (400, 401, 403, 404, 422), body="StartRequest",
        params=[_path("key")], tag="processes")})
    spec.path("/instances/{id}", operations={"get": _op("An instance with tasks, incidents and audit",
                                                        (200, "Instance", "InstanceSchema"), (401, 404),
                                                        params=[_path("id")], tag="instances")})
    spec.path("/instances/{id}/diagram", operations={"get": _op(
        "The instance's diagram: BPMN XML, element states (completed, active, waiting, incident) and flows taken",
        (200, "Diagram", {"type": "object", "properties": {
            "xml": {"type": "string"}, "elements": {"type": "object"},
            "flows": {"type": "array", "items": {"type": "string"}}}}), (401, 404),
        params=[_path("id")], tag="instances")})
    spec.path("/instances/{id}/comments", operations={
        "get": _op("Comments on a case, oldest first", (200, "Comments", array("CommentSchema")), (401, 404),
                   params=[_path("id")], tag="instances"),
        "post": _op("Comment on a case (anyone who may see it)", (201, "The comment", "CommentSchema"),
                    (400, 401, 404, 422), body="CommentRequest", params=[_path("id")], tag="instances")})
    files = {"multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}
    spec.path("/instances/{id}/attachments", operations={
        "get": _op("Attachments of a case (without content)", (200, "Attachments", array("AttachmentSchema")),
                   (401, 404), params=[_path("id")], tag="instances"),
        "post": _op("Attach files to a case (multipart `file`; size limit and allowed types sniffed from the "
                    "content: images, PDF, office documents, text)", (201, "Stored", array("AttachmentSchema")),
                    (401, 404, 413, 422), body=files, params=[_path("id")], tag="instances")})
    spec.path("/attachments/{id}", operations={"get": _op(
        "Download an attachment (Content-Disposition: attachment; its sniffed Content-Type)",
        (200, "The file", None), (401, 404), params=[_path("id")], tag="instances")})
    tasks_op = _op(
        "Tasks the caller may see. `q` searches the case (reference, title, summary, customer; substring, "
        "case-insensitive, from the case search index); `process` is a process key or its name; `group` a "
        "candidate group; `assignee` who holds the task; `due`: overdue, today (due by the end of today), week "
        "(within 7 days) or none (no due date); `min_priority`; `sort`: due (default), priority, created "
        "(newest first) or reference; `limit` (1-500, default 200) and `offset` page the list, and a "
        "`Link: <...>; rel=\"next\"` header gives the next page when there is one.",
        (200, "Tasks, each with its case {reference, title, summary}", array("TaskSchema")), (401, 422),
        params=[_query("state", enum=["open", "claimed", "completed", "cancelled"]), _query("mine", "integer"),
                _query("process"), _query("group"), _query("assignee"),
                _query("due", enum=["overdue", "today", "week", "none"]), _query("overdue", "integer"),
                _query("min_priority", "integer"), _query("unassigned", "integer"),
                _query("q"), _query("sort", enum=["due", "priority", "created", "reference"]),
                _query("limit", "integer"), _query("offset", "integer")], tag="tasks")
    tasks_op["responses"]["200"]["headers"] = {"Link": {
        "description": "`<URL of the next page>; rel=\"next\"` when more tasks match", "schema": {"type": "string"}}}
    spec.path("/tasks", operations={"get": tasks_op})
    spec.path("/tasks/{id}", operations={"get": _op("A task, its form and escalations",
                                                    (200, "Task", "TaskDetailSchema"), (401, 404),
                                                    params=[_path("id")], tag="tasks")})
    for verb in ("claim", "unclaim"):
        spec.path(f"/tasks/{{id}}/{verb}", operations={"post": _op(
            f"{verb.capitalize()} a task", (200, "Task", "TaskSchema"), (401, 403, 404, 409),
            params=[_path("id")], tag="tasks")})
    spec.path("/tasks/{id}/due", operations={"post": _op(
        "Set or change the due date (quality lead); restarts escalation", (200, "Task", "TaskSchema"),
        (400, 401, 403, 404, 409, 422), body="DueDateRequest", params=[_path("id")], tag="tasks")})
    spec.path("/tasks/{id}/assign", operations={"post": _op(
        "Reassign to a person, or back to its groups with null (quality lead)", (200, "Task", "TaskSchema"),
        (400, 401, 403, 404, 409, 422), body="AssignRequest", params=[_path("id")], tag="tasks")})
    spec.path("/tasks/{id}/complete", operations={"post": _op(
        "Complete a task with its form data", (200, "The instance after completion", "CompleteResponse"),
        (400, 401, 403, 404, 409, 422), body="CompleteRequest", params=[_path("id")], tag="tasks")})
    spec.path("/complaints", operations={"post": _op(
        "File a complaint (public, rate-limited); the body is the complaint process's start form",
        (201, "Filed", "ComplaintResponse"), (400, 422, 429, 503),
        body={"$ref": "#/components/schemas/ComplaintRequest"}, public=True, tag="complaints")})
    spec.path("/complaints/{reference}", operations={"get": _op(
        "The status of a complaint (public, rate-limited per client address): the reference and the customer's "
        "e-mail address must match; an unknown reference and a wrong address are the same 404",
        (200, "Status", "ComplaintStatusSchema"), (404, 422, 429),
        params=[_path("reference"), {**_query("email"), "required": True}], public=True, tag="complaints")})
    spec.path("/messages", operations={"post": _op(
        "Correlate a message", (200, "Instances that received it", "MessageResponse"), (400, 401, 403, 404, 422),
        body="MessageRequest", tag="messages")})
    spec.path("/decisions/{key}/evaluate", operations={"post": _op(
        "Evaluate a deployed decision (latest version unless `version` is given) with the variables given",
        (200, "The decision's result after its hit policy", "DecisionEvaluateResponse"), (400, 401, 404, 422),
        body="DecisionEvaluateRequest", params=[_path("key")], tag="decisions")})
    spec.path("/signals", operations={"post": _op(
        "Broadcast a signal: every waiting instance receives it, every process with a signal start event starts",
        (200, "Instances reached or started (empty when nobody listens)", "MessageResponse"), (400, 401, 403, 422),
        body="SignalRequest", tag="messages")})
    spec.path("/schedules", operations={"get": _op(
        "Timer starts of processes (quality lead); state=incident lists those whose every start attempt failed",
        (200, "Timer starts", array("ScheduleSchema")), (401, 403, 422),
        params=[_query("state", enum=["scheduled", "retrying", "incident", "done"])], tag="processes")})
    spec.path("/schedules/{key}/retry", operations={"post": _op(
        "Re-arm a timer start in incident: the scheduler tries its start again (quality lead)",
        (200, "The timer start", "ScheduleSchema"), (401, 403, 404, 409), params=[_path("key")], tag="processes")})
    spec.path("/notifications", operations={"get": _op(
        "The caller's in-app notifications", (200, "Notifications", "NotificationsResponse"), (401,),
        params=[_query("unread", "integer")], tag="notifications")})
    spec.path("/notifications/read", operations={"post": _op(
        "Mark notifications read (all, or the given ids)", (200, "How many changed", None), (400, 401, 422),
        body="MarkReadRequest", tag="notifications")})
    spec.path("/kpis", operations={"get": _op(
        "KPI figures for a period (local dates, 'to' inclusive; default the last 90 days) and filters",
        (200, "KPI figures", {"type": "object"}), (401, 403, 422),
        params=[_query("from", "string"), _query("to", "string"), _query("process"), _query("product"),
                _query("category"), _query("severity"), _query("customer"),
                _query("granularity", enum=["week", "month"])], tag="kpis")})
    spec.path("/users", operations={
        "get": _op("Every account (admin)", (200, "Users", array("UserSchema")), (401, 403), tag="users"),
        "post": _op("Create an account (admin); the role is also a group", (201, "Created", "UserSchema"),
                    (400, 401, 403, 409, 422), body="UserCreateRequest", tag="users")})
    spec.path("/users/{name}", operations={
        "get": _op("One account (admin)", (200, "User", "UserSchema"), (401, 403, 404), params=[_path("name")],
                   tag="users"),
        "patch": _op("Change an account (admin): role, groups, e-mail, active, password. Deactivating or a new "
                     "password ends the user's sessions and API tokens", (200, "User", "UserSchema"),
                     (400, 401, 403, 404, 422), body="UserUpdateRequest", params=[_path("name")], tag="users")})
    spec.path("/users/{name}/tokens", operations={
        "get": _op("A user's API tokens, newest first (admin; never the token values)",
                   (200, "Tokens", array("ApiTokenSchema")), (401, 403, 404), params=[_path("name")], tag="users"),
        "delete": _op("Revoke every API token and end every session of a user (admin)",
                      (200, "How many tokens were revoked", "RevokedResponse"), (401, 403, 404),
                      params=[_path("name")], tag="users")})
    spec.path("/tokens/{id}", operations={"delete": _op(
        "Revoke one API token (admin); revoking it again is fine", (204, "Revoked", None), (401, 403, 404),
        params=[_path("id")], tag="users")})
    spec.path("/openapi.json", operations={"get": {"summary": "This document", "security": [],
                                                   "responses": {"200": {"description": "OpenAPI 3 document"}}}})
    doc = spec.to_dict()
    doc["security"] = [{"bearer": []}]
    # the probes for load balancers: at the site root (/healthz, /readyz) and here under /api/v1
    probe = {"type": "object", "properties": {"status": {"type": "string"}, "detail": {"type": "string"}}}
    doc["paths"]["/healthz"] = {"get": {
        "summary": "Liveness: the process answers (does not touch the database)", "security": [], "tags": ["health"],
        "responses": {"200": {"description": "Up", "content": {"application/json": {"schema": probe}}}}}}
    doc["paths"]["/readyz"] = {"get": {
        "summary": "Readiness: the database is reachable and at the newest migration", "security": [],
        "tags": ["health"], "responses": {
            "200": {"description": "Ready", "content": {"application/json": {"schema": probe}}},
            "503": {"description": "Database unreachable or not migrated (Retry-After is set)",
                    "content": {"application/json": {"schema": probe}}}}}}
    # Request bodies refuse unknown fields (422), but responses may grow new fields (the API
    # contract is extended by adding, see ARCHITECTURE.md), so response objects are open.
    for name, schema in doc["components"]["schemas"].items():
        if name not in REQUEST_SCHEMAS and schema.get("additionalProperties") is False:
            del schema["additionalProperties"]
    return doc


# ---------------------------------------------------------------------- /engine-rest (Camunda 7 subset)
ENGINE_REST_ERRORS = {400: "InvalidRequestException (bad input), or RestException (the worker does not hold the "
                           "lock; a message nothing waits for)",
                      401: "No or wrong HTTP Basic credentials", 403: "AuthorizationException: role not allowed",
                      404: "No such resource (e.g. an external task already completed or cancelled)",
                      409: "Someone else holds or completed the task"}


def _camunda_op(summary: str, ok: tuple[int, str, Any], errors: tuple[int, ...], *, body: Any = None,
                params: list[dict[str, Any]] | None = None, tag: str = "") -> dict[str, Any]:
    status, description, schema = ok
    responses: dict[str, Any] = {str(status): {"description": description}}
    if schema is not None:
        responses[str(status)]["content"] = {"application/json": {"schema": schema}}
    for code in errors:
        responses[str(code)] = {"description": ENGINE_REST_ERRORS[code],
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CamundaError"}}}}
    op: dict[str, Any] = {"summary": summary, "responses": responses, "tags": [tag] if tag else []}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    return op


@lru_cache(maxsize=1)
def build_engine_rest_document() -> dict[str, Any]:
    """The OpenAPI 3 document of /engine-rest (served at /engine-rest/openapi.json)."""
    from web import engine_rest_schemas as c

    spec = APISpec(title="PDCA Flow — Camunda 7 REST subset", version="7.22.0", openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()], servers=[{"url": "/engine-rest"}],
                   info={"description": "Camunda 7's REST shapes for workers and clients written for Camunda 7: "
                                        "HTTP Basic auth with PDCA Flow users, typed variables "
                                        "{name: {value, type}}, errors {type, message}, timestamps like "
                                        "2026-12-02T10:00:00.000+0000; unknown request fields are ignored."})
    spec.components.security_scheme("basic", {"type": "http", "scheme": "basic"})
    spec.components.schema("CamundaError", {"type": "object", "properties": {
        "type": {"type": "string"}, "message": {"type": "string"}}, "required": ["type", "message"]})
    spec.components.schema("TypedValue", {"type": "object", "properties": {
        "value": {}, "type": {"type": "string", "enum": ["String", "Integer", "Long", "Short", "Double", "Boolean",
                                                         "Date", "Json", "Xml", "Null"]},
        "valueInfo": {"type": "object"}}})
    spec.components.schema("Variables", {"type": "object",
                                         "additionalProperties": {"$ref": "#/components/schemas/TypedValue"}})
    spec.components.schema("ExternalTask", {"type": "object", "properties": {
        name: {"type": "string", "nullable": True} for name in (
            "id", "topicName", "workerId", "lockExpirationTime", "errorMessage", "activityId", "activityInstanceId",
            "executionId", "processInstanceId", "processDefinitionId", "processDefinitionKey", "businessKey",
            "createTime", "errorDetails")} | {"retries": {"type": "integer", "nullable": True},
                                              "priority": {"type": "integer"}, "suspended": {"type": "boolean"},
                                              "extensionProperties": {"type": "object"},
                                              "variables": {"$ref": "#/components/schemas/Variables"}}})
    spec.components.schema("ProcessInstance", {"type": "object", "properties": {
        "id": {"type": "string"}, "definitionId": {"type": "string"}, "businessKey": {"type": "string", "nullable": True},
        "ended": {"type": "boolean"}, "suspended": {"type": "boolean"}, "links": {"type": "array", "items": {}}}})
    spec.components.schema("ProcessDefinition", {"type": "object", "properties": {
        "id": {"type": "string"}, "key": {"type": "string"}, "name": {"type": "string", "nullable": True},
        "version": {"type": "integer"}, "resource": {"type": "string"}, "suspended": {"type": "boolean"},
        "versionTag": {"type": "string", "nullable": True}, "tenantId": {"type": "string", "nullable": True}}})
    spec.components.schema("MessageCorrelationResult", {"type": "object", "properties": {
        "resultType": {"type": "string", "enum": ["Execution", "ProcessDefinition"]},
        "execution": {"type": "object", "nullable": True},
        "processInstance": {"allOf": [{"$ref": "#/components/schemas/ProcessInstance"}], "nullable": True},
        "variables": {"$ref": "#/components/schemas/Variables"}}})
    spec.components.schema("Task", {"type": "object", "properties": {
        name: {"type": "string", "nullable": True} for name in (
            "id", "name", "assignee", "created", "due", "followUp", "processInstanceId", "taskDefinitionKey",
            "description")} | {"priority": {"type": "integer"}}})
    for schema in (c.FetchAndLockRequest, c.CompleteRequest, c.FailureRequest, c.BpmnErrorRequest, c.ExtendLockRequest,
                   c.LockRequest, c.RetriesRequest, c.StartRequest, c.MessageRequest, c.SignalRequest, c.EvaluateRequest,
                   c.ClaimRequest, c.TaskCompleteRequest, c.ModifyVariablesRequest, c.VariableRequest,
                   c.TaskQueryRequest, c.InstanceQueryRequest):
        spec.components.schema("Camunda" + schema.__name__, schema=schema)
    ref = lambda name: {"$ref": f"#/components/schemas/{name}"}  # noqa: E731
    array = lambda name: {"type": "array", "items": ref(name)}  # noqa: E731
    none = (204, "No content", None)
    xt = "external tasks"
    spec.path("/engine", operations={"get": _camunda_op("Engines (one: default)", (200, "Engines", {"type": "array"}),
                                                        (401,))})
    spec.path("/version", operations={"get": _camunda_op("REST API version", (200, "Version", {"type": "object"}),
                                                         (401,))})
    spec.path("/external-task/fetchAndLock", operations={"post": _camunda_op(
        "Fetch and lock external tasks by topic; asyncResponseTimeout (ms) long-polls until one appears. Topic "
        "filters: businessKey, processDefinitionKey(In), processDefinitionId(In), processVariables; tenantIdIn and "
        "processDefinitionVersionTag match no task (no tenants or version tags here); extensionProperties only "
        "with includeExtensionProperties; sorting by createTime asc/desc",
        (200, "Locked tasks with their variables", array("ExternalTask")), (400, 401, 403),
        body=ref("CamundaFetchAndLockRequest"), tag=xt)})
    filters = [_query(n) for n in ("externalTaskId", "externalTaskIdIn", "executionId", "processInstanceId",
                                   "processInstanceIdIn", "topicName", "workerId", "activityId", "activityIdIn",
                                   "processDefinitionKey", "processDefinitionId", "tenantIdIn", "sortBy",
                                   "sortOrder")]
    filters += [_query(n, "boolean") for n in ("locked", "notLocked", "withRetriesLeft", "noRetriesLeft")]
    filters += [_query(n, "integer") for n in ("priorityHigherThanOrEquals", "priorityLowerThanOrEquals",
                                               "firstResult", "maxResults")]
    spec.path("/external-task", operations={"get": _camunda_op(
        "External tasks waiting for a worker (lists comma-separated; tenantIdIn matches none: no tenants here; "
        "sortBy id, lockExpirationTime, processInstanceId, processDefinitionId, processDefinitionKey, taskPriority, "
        "createTime or tenantId, with sortOrder asc or desc; maxResults at most 1000, its default; firstResult pages "
        "on)", (200, "Tasks", array("ExternalTask")), (400, 401, 403),
        params=filters,
        tag=xt)})
    spec.path("/external-task/count", operations={"get": _camunda_op(
        "How many external tasks match", (200, "Count", {"type": "object"}), (400, 401, 403), params=filters,
        tag=xt)})
    spec.path("/external-task/{id}", operations={"get": _camunda_op(
        "One external task", (200, "Task", ref("ExternalTask")), (401, 403, 404), params=[_path("id")], tag=xt)})
    spec.path("/external-task/{id}/errorDetails", operations={"get": _camunda_op(
        "The error details of the last failure (text/plain)", (200, "Details", None), (401, 403, 404),
        params=[_path("id")], tag=xt)})
    for verb, summary, body in (
            ("complete", "Complete: the variables become process variables", "CamundaCompleteRequest"),
            ("failure", "Report a failure: retries left (0 raises an incident), offered again after retryTimeout",
             "CamundaFailureRequest"),
            ("bpmnError", "Throw a BPMN error: the matching error boundary event takes over",
             "CamundaBpmnErrorRequest"),
            ("extendLock", "Extend the lock the worker holds", "CamundaExtendLockRequest"),
            ("lock", "Lock this task to the worker (400 while another worker holds an unexpired lock)",
             "CamundaLockRequest"),
            ("unlock", "Release the lock", None)):
        spec.path(f"/external-task/{{id}}/{verb}", operations={"post": _camunda_op(
            summary, none, (400, 401, 403, 404), body=ref(body) if body else None, params=[_path("id")], tag=xt)})
    spec.path("/external-task/{id}/retries", operations={"put": _camunda_op(
        "Set the retries (above 0 resolves the task's incident)", none, (400, 401, 403, 404),
        body=ref("CamundaRetriesRequest"), params=[_path("id")], tag=xt)})
    spec.path("/process-definition/key/{key}/start", operations={"post": _camunda_op(
        "Start an instance of the latest version (with its variables when withVariablesInReturn)",
        (200, "The instance", ref("ProcessInstance")),
        (400, 401, 403, 404), body=ref("CamundaStartRequest"), params=[_path("key")], tag="process instances")})
    spec.path("/process-definition/{id}/start", operations={"post": _camunda_op(
        "Start an instance of the given version (the id a listing answers, key:version)",
        (200, "The instance", ref("ProcessInstance")), (400, 401, 403, 404), body=ref("CamundaStartRequest"),
        params=[_path("id")], tag="process instances")})
    spec.path("/process-definition", operations={"get": _camunda_op(
        "Deployed processes, filtered, sorted (sortBy with sortOrder), then paged; versionTag(Like) and tenantIdIn "
        "match none (no version tags or tenants here)", (200, "Definitions", array("ProcessDefinition")), (400, 401),
        params=[_query(n) for n in ("key", "keyLike", "keysIn", "name", "nameLike", "version", "processDefinitionId",
                                    "processDefinitionIdIn", "versionTag", "versionTagLike", "tenantIdIn", "sortBy",
                                    "sortOrder")]
        + [_query("latestVersion", "boolean"), _query("firstResult", "integer"), _query("maxResults", "integer")],
        tag="process instances")})
    deploy = _camunda_op(
        "Deploy BPMN and DMN files, as Camunda Modeler's \"Deploy to Camunda 7\" sends them (quality leads and admins): "
        "multipart, each file in a field of its own (any name), with deployment-name and deployment-source; one "
        "transaction: a problem in any file deploys none (400 ParseException, `details` per file with line and "
        "element). Unchanged files are not deployed again; the answer lists every definition the files define, "
        "its current version. Each definition version is its own deployment (id key:version); tenant-id is refused",
        (200, "The deployment", {"type": "object"}), (400, 401, 403), tag="deployments")
    deploy["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "additionalProperties": {"type": "string", "format": "binary"},
        "properties": {n: {"type": "string"} for n in ("deployment-name", "deployment-source", "tenant-id",
                                                        "deploy-changed-only", "enable-duplicate-filtering")}}}}}
    spec.path("/deployment/create", operations={"post": deploy})
    spec.path("/deployment", operations={"get": _camunda_op(
        "Deployments (each deployed definition version is one; quality leads, admins, workers), newest first, "
        "filtered by id, name (the file's) or nameLike, paged; tenantIdIn matches none; Camunda Modeler checks its "
        "connection with maxResults=0", (200, "Deployments", {"type": "array", "items": {"type": "object"}}),
        (400, 401, 403), params=[_query(n) for n in ("id", "name", "nameLike", "tenantIdIn")]
        + [_query("firstResult", "integer"), _query("maxResults", "integer")],
        tag="deployments")})
    spec.path("/deployment/{id}", operations={"get": _camunda_op(
        "One deployment (a definition version: key:version)", (200, "Deployment", {"type": "object"}),
        (401, 403, 404), params=[_path("id")], tag="deployments")})
    xml = (200, "{id, bpmn20Xml}: the BPMN XML as deployed", {"type": "object"})
    spec.path("/process-definition/key/{key}/xml", operations={"get": _camunda_op(
        "The latest version's BPMN XML (quality leads, admins, workers)", xml, (401, 403, 404), params=[_path("key")],
        tag="process instances")})
    spec.path("/process-definition/{id}/xml", operations={"get": _camunda_op(
        "A version's BPMN XML (the id a listing answers, key:version); an unknown id is 400, as in Camunda", xml,
        (400, 401, 403), params=[_path("id")],
        tag="process instances")})
    spec.path("/process-definition/key/{key}", operations={"get": _camunda_op(
        "The latest version of a process", (200, "Definition", ref("ProcessDefinition")), (401, 404),
        params=[_path("key")], tag="process instances")})
    instance_filters = [_query(n) for n in ("processDefinitionKey", "processDefinitionKeyIn", "processDefinitionId",
                                            "businessKey", "businessKeyLike", "processInstanceIds", "tenantIdIn",
                                            "variables")] + [_query("suspended", "boolean")]
    paging = [_query("firstResult", "integer"), _query("maxResults", "integer")]
    sorted_pages = [_query("sortBy"), _query("sortOrder"), *paging]
    instances_get = _camunda_op(
        "Running instances the caller may see; `variables` filters by name_operator_value (eq, neq, gt, gteq, lt, "
        "lteq, like), several comma-separated; lists comma-separated; suspended=true and tenantIdIn match none "
        "(nothing is suspended, no tenants here). Sorted by sortBy (instanceId, definitionKey, definitionId, "
        "businessKey, tenantId) with sortOrder asc or desc, else newest first; maxResults at most 500 (default 100), "
        "firstResult pages on", (200, "Instances", array("ProcessInstance")), (400, 401),
        params=instance_filters + sorted_pages, tag="process instances")
    spec.path("/process-instance", operations={"get": instances_get, "post": _camunda_op(
        "The same list for a JSON query (ProcessInstanceQueryDto: lists as arrays, variables as [{name, operator, "
        "value}], sorting as [{sortBy, sortOrder}]); paging in the query string",
        (200, "Instances", array("ProcessInstance")), (400, 401), body=ref("CamundaInstanceQueryRequest"),
        params=paging, tag="process instances")})
    count = (200, "Count", {"type": "object"})
    spec.path("/process-instance/count", operations={"get": _camunda_op(
        "How many running instances the caller may see match", count, (400, 401), params=instance_filters,
        tag="process instances"), "post": _camunda_op(
        "How many running instances the caller may see match a JSON query", count, (400, 401),
        body=ref("CamundaInstanceQueryRequest"), tag="process instances")})
    spec.path("/process-instance/{id}", operations={"get": _camunda_op(
        "A running instance (an ended one is 404, as Camunda's runtime service answers)",
        (200, "Instance", ref("ProcessInstance")), (401, 404), params=[_path("id")], tag="process instances"),
        "delete": _camunda_op(
        "Cancel a running instance (quality leads and admins; it keeps its history); with failIfNotExists=false an "
        "unknown or ended instance is 204 too", none, (401, 403, 404),
        params=[_path("id"), _query("failIfNotExists", "boolean")], tag="process instances")})
    spec.path("/process-instance/{id}/variables", operations={"get": _camunda_op(
        "Its variables, typed", (200, "Variables", ref("Variables")), (401, 404), params=[_path("id")],
        tag="process instances"), "post": _camunda_op(
        "Set (`modifications`, typed) and remove (`deletions`) process variables of a running instance; "
        "the process does not move on (quality leads, admins, workers)", none, (400, 401, 403, 404),
        body=ref("CamundaModifyVariablesRequest"), params=[_path("id")], tag="process instances")})
    spec.path("/process-instance/{id}/variables/{name}", operations={"get": _camunda_op(
        "One variable, typed", (200, "Variable", ref("TypedValue")), (401, 404), params=[_path("id"), _path("name")],
        tag="process instances"), "put": _camunda_op(
        "Set one process variable (a typed value)", none, (400, 401, 403, 404), body=ref("CamundaVariableRequest"),
        params=[_path("id"), _path("name")], tag="process instances"), "delete": _camunda_op(
        "Remove one process variable", none, (401, 403, 404), params=[_path("id"), _path("name")],
        tag="process instances")})
    spec.path("/process-instance/{id}/variables/{name}/data", operations={"get": _camunda_op(
        "A binary variable's content: PDCA Flow has no Bytes or File variables, so 400 for every variable",
        (200, "Never", None), (400, 401, 404), params=[_path("id"), _path("name")], tag="process instances")})
    spec.path("/message", operations={"post": _camunda_op(
        "Correlate a message (businessKey, processInstanceId, correlationKeys; all) to the waiting executions; "
        "when none matches and no processInstanceId is given, start each process with a message start event of "
        "that name. 204, or 200 with a list when resultEnabled (resultType Execution or ProcessDefinition); "
        "400 when nothing matches and nothing starts", (200, "Correlation results", array("MessageCorrelationResult")),
        (400, 401, 403), body=ref("CamundaMessageRequest"), tag="messages")})
    spec.path("/signal", operations={"post": _camunda_op(
        "Broadcast a signal to every waiting instance and every process with a signal start event of that name "
        "(nobody listening is not an error)", none, (400, 401, 403), body=ref("CamundaSignalRequest"),
        tag="messages")})
    spec.path("/decision-definition/key/{key}/evaluate", operations={"post": _camunda_op(
        "Evaluate the latest version of a decision with typed variables: one typed map of outputs per rule the "
        "hit policy keeps (400 when the decision cannot decide, e.g. a UNIQUE violation)",
        (200, "Results", {"type": "array", "items": ref("Variables")}), (400, 401, 404),
        body=ref("CamundaEvaluateRequest"), params=[_path("key")], tag="decisions")})
    task_filters = ([_query(n) for n in ("processInstanceId", "processDefinitionKey", "processInstanceBusinessKey",
                                         "taskId", "name", "nameLike", "assignee", "assigneeIn", "candidateUser",
                                         "candidateGroup", "candidateGroups", "taskDefinitionKey",
                                         "taskDefinitionKeyIn")]
                    + [_query(n, "boolean") for n in ("assigned", "unassigned", "includeAssignedTasks")])
    tasks_get = _camunda_op(
        "Open and claimed user tasks the caller may see, filtered, sorted, then paged; candidate filters leave out "
        "assigned tasks unless includeAssignedTasks; lists are comma-separated. Sorted by sortBy (instanceId, "
        "dueDate, executionId, assignee, created, followUpDate, description, id, name, nameCaseInsensitive, "
        "priority; caseInstanceId, caseExecutionId and lastUpdated keep the default) with sortOrder asc or desc, "
        "else as the inbox (due first, undated last, then priority and age); maxResults at most 1000 (default 200), "
        "firstResult pages on", (200, "Tasks", array("Task")), (400, 401),
        params=task_filters + sorted_pages, tag="tasks")
    spec.path("/task", operations={"get": tasks_get, "post": _camunda_op(
        "The same list for a JSON query (TaskQueryDto: lists as arrays, sorting as [{sortBy, sortOrder}]); "
        "paging in the query string", (200, "Tasks", array("Task")), (400, 401), body=ref("CamundaTaskQueryRequest"),
        params=paging, tag="tasks")})
    spec.path("/task/count", operations={"get": _camunda_op(
        "How many open and claimed user tasks the caller may see match", count, (400, 401), params=task_filters,
        tag="tasks"), "post": _camunda_op(
        "How many open and claimed user tasks the caller may see match a JSON query", count, (400, 401),
        body=ref("CamundaTaskQueryRequest"), tag="tasks")})
    spec.path("/task/{id}", operations={"get": _camunda_op(
        "A user task still to be done (a completed one is 404, as Camunda answers)", (200, "Task", ref("Task")),
        (401, 404), params=[_path("id")], tag="tasks")})
    spec.path("/task/{id}/claim", operations={"post": _camunda_op(
        "Claim (for someone else: a lead's assignment)", none, (400, 401, 403, 404, 409),
        body=ref("CamundaClaimRequest"), params=[_path("id")], tag="tasks")})
    spec.path("/task/{id}/unclaim", operations={"post": _camunda_op(
        "Give back to its groups", none, (400, 401, 403, 404, 409), params=[_path("id")], tag="tasks")})
    for verb in ("complete", "submit-form"):
        spec.path(f"/task/{{id}}/{verb}", operations={"post": _camunda_op(
            "Complete with typed variables (validated by the task's form; complete and submit-form are the same "
            "here); 200 with the instance's variables when withVariablesInReturn", none, (400, 401, 403, 404, 409),
            body=ref("CamundaTaskCompleteRequest"), params=[_path("id")], tag="tasks")})
    spec.path("/task/{id}/assignee", operations={"post": _camunda_op(
        "Assign to userId (null: back to its groups); quality leads and admins", none, (400, 401, 403, 404, 409),
        body=ref("CamundaClaimRequest"), params=[_path("id")], tag="tasks")})
    spec.path("/task/{id}/variables", operations={"get": _camunda_op(
        "The variables the task sees (its instance's), typed", (200, "Variables", ref("Variables")), (401, 404),
        params=[_path("id")], tag="tasks")})
    spec.path("/task/{id}/variables/{name}", operations={"get": _camunda_op(
        "One variable the task sees, typed", (200, "Variable", ref("TypedValue")), (401, 404),
        params=[_path("id"), _path("name")], tag="tasks")})
    spec.path("/task/{id}/form-variables", operations={"get": _camunda_op(
        "What the task's form starts from: the variables it sees, and each form field typed as the field is, with "
        "its variable's value or its default; variableNames (comma-separated) keeps only those",
        (200, "Variables", ref("Variables")), (401, 404), params=[_path("id"), _query("variableNames")],
        tag="tasks")})
    spec.path("/openapi.json", operations={"get": {"summary": "This document", "security": [],
                                                   "responses": {"200": {"description": "OpenAPI 3 document"}}}})
    doc = spec.to_dict()
    doc["security"] = [{"basic": []}]
    return doc
