"""`/engine-rest` beyond external tasks: process definitions (start), process instances and their
variables, messages, signals, decisions and user tasks, translated to the Runtime (web/engine_rest.py
has the blueprint, the auth and the error shapes)."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from engine.accounts import user_info
from engine.assignment import candidate_key
from engine.definitions import DefinitionStore
from engine.errors import DecisionFailedError, NotFoundError
from engine.permissions import check_may_see_instance, check_may_start_and_correlate, may_work_external_tasks
from engine.runtime.lists import INSTANCE_SORT_FIELDS, TASK_SORT_FIELDS, InstanceFilter, TaskFilter
from engine.views import InstanceView, TaskView
from web import engine_rest_schemas as s
from web.context import database, runtime
from web.engine_rest import CamundaError, body, bp, caller, no_content


# ---------------------------------------------------------------------- process definitions and instances
def _instance_json(instance: InstanceView) -> dict[str, Any]:
    return _instance_row_json({"id": instance.id, "process_key": instance.key, "process_version": instance.version,
                               "business_key": instance.business_key, "status": instance.status})


def _instance_row_json(row: dict[str, Any]) -> dict[str, Any]:
    """ProcessInstanceDto of an instance's id, process_key, process_version, business_key and status."""
    return {"id": row["id"], "definitionId": s.definition_id(row["process_key"], row["process_version"]),
            "businessKey": row["business_key"], "caseInstanceId": None,
            "ended": row["status"] in ("completed", "cancelled"), "suspended": False, "tenantId": None,
            "links": [{"method": "GET", "href": f"{request.host_url.rstrip('/')}/engine-rest/process-instance/"
                                                f"{row['id']}", "rel": "self"}]}


def _start(key: str, version: int | None, definition_id: str | None = None) -> Any:
    actor = caller()
    check_may_start_and_correlate(actor, "start instances")
    data = body(s.StartRequest)
    variables, types = s.typed_input(data.get("variables"))
    try:
        instance = runtime().start(key, variables, actor, version=version, business_key=data.get("businessKey"),
                                   types=types)
    except NotFoundError as exc:
        if _definition(key, version) is not None:
            raise  # something else is missing
        raise no_definition(key, definition_id) from exc
    out = _instance_json(instance)
    if data.get("withVariablesInReturn"):  # ProcessInstanceWithVariablesDto
        out["variables"] = s.typed(instance.data, instance.variable_types)
    return jsonify(out)


def _definition(key: str, version: int | None) -> dict[str, Any] | None:
    """The deployed process (its latest version, or the given one) as Camunda's ProcessDefinitionDto."""
    with runtime().db.read() as session:
        found = DefinitionStore.latest(session, key) if version is None else DefinitionStore.version(session, key,
                                                                                                     version)
        return None if found is None else definition_json({"key": found.key, "version": found.version,
                                                             "name": found.name, "source_name": found.source_name})


def definition_json(d: dict[str, Any]) -> dict[str, Any]:
    return {"id": s.definition_id(d["key"], d["version"]), "key": d["key"], "category": None, "description": None,
            "name": d["name"], "version": d["version"], "resource": d["source_name"],
            # no deployment entity here: each version is its own deployment (web/engine_rest_deployments.py)
            "deploymentId": s.definition_id(d["key"], d["version"]),
            "diagram": None, "suspended": False, "tenantId": None, "versionTag": None, "historyTimeToLive": None,
            "startableInTasklist": True}


def no_definition(key: str, definition_id: str | None) -> CamundaError:
    if definition_id is not None:
        return CamundaError(404, "RestException", f"No matching definition with id {definition_id}")
    return CamundaError(404, "RestException", f"No matching process definition with key: {key} and no tenant-id")


@bp.post("/process-definition/key/<key>/start")
def start(key: str) -> Any:
    return _start(key, None)


@bp.post("/process-definition/<definition_id>/start")
def start_definition(definition_id: str) -> Any:
    """Start a given version (the id a definition listing answers)."""
    definition = s.definition_of(definition_id)
    if definition is None:
        raise no_definition("", definition_id)
    return _start(definition[0], definition[1], definition_id)


@bp.get("/process-definition/key/<key>")
def definition_by_key(key: str) -> Any:
    found = _definition(key, None)
    if found is None:
        raise no_definition(key, None)
    return jsonify(found)


