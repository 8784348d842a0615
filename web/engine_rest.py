"""A Camunda 7 REST subset under `/engine-rest` (DESIGN §8), so workers and clients written for
Camunda 7 (e.g. PyPI's camunda-external-task-client-python3) run against PDCA Flow unchanged.

HTTP Basic auth with PDCA Flow users; Camunda's shapes: typed variables, errors as
`{"type", "message"}`, timestamps like `2026-12-02T10:00:00.000+0000`, 204 for the external-task
outcomes. Every rule lives in the engine (engine/external_tasks.py, engine/permissions.py, the
Runtime); this module only translates.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from engine import external_tasks as xt
from engine.accounts import user_info
from engine.credentials import Credential, RateLimitedError, verified_actor
from engine.definitions import DefinitionStore
from engine.errors import DecisionFailedError, EngineError, NotFoundError, PermissionDeniedError
from engine.health import as_unavailable
from engine.permissions import (
    check_may_see_instance,
    check_may_start_and_correlate,
    may_see_instance,
    may_work_external_tasks,
)
from engine.views import Actor, InstanceView, TaskView
from web import engine_rest_schemas as s
from web.context import database, runtime, sign_in
from web.errors import ApiError
from web.openapi import build_engine_rest_document

bp = Blueprint("engine_rest", __name__, url_prefix="/engine-rest")

ENGINE_VERSION = "7.22.0"  # the Camunda REST API level this subset follows
CREDENTIALS_TTL = 60.0  # seconds a verified user/password pair is trusted without hashing it again


# ---------------------------------------------------------------------- auth
class _CredentialCache:
    """Password hashing (scrypt) costs tens of milliseconds; a worker sends its password with every
    request. A verified pair is trusted for CREDENTIALS_TTL seconds (keyed by a keyed hash, never the
    password itself); every request still reads the user's token generation, role and groups (one
    statement, `verified_actor`), so a deactivation, a password change, `pdcaflow revoke-tokens` or a
    new role takes effect at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[bytes, tuple[float, Credential]] = {}

    def key(self, username: str, password: str) -> bytes:
        secret = str(current_app.config.get("SECRET_KEY") or "").encode()
        return hmac.new(secret, f"{username}\0{password}".encode(), hashlib.sha256).digest()

    def get(self, key: bytes) -> Credential | None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: bytes, credential: Credential) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + CREDENTIALS_TTL, credential)


def _credentials() -> _CredentialCache:
    # one cache per app (and so per database and secret key)
    return current_app.extensions.setdefault("pdcaflow.engine_rest_credentials", _CredentialCache())


class CamundaError(Exception):
    def __init__(self, status: int, type_: str, message: str) -> None:
        super().__init__(message)
        self.status, self.type, self.message = status, type_, message


@bp.before_request
def _basic_auth() -> None:
    if request.endpoint == "engine_rest.openapi":
        return
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise CamundaError(401, "AuthenticationException", "HTTP Basic authentication with a PDCA Flow user is required")
    try:
        username, _, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise CamundaError(401, "AuthenticationException", "malformed Basic credentials") from exc
    cache = _credentials()
    key = cache.key(username, password)
    credential = cache.get(key)
    # a cached pair: one statement says whether it still holds (else: password changed, deactivated
    # or revoked since it was verified, so check it again) and who the user is now (role, groups)
    actor = verified_actor(database(), username, credential.token_generation) if credential is not None else None
    if actor is None:
        try:
            credential = sign_in(username, password)
        except RateLimitedError as exc:
            raise CamundaError(429, "AuthenticationException", "too many failed attempts; try again later") from exc
        if credential is None:
            raise CamundaError(401, "AuthenticationException", "unknown user name or wrong password")
        cache.put(key, credential)
        actor = credential.actor
    g.api_actor = actor


def _actor() -> Actor:
    return g.api_actor


