"""`/engine-rest/external-task/...`: fetch and lock, the outcomes (complete, failure, BPMN error), locks,
retries and the task list, translated to engine/external_tasks.py (web/engine_rest.py has the blueprint,
the auth and the error shapes)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from engine import external_tasks as xt
from web import engine_rest_schemas as s
from web.context import runtime
from web.engine_rest import body, bp, caller, no_content

EXTERNAL_TASK_PAGE = (1000, 1000)  # maxResults' (default, most): see engine_rest_schemas.page


def _external_task_json(task: xt.ExternalTaskView, with_variables: bool = False) -> dict[str, Any]:
    out = {
        "id": task.id, "topicName": task.topic, "workerId": task.worker_id,
        "lockExpirationTime": s.timestamp(task.lock_expires_at), "retries": task.retries,
        "errorMessage": task.error_message, "activityId": task.activity_id,
        "activityInstanceId": f"{task.activity_id}:{task.id}", "executionId": task.id,
        "processInstanceId": task.instance_id, "processDefinitionId": s.definition_id(task.process_key, task.process_version),
        "processDefinitionKey": task.process_key, "processDefinitionVersionTag": None,
        "businessKey": task.business_key, "priority": task.priority, "suspended": False, "tenantId": None,
        "createTime": s.timestamp(task.created_at), "extensionProperties": task.properties,
    }
    if with_variables:  # a locked task (LockedExternalTaskDto) also carries the last failure's details
        out["errorDetails"] = task.error_details
        out["variables"] = s.typed(task.variables, task.variable_types)
    return out


def _topic(t: dict[str, Any]) -> xt.TopicRequest:
    definitions: set[tuple[str, int]] | None = None  # processDefinitionId and processDefinitionIdIn both hold
    one = t.get("processDefinitionId")
    for given in ([one] if one is not None else None, t.get("processDefinitionIdIn")):
        if given is not None:
            wanted = {d for d in map(s.definition_of, given) if d is not None}
            definitions = wanted if definitions is None else definitions & wanted
    return xt.TopicRequest(t["topicName"], t["lockDuration"], t.get("variables"), t.get("businessKey"),
                           t.get("processDefinitionKey"), t.get("processInstanceId"),
                           _filter_values(t.get("processVariables")),
                           process_keys=t.get("processDefinitionKeyIn"),
                           definitions=None if definitions is None else sorted(definitions),
                           tenant_ids=t.get("tenantIdIn"), version_tag=t.get("processDefinitionVersionTag"),
                           extension_properties=bool(t.get("includeExtensionProperties")),
                           local_variables=bool(t.get("localVariables")))


@bp.post("/external-task/fetchAndLock")
def fetch_and_lock() -> Any:
    data = body(s.FetchAndLockRequest)
    topics = [_topic(t) for t in data.get("topics") or []]
    max_tasks = data["maxTasks"] if data.get("maxTasks") is not None else 1
    # sorting: createTime is the one field Camunda sorts fetches by; the last entry wins
    newest_first = any(o.get("sortOrder") == "desc" for o in (data.get("sorting") or [])[-1:])
    locked = xt.fetch_and_lock(runtime(), caller(), data["workerId"], topics, max_tasks=max_tasks,
                               use_priority=bool(data.get("usePriority")),
                               wait_ms=data.get("asyncResponseTimeout") or 0, newest_first=newest_first)
    return jsonify([_external_task_json(t, with_variables=True) for t in locked])


def _filter_values(values: dict[str, Any] | None) -> dict[str, Any] | None:
    """A topic's processVariables filter: plain values, or typed ones."""
    if not values:
        return None
    return {k: s.from_typed({k: v}, "processVariables")[k] if isinstance(v, dict) and "value" in v else v
            for k, v in values.items()}