_DEFINITION_SORTS = ("category", "key", "id", "name", "version", "deploymentId", "deployTime", "tenantId",
                     "versionTag")


@bp.get("/process-definition")
def definitions() -> Any:
    """Deployed processes (ProcessDefinitionQueryDto's everyday filters), sorted, then paged. None has
    a version tag or a tenant, so asking for one finds none."""
    args = request.args
    sort = s.sorting(_DEFINITION_SORTS)
    if args.get("versionTag") is not None or args.get("versionTagLike") is not None or s.listed("tenantIdIn"):
        return jsonify([])
    rows = [d for d in runtime().definitions_list(all_versions=True) if d["kind"] == "bpmn"]
    if s.flag("latestVersion"):
        newest: dict[str, int] = {}
        for d in rows:
            newest[d["key"]] = max(newest.get(d["key"], 0), d["version"])
        rows = [d for d in rows if d["version"] == newest[d["key"]]]
    ids = s.listed("processDefinitionIdIn")
    keys = s.listed("keysIn") or s.listed("keyIn")
    for wanted, check in (
            (args.get("key"), lambda d, v: d["key"] == v), (args.get("name"), lambda d, v: d["name"] == v),
            (args.get("keyLike"), lambda d, v: s.meets({"k": d["key"]}, [("k", "like", v)])),
            (args.get("nameLike"), lambda d, v: s.meets({"n": d["name"] or ""}, [("n", "like", v)])),
            (args.get("version"), lambda d, v: str(d["version"]) == v),
            (args.get("processDefinitionId"), lambda d, v: s.definition_id(d["key"], d["version"]) == v),
            (ids, lambda d, v: s.definition_id(d["key"], d["version"]) in v), (keys, lambda d, v: d["key"] in v)):
        if wanted is not None:
            rows = [d for d in rows if check(d, wanted)]
    rows.sort(key=lambda d: (d["key"], d["version"]))
    if sort is not None:
        field = {"id": lambda d: (d["key"], d["version"]), "key": lambda d: d["key"], "version": lambda d: d["version"],
                 "name": lambda d: d["name"] or "", "deployTime": lambda d: d["deployed_at"]}.get(sort[0])
        if field is not None:
            rows.sort(key=field, reverse=sort[1])
    skip = s.int_arg("firstResult", 0)
    return jsonify([definition_json(d) for d in rows[skip:skip + s.int_arg("maxResults", 1000)]])


def _visible_instance(instance_id: str, running: bool = False) -> InstanceView:
    """The instance if the caller may see it (and, with `running`, it has not ended: Camunda's runtime
    service knows running instances only); else 404 in Camunda's words."""
    actor = caller()
    try:
        instance = runtime().instance(instance_id)
        if not (running and instance.status in ("completed", "cancelled")) and (
                may_work_external_tasks(actor) or check_may_see_instance(actor, instance)):
            return instance
    except NotFoundError:
        pass
    raise CamundaError(404, "InvalidRequestException", f"Process instance with id {instance_id} does not exist")


INSTANCE_PAGE = (100, 500)  # maxResults' (default, most): see engine_rest_schemas.page
TASK_PAGE = (200, 1000)


def _instance_query() -> tuple[s.Query, InstanceFilter | None, Any]:
    """The request's ProcessInstanceQueryDto (the query string of a GET, the body of a POST): its
    parameters, its filters (None: they match no instance) and its `variables` conditions as a
    predicate on an instance's data (None: no condition; comparing values inside the JSON data stays
    in Python, engine/runtime/lists.py pages it)."""
    query = s.Query(body(s.InstanceQueryRequest), from_body=True) if request.method == "POST" else s.Query()
    conditions = query.conditions()
    keep = (lambda data: s.meets(data, conditions)) if conditions else None
    if query.flag("suspended") or query.listed("tenantIdIn"):  # nothing is suspended; no tenants here
        return query, None, keep
    definition = query.get("processDefinitionId")
    return query, InstanceFilter(
        process_key=query.get("processDefinitionKey"), process_keys=query.listed("processDefinitionKeyIn"),
        definitions=None if definition is None else tuple(d for d in [s.definition_of(definition)] if d),
        business_key=query.get("businessKey"), business_key_like=query.get("businessKeyLike"),
        instance_ids=query.listed("processInstanceIds")), keep