# ---------------------------------------------------------------------- errors (Camunda's shape)
def _error(status: int, type_: str, message: str) -> Response:
    response = jsonify(type=type_, message=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="pdcaflow"'
    return response


@bp.errorhandler(CamundaError)
def _camunda_error(exc: CamundaError) -> Response:
    return _error(exc.status, exc.type, exc.message)


@bp.errorhandler(s.BadRequest)
def _bad_request(exc: s.BadRequest) -> Response:
    return _error(400, "InvalidRequestException", str(exc))


@bp.errorhandler(EngineError)
def _engine_error(exc: EngineError) -> Response:
    if isinstance(exc, xt.LockMismatchError):  # Camunda wraps it in a RestException with status 400
        return _error(400, "RestException", exc.message)
    if isinstance(exc, PermissionDeniedError):
        return _error(403, "AuthorizationException", exc.message)
    if isinstance(exc, NotFoundError):
        return _error(404, "RestException", exc.message)
    if exc.http_status in (400, 422):
        return _error(400, "InvalidRequestException", exc.message)
    response = _error(exc.http_status, "RestException", exc.message)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after:  # the database is unavailable for now (503)
        response.headers["Retry-After"] = str(retry_after)
    return response


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Response:  # e.g. a body nested too deeply (web/json_body.py)
    return _error(exc.status, "InvalidRequestException" if exc.status == 400 else "RestException", exc.message)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    return _error(exc.code or 500, "RestException", exc.description or exc.name)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    unavailable = as_unavailable(exc)
    if unavailable is not None:  # transient, not a bug: one log line, no traceback
        current_app.logger.warning("%s %s: %s", request.method, request.path, unavailable.message)
        return _engine_error(unavailable)
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    return _error(500, "ProcessEngineException", "Something went wrong on our side.")


_SCHEMAS: dict[type, Any] = {}  # one instance per request schema: building one costs more than loading


def _body(schema: type) -> dict[str, Any]:
    instance = _SCHEMAS.get(schema)
    if instance is None:
        instance = _SCHEMAS.setdefault(schema, schema())
    raw = request.get_data(cache=True)
    payload = request.get_json(silent=True) if raw else {}
    if raw and payload is None:
        raise s.BadRequest("the request body is not valid JSON")
    return s.load(instance, payload)


def _no_content() -> Response:
    return Response(status=204)


# ---------------------------------------------------------------------- engine, version, the document
@bp.get("/openapi.json")
def openapi() -> Any:
    return jsonify(build_engine_rest_document())



@bp.get("/engine")
def engines() -> Any:
    return jsonify([{"name": "default"}])


@bp.get("/version")
def version() -> Any:
    return jsonify(version=ENGINE_VERSION)


# ---------------------------------------------------------------------- external tasks
def _definition_id(key: str, version: int) -> str:
    return f"{key}:{version}"  # opaque to clients (Camunda's is key:version:uuid)


def _definition_of(definition_id: str) -> tuple[str, int] | None:
    """(key, version) of a `_definition_id`; None for an id this server never gave out."""
    key, _, version = definition_id.rpartition(":")
    return (key, int(version)) if key and version.isdigit() else None


def _external_task_json(task: xt.ExternalTaskView, with_variables: bool = False) -> dict[str, Any]:
    out = {
        "id": task.id, "topicName": task.topic, "workerId": task.worker_id,
        "lockExpirationTime": s.timestamp(task.lock_expires_at), "retries": task.retries,
        "errorMessage": task.error_message, "activityId": task.activity_id,
        "activityInstanceId": f"{task.activity_id}:{task.id}", "executionId": task.id,
        "processInstanceId": task.instance_id, "processDefinitionId": _definition_id(task.process_key, task.process_version),
        "processDefinitionKey": task.process_key, "processDefinitionVersionTag": None,
        "businessKey": task.business_key, "priority": task.priority, "suspended": False, "tenantId": None,
        "createTime": s.timestamp(task.created_at), "extensionProperties": task.properties,
    }
    if with_variables:  # a locked task (LockedExternalTaskDto) also carries the last failure's details
        out["errorDetails"] = task.error_details
        out["variables"] = s.typed(task.variables)
    return out


def _topic(t: dict[str, Any]) -> xt.TopicRequest:
    definitions: set[tuple[str, int]] | None = None  # processDefinitionId and processDefinitionIdIn both hold
    one = t.get("processDefinitionId")
    for given in ([one] if one is not None else None, t.get("processDefinitionIdIn")):
        if given is not None:
            wanted = {d for d in map(_definition_of, given) if d is not None}
            definitions = wanted if definitions is None else definitions & wanted
    return xt.TopicRequest(t["topicName"], t["lockDuration"], t.get("variables"), t.get("businessKey"),
                           t.get("processDefinitionKey"), t.get("processInstanceId"),
                           _filter_values(t.get("processVariables")),
                           process_keys=t.get("processDefinitionKeyIn"),
                           definitions=None if definitions is None else sorted(definitions),
                           tenant_ids=t.get("tenantIdIn"), version_tag=t.get("processDefinitionVersionTag"),
                           extension_properties=bool(t.get("includeExtensionProperties")))


@bp.post("/external-task/fetchAndLock")
def fetch_and_lock() -> Any:
    data = _body(s.FetchAndLockRequest)
    topics = [_topic(t) for t in data.get("topics") or []]
    max_tasks = data["maxTasks"] if data.get("maxTasks") is not None else 1
    # sorting: createTime is the one field Camunda sorts fetches by; the last entry wins
    newest_first = any(o.get("sortOrder") == "desc" for o in (data.get("sorting") or [])[-1:])
    locked = xt.fetch_and_lock(runtime(), _actor(), data["workerId"], topics, max_tasks=max_tasks,
                               use_priority=bool(data.get("usePriority")),
                               wait_ms=data.get("asyncResponseTimeout") or 0, newest_first=newest_first)
    return jsonify([_external_task_json(t, with_variables=True) for t in locked])


def _filter_values(values: dict[str, Any] | None) -> dict[str, Any] | None:
    """A topic's processVariables filter: plain values, or typed ones."""
    if not values:
        return None
    return {k: s.from_typed({k: v}, "processVariables")[k] if isinstance(v, dict) and "value" in v else v
            for k, v in values.items()}


def _flag(name: str) -> bool | None:
    value = request.args.get(name)
    return None if value is None else value.lower() in ("1", "true", "yes")


def _int_arg(name: str, default: int) -> int:
    value = request.args.get(name)
    if value in (None, ""):
        return default
    try:
        return min(max(0, int(value)), 10**9)
    except ValueError as exc:
        raise s.BadRequest(f"{name}: '{value}' is not a whole number") from exc


def _listed(name: str) -> list[str] | None:
    """A comma-separated list parameter (None when absent)."""
    value = request.args.get(name)
    return None if value is None else [v for v in value.split(",") if v]


def _sorting(fields: tuple[str, ...]) -> tuple[str, bool] | None:
    """(sortBy, descending) of a GET query: both parameters or neither, as Camunda requires."""
    sort_by, sort_order = request.args.get("sortBy"), request.args.get("sortOrder")
    if (sort_by is None) != (sort_order is None):
        raise s.BadRequest("Only a single sorting parameter specified. sortBy and sortOrder required")
    if sort_by is None:
        return None
    if sort_by not in fields:
        raise s.BadRequest(f"Cannot set query parameter 'sortBy' to value '{sort_by}'")
    if sort_order not in ("asc", "desc"):
        raise s.BadRequest(f"Cannot set query parameter 'sortOrder' to value '{sort_order}'")
    return sort_by, sort_order == "desc"


def _external_task_filters() -> dict[str, Any] | None:
    """ExternalTaskQueryDto's filters as `xt.list_tasks` arguments; None when they match no task
    (a tenant: PDCA Flow has none)."""
    if _listed("tenantIdIn"):
        return None
    locked = True if _flag("locked") else (False if _flag("notLocked") else None)
    retries = True if _flag("withRetriesLeft") else (False if _flag("noRetriesLeft") else None)
    task_ids = _listed("externalTaskIdIn")
    for one in (request.args.get("externalTaskId"), request.args.get("executionId")):  # executionId is the task id
        if one is not None:
            task_ids = [i for i in (task_ids if task_ids is not None else [one]) if i == one]
    definition = request.args.get("processDefinitionId")
    return {"instance_id": request.args.get("processInstanceId"), "topic": request.args.get("topicName"),
            "worker": request.args.get("workerId"), "activity_id": request.args.get("activityId"),
            "process_key": request.args.get("processDefinitionKey"), "locked": locked,
            "with_retries_left": retries, "task_ids": task_ids, "instance_ids": _listed("processInstanceIdIn"),
            "activity_ids": _listed("activityIdIn"),
            "definitions": None if definition is None else [d for d in [_definition_of(definition)] if d],
            "min_priority": _opt_int_arg("priorityHigherThanOrEquals"),
            "max_priority": _opt_int_arg("priorityLowerThanOrEquals"),
            "sort": _sorting(xt.SORT_FIELDS), "offset": _int_arg("firstResult", 0),
            "limit": min(_int_arg("maxResults", 1000), 1000)}


def _opt_int_arg(name: str) -> int | None:
    value = request.args.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise s.BadRequest(f"{name}: '{value}' is not a whole number") from exc


@bp.get("/external-task")
def external_tasks() -> Any:
    filters = _external_task_filters()
    found = [] if filters is None else xt.list_tasks(runtime(), _actor(), **filters)
    return jsonify([_external_task_json(t) for t in found])


@bp.get("/external-task/count")
def external_task_count() -> Any:
    filters = _external_task_filters()
    if filters is None:
        return jsonify(count=0)
    return jsonify(count=len(xt.list_tasks(runtime(), _actor(), **{**filters, "offset": 0, "limit": 100_000})))


@bp.get("/external-task/<task_id>")
def external_task(task_id: str) -> Any:
    return jsonify(_external_task_json(xt.get(runtime(), _actor(), task_id)))


@bp.get("/external-task/<task_id>/errorDetails")
def external_task_error_details(task_id: str) -> Any:
    return Response(xt.error_details(runtime(), _actor(), task_id) or "", mimetype="text/plain")


@bp.post("/external-task/<task_id>/complete")
def complete_external_task(task_id: str) -> Any:
    data = _body(s.CompleteRequest)
    xt.complete(runtime(), _actor(), task_id, data["workerId"], s.from_typed(data.get("variables")),
                s.from_typed(data.get("localVariables"), "localVariables"))
    return _no_content()


@bp.post("/external-task/<task_id>/failure")
def external_task_failure(task_id: str) -> Any:
    data = _body(s.FailureRequest)
    retries = data.get("retries")
    variables = {**s.from_typed(data.get("localVariables"), "localVariables"), **s.from_typed(data.get("variables"))}
    xt.handle_failure(runtime(), _actor(), task_id, data["workerId"], data.get("errorMessage"),
                      data.get("errorDetails"), 0 if retries is None else retries, data.get("retryTimeout") or 0,
                      variables)
    return _no_content()


@bp.post("/external-task/<task_id>/bpmnError")
def external_task_bpmn_error(task_id: str) -> Any:
    data = _body(s.BpmnErrorRequest)
    xt.handle_bpmn_error(runtime(), _actor(), task_id, data["workerId"], data["errorCode"], data.get("errorMessage"),
                         s.from_typed(data.get("variables")))
    return _no_content()


@bp.post("/external-task/<task_id>/extendLock")
def external_task_extend_lock(task_id: str) -> Any:
    data = _body(s.ExtendLockRequest)
    xt.extend_lock(runtime(), _actor(), task_id, data["workerId"], data["newDuration"])
    return _no_content()


@bp.post("/external-task/<task_id>/lock")
def external_task_lock(task_id: str) -> Any:
    data = _body(s.LockRequest)
    xt.lock(runtime(), _actor(), task_id, data["workerId"], data["lockDuration"])
    return _no_content()


@bp.post("/external-task/<task_id>/unlock")
def external_task_unlock(task_id: str) -> Any:
    xt.unlock(runtime(), _actor(), task_id)
    return _no_content()


@bp.put("/external-task/<task_id>/retries")
def external_task_retries(task_id: str) -> Any:
    data = _body(s.RetriesRequest)
    xt.set_retries(runtime(), _actor(), task_id, data["retries"])
    return _no_content()


# ---------------------------------------------------------------------- process definitions and instances
def _instance_json(instance: InstanceView) -> dict[str, Any]:
    return {"id": instance.id, "definitionId": _definition_id(instance.key, instance.version),
            "businessKey": instance.business_key, "caseInstanceId": None,
            "ended": instance.status in ("completed", "cancelled"), "suspended": False, "tenantId": None,
            "links": [{"method": "GET", "href": f"{request.host_url.rstrip('/')}/engine-rest/process-instance/"
                                                f"{instance.id}", "rel": "self"}]}


def _start(key: str, version: int | None, definition_id: str | None = None) -> Any:
    actor = _actor()
    check_may_start_and_correlate(actor, "start instances")
    data = _body(s.StartRequest)
    try:
        instance = runtime().start(key, s.from_typed(data.get("variables")), actor, version=version,
                                   business_key=data.get("businessKey"))
    except NotFoundError as exc:
        if _definition(key, version) is not None:
            raise  # something else is missing
        raise _no_definition(key, definition_id) from exc
    out = _instance_json(instance)
    if data.get("withVariablesInReturn"):  # ProcessInstanceWithVariablesDto
        out["variables"] = s.typed(instance.data)
    return jsonify(out)


def _definition(key: str, version: int | None) -> dict[str, Any] | None:
    """The deployed process (its latest version, or the given one) as Camunda's ProcessDefinitionDto."""
    with runtime().db.read() as session:
        found = DefinitionStore.latest(session, key) if version is None else DefinitionStore.version(session, key,
                                                                                                     version)
        return None if found is None else _definition_json({"key": found.key, "version": found.version,
                                                             "name": found.name, "source_name": found.source_name})


def _definition_json(d: dict[str, Any]) -> dict[str, Any]:
    return {"id": _definition_id(d["key"], d["version"]), "key": d["key"], "category": None, "description": None,
            "name": d["name"], "version": d["version"], "resource": d["source_name"], "deploymentId": None,
            "diagram": None, "suspended": False, "tenantId": None, "versionTag": None, "historyTimeToLive": None,
            "startableInTasklist": True}


def _no_definition(key: str, definition_id: str | None) -> CamundaError:
    if definition_id is not None:
        return CamundaError(404, "RestException", f"No matching definition with id {definition_id}")
    return CamundaError(404, "RestException", f"No matching process definition with key: {key} and no tenant-id")


@bp.post("/process-definition/key/<key>/start")
def start(key: str) -> Any:
    return _start(key, None)


@bp.post("/process-definition/<definition_id>/start")
def start_definition(definition_id: str) -> Any:
    """Start a given version (the id a definition listing answers)."""
    definition = _definition_of(definition_id)
    if definition is None:
        raise _no_definition("", definition_id)
    return _start(definition[0], definition[1], definition_id)


@bp.get("/process-definition/key/<key>")
def definition_by_key(key: str) -> Any:
    found = _definition(key, None)
    if found is None:
        raise _no_definition(key, None)
    return jsonify(found)


_DEFINITION_SORTS = ("category", "key", "id", "name", "version", "deploymentId", "deployTime", "tenantId",
                     "versionTag")


@bp.get("/process-definition")
def definitions() -> Any:
    """Deployed processes (ProcessDefinitionQueryDto's everyday filters), sorted, then paged. None has
    a version tag or a tenant, so asking for one finds none."""
    args = request.args
    sort = _sorting(_DEFINITION_SORTS)
    if args.get("versionTag") is not None or args.get("versionTagLike") is not None or _listed("tenantIdIn"):
        return jsonify([])
    rows = [d for d in runtime().definitions_list(all_versions=True) if d["kind"] == "bpmn"]
    if _flag("latestVersion"):
        newest: dict[str, int] = {}
        for d in rows:
            newest[d["key"]] = max(newest.get(d["key"], 0), d["version"])
        rows = [d for d in rows if d["version"] == newest[d["key"]]]
    ids = _listed("processDefinitionIdIn")
    keys = _listed("keysIn") or _listed("keyIn")
    for wanted, check in (
            (args.get("key"), lambda d, v: d["key"] == v), (args.get("name"), lambda d, v: d["name"] == v),
            (args.get("keyLike"), lambda d, v: s.meets({"k": d["key"]}, [("k", "like", v)])),
            (args.get("nameLike"), lambda d, v: s.meets({"n": d["name"] or ""}, [("n", "like", v)])),
            (args.get("version"), lambda d, v: str(d["version"]) == v),
            (args.get("processDefinitionId"), lambda d, v: _definition_id(d["key"], d["version"]) == v),
            (ids, lambda d, v: _definition_id(d["key"], d["version"]) in v), (keys, lambda d, v: d["key"] in v)):
        if wanted is not None:
            rows = [d for d in rows if check(d, wanted)]
    rows.sort(key=lambda d: (d["key"], d["version"]))
    if sort is not None:
        field = {"id": lambda d: (d["key"], d["version"]), "key": lambda d: d["key"], "version": lambda d: d["version"],
                 "name": lambda d: d["name"] or "", "deployTime": lambda d: d["deployed_at"]}.get(sort[0])
        if field is not None:
            rows.sort(key=field, reverse=sort[1])
    skip = _int_arg("firstResult", 0)
    return jsonify([_definition_json(d) for d in rows[skip:skip + _int_arg("maxResults", 1000)]])


def _visible_instance(instance_id: str, running: bool = False) -> InstanceView:
    """The instance if the caller may see it (and, with `running`, it has not ended: Camunda's runtime
    service knows running instances only); else 404 in Camunda's words."""
    actor = _actor()
    try:
        instance = runtime().instance(instance_id)
        if not (running and instance.status in ("completed", "cancelled")) and (
                may_work_external_tasks(actor) or check_may_see_instance(actor, instance)):
            return instance
    except NotFoundError:
        pass
    raise CamundaError(404, "InvalidRequestException", f"Process instance with id {instance_id} does not exist")


@bp.get("/process-instance")
def instances() -> Any:
    """Running instances (Camunda lists runtime instances only) the caller may see, filtered by
    processDefinitionKey, businessKey and `variables` (name_operator_value,...), then paged."""
    actor = _actor()
    conditions = s.variable_conditions(request.args.get("variables"))
    business_key = request.args.get("businessKey")
    skip, most = _int_arg("firstResult", 0), min(_int_arg("maxResults", 100), 500)
    out: list[dict[str, Any]] = []
    scanned = 0
    while len(out) < most:
        rows = runtime().instances(key=request.args.get("processDefinitionKey"), limit=500, offset=scanned)
        scanned += len(rows)
        for row in rows:
            if row["status"] in ("completed", "cancelled") or business_key not in (None, row["business_key"]):
                continue
            instance = runtime().instance(row["id"])
            if not (may_work_external_tasks(actor) or may_see_instance(actor, instance)) \
                    or not s.meets(instance.data, conditions):
                continue
            if skip:
                skip -= 1
            elif len(out) < most:
                out.append(_instance_json(instance))
        if len(rows) < 500:
            break
    return jsonify(out)


@bp.get("/process-instance/<instance_id>")
def instance(instance_id: str) -> Any:
    return jsonify(_instance_json(_visible_instance(instance_id, running=True)))


@bp.get("/process-instance/<instance_id>/variables")
def instance_variables(instance_id: str) -> Any:
    return jsonify(s.typed(_visible_instance(instance_id).data))


def _variable(instance_id: str, name: str) -> Any:
    data = _visible_instance(instance_id).data
    if name not in data:
        raise CamundaError(404, "InvalidRequestException", f"process instance variable with name {name} does not exist")
    return data[name]


@bp.get("/process-instance/<instance_id>/variables/<name>")
def instance_variable(instance_id: str, name: str) -> Any:
    return jsonify(s.typed_value(_variable(instance_id, name)))


@bp.get("/process-instance/<instance_id>/variables/<name>/data")
def instance_variable_data(instance_id: str, name: str) -> Any:
    """Camunda serves Bytes and File variables here; PDCA Flow has neither, so every variable is
    refused as Camunda refuses a variable of any other type."""
    _variable(instance_id, name)
    raise CamundaError(400, "InvalidRequestException", f"Value of variable with id {instance_id} is not a binary value.")


# ---------------------------------------------------------------------- messages and signals
def _no_match(name: str) -> CamundaError:
    return CamundaError(400, "RestException", f"Cannot correlate message '{name}': No process definition or "
                                              "execution matches the parameters")


@bp.post("/message")
def message() -> Any:
    """Camunda's correlation: to the waiting executions that match; when none matches and no
    processInstanceId was named, to the process definitions with a message start event of that name
    (each starts an instance with the businessKey). 400 only when nothing matches and nothing starts."""
    actor = _actor()
    check_may_start_and_correlate(actor, "correlate messages")
    data = _body(s.MessageRequest)
    name = data["messageName"]
    if data.get("localCorrelationKeys"):
        raise s.BadRequest("localCorrelationKeys: correlating by an execution's local variables is not supported; "
                           "use correlationKeys (process variables)")
    if data.get("tenantId") is not None:  # no process or execution here belongs to a tenant
        raise _no_match(name)
    keys = s.from_typed(data.get("correlationKeys"), "correlationKeys")
    candidates = [(i, d) for i, d in runtime().message_candidates(name, data.get("businessKey"))
                  if data.get("processInstanceId") in (None, i) and all(d.get(k) == v for k, v in keys.items())]
    if len(candidates) > 1 and not data.get("all"):
        raise CamundaError(400, "RestException", f"Cannot correlate a message with name '{name}' to a single "
                                                 f"execution. {len(candidates)} executions match the correlation keys")
    # no local or triggered scope here: every kind joins the process data, process-wide values last
    variables = {**s.from_typed(data.get("processVariablesToTriggeredScope"), "processVariablesToTriggeredScope"),
                 **s.from_typed(data.get("processVariablesLocal"), "processVariablesLocal"),
                 **s.from_typed(data.get("processVariables"), "processVariables")}
    results: list[dict[str, Any]] = []
    if candidates:
        delivered = runtime().correlate_message(name, data.get("businessKey"), variables, actor,
                                                instance_ids=[i for i, _ in candidates])
        results = [{"resultType": "Execution", "processInstance": None,
                    "execution": {"id": i, "processInstanceId": i, "ended": False, "tenantId": None}}
                   for i in delivered]
    elif data.get("processInstanceId") is None:
        # a start event is never correlated by instance id; correlationKeys only narrow executions
        started = runtime().start_by_message(name, data.get("businessKey"), variables, actor)
        results = [{"resultType": "ProcessDefinition", "execution": None, "processInstance": _instance_json(i)}
                   for i in started]
    if not results:
        raise _no_match(name)
    if not data.get("resultEnabled"):
        return _no_content()
    if data.get("variablesInResultEnabled"):
        for result in results:
            instance_id = (result["execution"] or {}).get("processInstanceId") or result["processInstance"]["id"]
            result["variables"] = s.typed(runtime().instance(instance_id).data)
    return jsonify(results)


@bp.post("/signal")
def signal() -> Any:
    """A broadcast to every waiting instance and every process with a signal start event of that name;
    nobody listening is not an error (Camunda answers 204 either way)."""
    actor = _actor()
    check_may_start_and_correlate(actor, "send signals")
    data = _body(s.SignalRequest)
    if data.get("executionId"):
        raise CamundaError(400, "InvalidRequestException", "executionId: delivering a signal to one execution is "
                                                           "not supported; send it without executionId (broadcast)")
    variables = s.from_typed(data.get("variables"))
    if data.get("tenantId") is None:  # a tenant's signal reaches nobody here: no tenants
        runtime().signal(data["name"], variables, actor)
    return _no_content()


# ---------------------------------------------------------------------- decisions
@bp.post("/decision-definition/key/<key>/evaluate")
def evaluate_decision(key: str) -> Any:
    """The latest version of the decision; one typed map of outputs per rule the hit policy keeps."""
    data = _body(s.EvaluateRequest)
    try:
        rows = runtime().evaluate_decision(key, s.from_typed(data.get("variables")), _actor())
    except NotFoundError as exc:
        raise CamundaError(404, "RestException", f"No matching decision definition with key: {key}") from exc
    except DecisionFailedError as exc:
        raise CamundaError(400, "RestException", f"Cannot evaluate decision {key}: {exc.message}") from exc
    return jsonify([s.typed(row) for row in rows])


# ---------------------------------------------------------------------- user tasks
def _task_json(task: TaskView) -> dict[str, Any]:
    return {"id": task.id, "name": task.name, "assignee": task.assignee, "owner": None,
            "created": s.timestamp(task.created_at), "due": s.timestamp(task.due_at),
            "followUp": s.timestamp(task.follow_up_at), "delegationState": None, "description": task.documentation,
            "executionId": task.id, "parentTaskId": None, "priority": task.priority,
            "processDefinitionId": None, "processDefinitionKey": task.process_key,
            "processInstanceId": task.instance_id,
            "taskDefinitionKey": task.spec_id, "caseExecutionId": None, "caseInstanceId": None,
            "caseDefinitionId": None, "suspended": False, "formKey": None, "tenantId": None}


def _task_filters() -> list[Any]:
    """TaskQueryDto's everyday filters as predicates on a task (candidate queries leave out assigned
    tasks unless includeAssignedTasks, as Camunda's TaskQueryImpl does)."""
    args = request.args
    if (args.get("sortBy") is None) != (args.get("sortOrder") is None):  # sorting itself: the list's own order
        raise s.BadRequest("Only a single sorting parameter specified. sortBy and sortOrder required")
    listed = lambda name: _listed(name) or []  # noqa: E731
    checks: list[Any] = []
    for name, check in (
            ("taskId", lambda t, v: t.id == v), ("name", lambda t, v: t.name == v),
            ("nameLike", lambda t, v: s.meets({"n": t.name}, [("n", "like", v)])),
            ("assignee", lambda t, v: t.assignee == v), ("taskDefinitionKey", lambda t, v: t.spec_id == v),
            ("processInstanceBusinessKey", lambda t, v: _business_key(t.instance_id) == v)):
        if args.get(name) is not None:
            checks.append(lambda t, check=check, v=args[name]: check(t, v))
    for name, attribute in (("assigneeIn", "assignee"), ("taskDefinitionKeyIn", "spec_id")):
        if args.get(name) is not None:
            checks.append(lambda t, a=attribute, wanted=set(listed(name)): getattr(t, a) in wanted)
    if _flag("assigned"):
        checks.append(lambda t: t.assignee is not None)
    if _flag("unassigned"):
        checks.append(lambda t: t.assignee is None)
    groups = set(listed("candidateGroups")) | ({args["candidateGroup"]} if args.get("candidateGroup") else set())
    user = args.get("candidateUser")
    if groups or user:
        if user:
            user_groups = _groups_of(user)
            checks.append(lambda t: user in t.candidate_users or bool(user_groups & set(t.groups)))
        if groups:
            checks.append(lambda t: bool(groups & set(t.groups)))
        if not _flag("includeAssignedTasks"):
            checks.append(lambda t: t.assignee is None)
    return checks


def _business_key(instance_id: str) -> str | None:
    return runtime().instance(instance_id).business_key


def _groups_of(username: str) -> set[str]:
    try:
        info = user_info(database(), username)
    except NotFoundError:
        return set()
    return {*info["groups"], info["role"]}


@bp.get("/task")
def tasks() -> Any:
    """User tasks the caller may see, filtered, then paged (`firstResult`, `maxResults`)."""
    actor = _actor()
    checks = _task_filters()
    found = runtime().tasks(actor, instance_id=request.args.get("processInstanceId"),
                            process_key=request.args.get("processDefinitionKey"), limit=1000)
    found = [t for t in found if all(check(t) for check in checks)]
    skip = _int_arg("firstResult", 0)
    return jsonify([_task_json(t) for t in found[skip:skip + min(_int_arg("maxResults", 200), 1000)]])


@bp.get("/task/<task_id>")
def task(task_id: str) -> Any:
    """A task still to be done (Camunda's runtime query: a completed one is not found either)."""
    try:
        found = runtime().task(task_id, _actor())
    except NotFoundError:
        found = None
    if found is None or found.state not in ("open", "claimed"):
        raise CamundaError(404, "InvalidRequestException", f"No matching task with id {task_id}")
    return jsonify(_task_json(found))


@bp.post("/task/<task_id>/claim")
def claim(task_id: str) -> Any:
    actor = _actor()
    user = _body(s.ClaimRequest).get("userId")
    if user and user != actor.username:
        runtime().assign(task_id, actor, user)  # claiming for someone else is a lead's assignment
    else:
        runtime().claim(task_id, actor)
    return _no_content()


@bp.post("/task/<task_id>/unclaim")
def unclaim(task_id: str) -> Any:
    runtime().unclaim(task_id, _actor())
    return _no_content()


@bp.post("/task/<task_id>/complete")
def complete_task(task_id: str) -> Any:
    data = _body(s.TaskCompleteRequest)
    instance = runtime().complete(task_id, _actor(), s.from_typed(data.get("variables")), history=False)
    if data.get("withVariablesInReturn"):
        return jsonify(s.typed(instance.data))
    return _no_content()