def _external_task_filters() -> dict[str, Any] | None:
    """ExternalTaskQueryDto's filters as `xt.list_tasks` arguments; None when they match no task
    (a tenant: PDCA Flow has none)."""
    if s.listed("tenantIdIn"):
        return None
    locked = True if s.flag("locked") else (False if s.flag("notLocked") else None)
    retries = True if s.flag("withRetriesLeft") else (False if s.flag("noRetriesLeft") else None)
    task_ids = s.listed("externalTaskIdIn")
    for one in (request.args.get("externalTaskId"), request.args.get("executionId")):  # executionId is the task id
        if one is not None:
            task_ids = [i for i in (task_ids if task_ids is not None else [one]) if i == one]
    definition = request.args.get("processDefinitionId")
    offset, limit = s.page(*EXTERNAL_TASK_PAGE)
    return {"instance_id": request.args.get("processInstanceId"), "topic": request.args.get("topicName"),
            "worker": request.args.get("workerId"), "activity_id": request.args.get("activityId"),
            "process_key": request.args.get("processDefinitionKey"), "locked": locked,
            "with_retries_left": retries, "task_ids": task_ids, "instance_ids": s.listed("processInstanceIdIn"),
            "activity_ids": s.listed("activityIdIn"),
            "definitions": None if definition is None else [d for d in [s.definition_of(definition)] if d],
            "min_priority": s.opt_int_arg("priorityHigherThanOrEquals"),
            "max_priority": s.opt_int_arg("priorityLowerThanOrEquals"),
            "sort": s.sorting(xt.SORT_FIELDS), "offset": offset, "limit": limit}


@bp.get("/external-task")
def external_tasks() -> Any:
    filters = _external_task_filters()
    found = [] if filters is None else xt.list_tasks(runtime(), caller(), **filters)
    return jsonify([_external_task_json(t) for t in found])


@bp.get("/external-task/count")
def external_task_count() -> Any:
    filters = _external_task_filters()
    if filters is None:
        return jsonify(count=0)
    return jsonify(count=xt.count_tasks(runtime(), caller(), **filters))


@bp.get("/external-task/<task_id>")
def external_task(task_id: str) -> Any:
    return jsonify(_external_task_json(xt.get(runtime(), caller(), task_id)))


@bp.get("/external-task/<task_id>/errorDetails")
def external_task_error_details(task_id: str) -> Any:
    return Response(xt.error_details(runtime(), caller(), task_id) or "", mimetype="text/plain")


@bp.post("/external-task/<task_id>/complete")
def complete_external_task(task_id: str) -> Any:
    data = body(s.CompleteRequest)
    variables, types = s.typed_inputs(data, "localVariables", "variables")  # no local scope: all process data
    xt.complete(runtime(), caller(), task_id, data["workerId"], variables, types=types)
    return no_content()


@bp.post("/external-task/<task_id>/failure")
def external_task_failure(task_id: str) -> Any:
    data = body(s.FailureRequest)
    retries = data.get("retries")
    variables, types = s.typed_inputs(data, "localVariables", "variables")
    xt.handle_failure(runtime(), caller(), task_id, data["workerId"], data.get("errorMessage"),
                      data.get("errorDetails"), 0 if retries is None else retries, data.get("retryTimeout") or 0,
                      variables, types)
    return no_content()


@bp.post("/external-task/<task_id>/bpmnError")
def external_task_bpmn_error(task_id: str) -> Any:
    data = body(s.BpmnErrorRequest)
    variables, types = s.typed_input(data.get("variables"))
    xt.handle_bpmn_error(runtime(), caller(), task_id, data["workerId"], data["errorCode"], data.get("errorMessage"),
                         variables, types)
    return no_content()


@bp.post("/external-task/<task_id>/extendLock")
def external_task_extend_lock(task_id: str) -> Any:
    data = body(s.ExtendLockRequest)
    xt.extend_lock(runtime(), caller(), task_id, data["workerId"], data["newDuration"])
    return no_content()


@bp.post("/external-task/<task_id>/lock")
def external_task_lock(task_id: str) -> Any:
    data = body(s.LockRequest)
    xt.lock(runtime(), caller(), task_id, data["workerId"], data["lockDuration"])
    return no_content()


@bp.post("/external-task/<task_id>/unlock")
def external_task_unlock(task_id: str) -> Any:
    xt.unlock(runtime(), caller(), task_id)
    return no_content()


@bp.put("/external-task/<task_id>/retries")
def external_task_retries(task_id: str) -> Any:
    data = body(s.RetriesRequest)
    xt.set_retries(runtime(), caller(), task_id, data["retries"])
    return no_content()