@bp.route("/process-instance", methods=["GET", "POST"])
def instances() -> Any:
    """Running instances (Camunda lists runtime instances only) the caller may see, filtered
    (processDefinitionKey(In), processDefinitionId, businessKey(Like), processInstanceIds, `variables`),
    sorted (sortBy/sortOrder, a POST's `sorting`; newest first by default), then paged."""
    query, found, keep = _instance_query()
    sort = query.sorting(INSTANCE_SORT_FIELDS)
    skip, most = s.page(*INSTANCE_PAGE)
    if found is None:
        return jsonify([])
    rows = runtime().query_instances(caller(), found, sort, skip, most, keep)
    return jsonify([_instance_row_json(r) for r in rows])


@bp.route("/process-instance/count", methods=["GET", "POST"])
def instance_count() -> Any:
    _, found, keep = _instance_query()
    return jsonify(count=0 if found is None else runtime().count_instances(caller(), found, keep))


@bp.get("/process-instance/<instance_id>")
def instance(instance_id: str) -> Any:
    return jsonify(_instance_json(_visible_instance(instance_id, running=True)))


@bp.delete("/process-instance/<instance_id>")
def delete_instance(instance_id: str) -> Any:
    """Camunda's deletion of a running instance is PDCA Flow's cancellation (quality leads and admins):
    the instance ends as cancelled and keeps its history. failIfNotExists=false: 204 for an unknown or
    ended instance too."""
    try:
        _visible_instance(instance_id, running=True)
    except CamundaError:
        if request.args.get("failIfNotExists", "true").lower() == "false":
            return no_content()
        raise
    runtime().cancel(instance_id, caller(), reason="deleted through /engine-rest")
    return no_content()


@bp.get("/process-instance/<instance_id>/variables")
def instance_variables(instance_id: str) -> Any:
    found = _visible_instance(instance_id)
    return jsonify(s.typed(found.data, found.variable_types))


def _variable(instance_id: str, name: str) -> tuple[Any, str | None]:
    """The variable's value and its remembered type (None: inferred from the value)."""
    found = _visible_instance(instance_id)
    if name not in found.data:
        raise CamundaError(404, "InvalidRequestException", f"process instance variable with name {name} does not exist")
    return found.data[name], found.variable_types.get(name)


@bp.get("/process-instance/<instance_id>/variables/<name>")
def instance_variable(instance_id: str, name: str) -> Any:
    return jsonify(s.typed_value(*_variable(instance_id, name)))


@bp.post("/process-instance/<instance_id>/variables")
def modify_instance_variables(instance_id: str) -> Any:
    """Camunda's modifyVariables: typed `modifications` set, `deletions` removed, 204."""
    data = body(s.ModifyVariablesRequest)
    _visible_instance(instance_id, running=True)
    modifications, types = s.typed_input(data.get("modifications"), "modifications")
    runtime().set_variables(instance_id, caller(), modifications, data.get("deletions") or [], types)
    return no_content()


@bp.put("/process-instance/<instance_id>/variables/<name>")
def put_instance_variable(instance_id: str, name: str) -> Any:
    variables, types = s.typed_input({name: body(s.VariableRequest)})
    _visible_instance(instance_id, running=True)
    runtime().set_variables(instance_id, caller(), variables, types=types)
    return no_content()


@bp.delete("/process-instance/<instance_id>/variables/<name>")
def delete_instance_variable(instance_id: str, name: str) -> Any:
    _visible_instance(instance_id, running=True)
    runtime().set_variables(instance_id, caller(), {}, [name])
    return no_content()


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
    actor = caller()
    check_may_start_and_correlate(actor, "correlate messages")
    data = body(s.MessageRequest)
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
    variables, types = s.typed_inputs(data, "processVariablesToTriggeredScope", "processVariablesLocal",
                                      "processVariables")
    results: list[dict[str, Any]] = []
    if candidates:
        delivered = runtime().correlate_message(name, data.get("businessKey"), variables, actor,
                                                instance_ids=[i for i, _ in candidates], types=types)
        results = [{"resultType": "Execution", "processInstance": None,
                    "execution": {"id": i, "processInstanceId": i, "ended": False, "tenantId": None}}
                   for i in delivered]
    elif data.get("processInstanceId") is None:
        # a start event is never correlated by instance id; correlationKeys only narrow executions
        started = runtime().start_by_message(name, data.get("businessKey"), variables, actor, types)
        results = [{"resultType": "ProcessDefinition", "execution": None, "processInstance": _instance_json(i)}
                   for i in started]
    if not results:
        raise _no_match(name)
    if not data.get("resultEnabled"):
        return no_content()
    if data.get("variablesInResultEnabled"):
        for result in results:
            instance_id = (result["execution"] or {}).get("processInstanceId") or result["processInstance"]["id"]
            found = runtime().instance(instance_id)
            result["variables"] = s.typed(found.data, found.variable_types)
    return jsonify(results)


@bp.post("/signal")
def signal() -> Any:
    """A broadcast to every waiting instance and every process with a signal start event of that name;
    nobody listening is not an error (Camunda answers 204 either way)."""
    actor = caller()
    check_may_start_and_correlate(actor, "send signals")
    data = body(s.SignalRequest)
    if data.get("executionId"):
        raise CamundaError(400, "InvalidRequestException", "executionId: delivering a signal to one execution is "
                                                           "not supported; send it without executionId (broadcast)")
    variables, types = s.typed_input(data.get("variables"))
    if data.get("tenantId") is None:  # a tenant's signal reaches nobody here: no tenants
        runtime().signal(data["name"], variables, actor, types)
    return no_content()


# ---------------------------------------------------------------------- decisions
@bp.post("/decision-definition/key/<key>/evaluate")
def evaluate_decision(key: str) -> Any:
    """The latest version of the decision; one typed map of outputs per rule the hit policy keeps."""
    data = body(s.EvaluateRequest)
    try:
        rows = runtime().evaluate_decision(key, s.from_typed(data.get("variables")), caller())
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


def _task_query() -> tuple[s.Query, TaskFilter | None]:
    """The request's TaskQueryDto (the query string of a GET, the body of a POST): its parameters and
    its everyday filters (None: they match no task, e.g. a tenant: there are none here). Candidate
    queries leave out assigned tasks unless includeAssignedTasks, as Camunda's TaskQueryImpl does."""
    query = s.Query(body(s.TaskQueryRequest), from_body=True) if request.method == "POST" else s.Query()
    if query.listed("tenantIdIn"):
        return query, None
    offered_to: list[frozenset[str]] = []
    user = query.get("candidateUser")
    if user:  # offered to one of the user's groups or to the user by name
        offered_to.append(frozenset(_groups_of(user) | {candidate_key(user)}))
    groups = set(query.listed("candidateGroups") or ()) | ({query.get("candidateGroup")} - {None, ""})
    if groups:
        offered_to.append(frozenset(groups))
    return query, TaskFilter(
        task_id=query.get("taskId"), name=query.get("name"), name_like=query.get("nameLike"),
        assignee=query.get("assignee"), assignees=query.listed("assigneeIn"),
        spec_id=query.get("taskDefinitionKey"), spec_ids=query.listed("taskDefinitionKeyIn"),
        instance_id=query.get("processInstanceId"), process_key=query.get("processDefinitionKey"),
        business_key=query.get("processInstanceBusinessKey"), assigned_only=query.flag("assigned"),
        unassigned_only=query.flag("unassigned") or bool(offered_to and not query.flag("includeAssignedTasks")),
        offered_to=tuple(offered_to))


def _groups_of(username: str) -> set[str]:
    try:
        info = user_info(database(), username)
    except NotFoundError:
        return set()
    return {*info["groups"], info["role"]}


@bp.route("/task", methods=["GET", "POST"])
def tasks() -> Any:
    """Open and claimed user tasks the caller may see, filtered, sorted (sortBy/sortOrder, a POST's
    `sorting`; else due first, then priority and age, as the inbox), then paged (`firstResult`,
    `maxResults`)."""
    query, found = _task_query()
    sort = query.sorting(TASK_SORT_FIELDS)
    skip, most = s.page(*TASK_PAGE)
    if found is None:
        return jsonify([])
    return jsonify([_task_json(t) for t in runtime().query_tasks(caller(), found, sort, skip, most)])


@bp.route("/task/count", methods=["GET", "POST"])
def task_count() -> Any:
    _, found = _task_query()
    return jsonify(count=0 if found is None else runtime().count_tasks(caller(), found))


def _open_task(task_id: str) -> TaskView:
    """A task still to be done that the caller may see (Camunda's runtime query: a completed one is
    not found either); else 404."""
    try:
        found = runtime().task(task_id, caller())
    except NotFoundError:
        found = None
    if found is None or found.state not in ("open", "claimed"):
        raise CamundaError(404, "InvalidRequestException", f"No matching task with id {task_id}")
    return found


@bp.get("/task/<task_id>")
def task(task_id: str) -> Any:
    return jsonify(_task_json(_open_task(task_id)))


def _task_variables(task_id: str) -> dict[str, dict[str, Any]]:
    """The variables the task sees, typed: its instance's (a task has no locals of its own here). Who
    may see the task may see its instance (engine/permissions.may_see_instance)."""
    instance = runtime().instance(_open_task(task_id).instance_id)
    return s.typed(instance.data, instance.variable_types)


@bp.get("/task/<task_id>/variables")
def task_variables(task_id: str) -> Any:
    return jsonify(_task_variables(task_id))


@bp.get("/task/<task_id>/variables/<name>")
def task_variable(task_id: str, name: str) -> Any:
    variables = _task_variables(task_id)
    if name not in variables:
        raise CamundaError(404, "InvalidRequestException", f"task variable with name {name} does not exist")
    return jsonify(variables[name])


# the Camunda type of a generated form's field type (camunda:formField type)
_FORM_FIELD_TYPES = {"string": "String", "long": "Long", "boolean": "Boolean", "date": "Date", "enum": "String"}


def _as_field_type(value: Any, type_: str) -> dict[str, Any]:
    """A value converted to its form field's type, as Camunda's form types convert (a default value
    is text: "5" for a long field is 5); one that does not convert keeps the type its value says."""
    try:
        if type_ == "Long" and not isinstance(value, (bool, float)):
            value = int(str(value).strip())
        elif type_ == "Boolean" and not isinstance(value, bool):
            value = {"true": True, "false": False}[str(value).strip().lower()]
        elif type_ == "String" and not isinstance(value, str):
            raise ValueError(value)  # e.g. a number where the field expects text
    except (ValueError, KeyError):
        return s.typed_value(value)
    return s.typed_value(value, type_)


@bp.get("/task/<task_id>/form-variables")
def task_form_variables(task_id: str) -> Any:
    """What a form for the task starts from (Camunda's FormService.getTaskFormVariables): the variables
    the task sees, and each form field by its id, typed as the field is, with its variable's value or
    else its default. `variableNames` (comma-separated) keeps only those."""
    found = _open_task(task_id)
    instance = runtime().instance(found.instance_id)
    out = s.typed(instance.data, instance.variable_types)
    for field in found.form:
        name = field.get("id")
        if not name or field.get("type") not in _FORM_FIELD_TYPES:
            continue  # the generic JSON-variables field of a task without a form is not a variable
        value, type_ = instance.data.get(name, field.get("default")), _FORM_FIELD_TYPES[field["type"]]
        # an empty field keeps its type (Camunda: a typed null), not the Null type of an unset variable
        out[name] = {"type": type_, "value": None, "valueInfo": {}} if value is None else _as_field_type(value, type_)
    wanted = s.listed("variableNames")
    return jsonify({k: v for k, v in out.items() if wanted is None or k in wanted})


@bp.post("/task/<task_id>/claim")
def claim(task_id: str) -> Any:
    actor = caller()
    user = body(s.ClaimRequest).get("userId")
    if user and user != actor.username:
        runtime().assign(task_id, actor, user)  # claiming for someone else is a lead's assignment
    else:
        runtime().claim(task_id, actor)
    return no_content()


@bp.post("/task/<task_id>/unclaim")
def unclaim(task_id: str) -> Any:
    runtime().unclaim(task_id, caller())
    return no_content()


@bp.post("/task/<task_id>/assignee")
def set_assignee(task_id: str) -> Any:
    """Camunda's setAssignee: a lead's assignment (userId null gives the task back to its groups)."""
    runtime().assign(task_id, caller(), body(s.ClaimRequest).get("userId") or None)
    return no_content()


@bp.post("/task/<task_id>/submit-form")
@bp.post("/task/<task_id>/complete")
def complete_task(task_id: str) -> Any:
    """Complete with typed variables. Camunda's submit-form differs from complete by validating the
    generated form's fields; here every completion is validated by the task's form, so both are one."""
    data = body(s.TaskCompleteRequest)
    variables, types = s.typed_input(data.get("variables"))
    instance = runtime().complete(task_id, caller(), variables, history=False, types=types)
    if data.get("withVariablesInReturn"):
        return jsonify(s.typed(instance.data, instance.variable_types))
    return no_content()
