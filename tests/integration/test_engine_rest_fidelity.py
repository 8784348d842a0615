"""/engine-rest against what Camunda 7 documents and does (its OpenAPI templates and REST resources,
camunda-bpm-platform engine-rest), on SQLite and PostgreSQL through the Flask app: the topic filters
of fetch-and-lock narrow what a worker locks, the fields a locked task carries, sorting, the error a
worker gets when it does not hold the lock, and the start answer with its variables."""

from __future__ import annotations

import time
from pathlib import Path

from tests.integration.conftest import basic, lead_actor

MODELS = Path(__file__).parents[1] / "constructs" / "models"
FETCH = "/engine-rest/external-task/fetchAndLock"


def _fetch(rest, topic: dict, worker: str = "w1", **body) -> list[dict]:
    response = rest.post(FETCH, headers=basic(), json={
        "workerId": worker, "maxTasks": 10, "topics": [{"lockDuration": 60000, **topic}], **body})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_topic_filters_narrow_what_a_worker_locks(rest, runtime):
    """FetchExternalTaskTopicDto: processDefinitionKeyIn, processDefinitionId(In), tenantIdIn and
    processDefinitionVersionTag restrict the tasks; a worker that names another process (or a tenant,
    or a version tag no definition here has) must not lock this one."""
    instance = runtime.start("xt_order_lookup", {"order": "A-1"}, lead_actor())
    topic = {"topicName": "erp-lookup"}
    assert _fetch(rest, {**topic, "processDefinitionKeyIn": ["xt_credit_note"]}) == []
    assert _fetch(rest, {**topic, "processDefinitionKey": "xt_order_lookup",
                         "processDefinitionKeyIn": ["xt_credit_note"]}) == []
    assert _fetch(rest, {**topic, "processDefinitionId": "xt_credit_note:1"}) == []
    assert _fetch(rest, {**topic, "processDefinitionIdIn": ["xt_order_lookup:2", "nonsense"]}) == []
    assert _fetch(rest, {**topic, "tenantIdIn": ["tenant-one"]}) == []
    assert _fetch(rest, {**topic, "processDefinitionVersionTag": "1.0"}) == []
    [task] = _fetch(rest, {**topic, "processDefinitionKeyIn": ["xt_credit_note", "xt_order_lookup"],
                           "processDefinitionIdIn": ["xt_order_lookup:1"], "withoutTenantId": True,
                           "tenantIdIn": None})
    assert task["processInstanceId"] == instance.id and task["processDefinitionId"] == "xt_order_lookup:1"


def test_a_locked_task_carries_its_error_details_and_asked_for_extension_properties(rest, runtime):
    """LockedExternalTaskDto has errorDetails (a worker reads back what it stored with its last
    failure); extensionProperties are filled only for a topic with includeExtensionProperties."""
    runtime.deploy_paths([MODELS / "xt_connectors.bpmn"])
    runtime.start("xt_order_lookup", {"order": "A-2"}, lead_actor())
    [task] = _fetch(rest, {"topicName": "erp-lookup"})
    assert task["errorDetails"] is None and task["extensionProperties"] == {}
    failed = rest.post(f"/engine-rest/external-task/{task['id']}/failure", headers=basic(), json={
        "workerId": "w1", "errorMessage": "ERP down", "errorDetails": "page 3 of 7 done", "retries": 2,
        "retryTimeout": 0})
    assert failed.status_code == 204
    [again] = _fetch(rest, {"topicName": "erp-lookup"})
    assert (again["errorMessage"], again["errorDetails"], again["retries"]) == ("ERP down", "page 3 of 7 done", 2)

    runtime.start("xt_connectors", {"order": "A-3", "customer_email": "c@example.com", "erp_url": "http://erp"},
                  lead_actor())
    [plain] = _fetch(rest, {"topicName": "pdcaflow.http", "lockDuration": 1})
    assert plain["extensionProperties"] == {}
    rest.post(f"/engine-rest/external-task/{plain['id']}/unlock", headers=basic())
    [asked] = _fetch(rest, {"topicName": "pdcaflow.http", "includeExtensionProperties": True})
    assert asked["extensionProperties"]["method"] == "POST"


def test_sorting_by_create_time(rest, runtime):
    """FetchExternalTasksDto.sorting: [{sortBy: createTime, sortOrder: asc|desc}]; any other sortBy is
    refused (400), as the document lists createTime only."""
    older = runtime.start("xt_order_lookup", {"order": "old"}, lead_actor())
    newer = runtime.start("xt_order_lookup", {"order": "new"}, lead_actor())
    topic = {"topicName": "erp-lookup", "lockDuration": 1}
    bad = rest.post(FETCH, headers=basic(), json={"workerId": "w", "maxTasks": 1, "topics": [topic],
                                                  "sorting": [{"sortBy": "priority", "sortOrder": "desc"}]})
    assert bad.status_code == 400 and bad.get_json()["type"] == "InvalidRequestException"
    [first] = _fetch(rest, topic, maxTasks=1, sorting=[{"sortBy": "createTime", "sortOrder": "desc"}])
    assert first["processInstanceId"] == newer.id
    rest.post(f"/engine-rest/external-task/{first['id']}/unlock", headers=basic())
    [first] = _fetch(rest, topic, maxTasks=1, sorting=[{"sortBy": "createTime", "sortOrder": "asc"}])
    assert first["processInstanceId"] == older.id
    rest.post(f"/engine-rest/external-task/{first['id']}/unlock", headers=basic())
    [first] = _fetch(rest, topic, maxTasks=1, sorting=None)
    assert first["processInstanceId"] == older.id


def test_a_worker_without_the_lock_gets_camundas_400_rest_exception(rest, runtime):
    """ExternalTaskResourceImpl wraps the engine's BadUserRequestException in a RestException with
    status 400: the body's type is "RestException" for complete, failure, bpmnError and extendLock."""
    runtime.start("xt_order_lookup", {"order": "A-4"}, lead_actor())
    [task] = _fetch(rest, {"topicName": "erp-lookup"})
    base = f"/engine-rest/external-task/{task['id']}"
    for verb, body in (("complete", {}), ("failure", {"retries": 1}), ("bpmnError", {"errorCode": "X"}),
                       ("extendLock", {"newDuration": 1000})):
        answer = rest.post(f"{base}/{verb}", headers=basic(), json={"workerId": "intruder", **body})
        assert answer.status_code == 400, verb
        assert answer.get_json()["type"] == "RestException", verb
        assert "intruder" in answer.get_json()["message"], verb
    gone = rest.post("/engine-rest/external-task/nope/complete", headers=basic(), json={"workerId": "w1"})
    assert gone.status_code == 404 and gone.get_json() == {
        "type": "RestException", "message": "External task with id nope does not exist"}


def test_start_returns_the_variables_when_asked(rest, runtime):
    """StartProcessInstanceDto.withVariablesInReturn: the answer (ProcessInstanceWithVariablesDto)
    carries the instance's variables, typed, as they are after the start."""
    url = "/engine-rest/process-definition/key/xt_order_lookup/start"
    answer = rest.post(url, headers=basic(), json={"variables": {"order": {"value": "A-5", "type": "String"},
                                                                 "lines": {"value": 3, "type": "Integer"}},
                                                   "withVariablesInReturn": True})
    assert answer.status_code == 200
    assert answer.get_json()["variables"] == {"order": {"type": "String", "value": "A-5", "valueInfo": {}},
                                              "lines": {"type": "Integer", "value": 3, "valueInfo": {}}}
    plain = rest.post(url, headers=basic(), json={})
    assert plain.status_code == 200 and "variables" not in plain.get_json()


def test_instance_reads_answer_as_camundas_runtime_service(rest, runtime):
    """ProcessInstanceResourceImpl queries running instances only: an ended or unknown instance is
    404 InvalidRequestException "Process instance with id X does not exist" (a client polls for that
    404 to know the instance ended); a missing variable is 404 InvalidRequestException; `/data` of a
    variable that is not Bytes or File is 400 (VariableResponseProvider); an unknown key to start is
    404 "No matching process definition with key: K and no tenant-id"."""
    instance = runtime.start("xt_order_lookup", {"order": "A-6"}, lead_actor())
    base = f"/engine-rest/process-instance/{instance.id}"
    assert rest.get(base, headers=basic()).get_json()["ended"] is False
    missing = rest.get(f"{base}/variables/nope", headers=basic())
    assert missing.status_code == 404 and missing.get_json() == {
        "type": "InvalidRequestException", "message": "process instance variable with name nope does not exist"}
    data = rest.get(f"{base}/variables/order/data", headers=basic())
    assert data.status_code == 400 and data.get_json() == {
        "type": "InvalidRequestException", "message": f"Value of variable with id {instance.id} is not a binary value."}
    assert rest.get(f"{base}/variables/nope/data", headers=basic()).status_code == 404
    [task] = _fetch(rest, {"topicName": "erp-lookup"})
    assert rest.post(f"/engine-rest/external-task/{task['id']}/complete", headers=basic(),
                     json={"workerId": "w1"}).status_code == 204
    assert runtime.instance(instance.id).status == "completed"
    for url in (base, "/engine-rest/process-instance/no-such-instance"):
        ended = rest.get(url, headers=basic())
        assert ended.status_code == 404 and ended.get_json() == {
            "type": "InvalidRequestException",
            "message": f"Process instance with id {url.rsplit('/', 1)[1]} does not exist"}
    unknown = rest.post("/engine-rest/process-definition/key/nope/start", headers=basic(), json={})
    assert unknown.status_code == 404 and unknown.get_json() == {
        "type": "RestException", "message": "No matching process definition with key: nope and no tenant-id"}


def test_task_query_filters(rest, runtime):
    """TaskQueryDto's everyday filters narrow the list before it is paged: taskId, name, nameLike,
    assigned/unassigned, candidateUser, candidateGroups, assigneeIn, taskDefinitionKeyIn,
    processInstanceBusinessKey; sortBy without sortOrder is 400, as Camunda answers."""
    first = runtime.start("simple_review", {}, lead_actor(), business_key="C-10")
    second = runtime.start("simple_review", {}, lead_actor(), business_key="C-11")
    url, auth = "/engine-rest/task", basic("lena.lead")

    def ids(**query) -> list[str]:
        answer = rest.get(url, headers=auth, query_string=query)
        assert answer.status_code == 200, answer.get_json()
        return sorted(t["processInstanceId"] for t in answer.get_json())

    [task] = rest.get(url, headers=auth, query_string={"processInstanceId": first.id}).get_json()
    assert rest.post(f"/engine-rest/task/{task['id']}/claim", json={"userId": "rita.reviewer"},
                     headers=basic("rita.reviewer")).status_code == 204
    assert ids(taskId=task["id"]) == [first.id]
    assert ids(unassigned="true") == [second.id] and ids(assigned="true") == [first.id]
    assert ids(assigneeIn="rita.reviewer,rob.reviewer") == [first.id]
    assert ids(processInstanceBusinessKey="C-11") == [second.id]
    # candidate queries leave out assigned tasks unless includeAssignedTasks (TaskQueryImpl)
    assert ids(candidateUser="rob.reviewer") == [second.id]
    assert ids(candidateUser="rob.reviewer", includeAssignedTasks="true") == sorted([first.id, second.id])
    assert ids(candidateUser="nobody") == []
    assert ids(candidateGroups="purchasing,reviewers") == [second.id]
    assert ids(candidateGroup="reviewers", includeAssignedTasks="true") == sorted([first.id, second.id])
    assert ids(name="Assess request", taskDefinitionKeyIn="Task_Assess,Task_Other") == sorted([first.id, second.id])
    assert len(ids(nameLike="%ssess%")) == 2 and len(ids(nameLike="%ssess%", maxResults="1", firstResult="1")) == 1
    assert ids(name="Other") == [] and ids(nameLike="Other%") == []
    lonely = rest.get(url, headers=auth, query_string={"sortBy": "created"})
    assert lonely.status_code == 400 and lonely.get_json()["type"] == "InvalidRequestException"


def test_external_task_query_filters_and_sorting(rest, runtime):
    """GET /external-task (ExternalTaskQueryDto): externalTaskId(In), processInstanceIdIn, activityIdIn,
    executionId, processDefinitionId, priority bounds and tenantIdIn narrow the list; sortBy needs
    sortOrder (400 otherwise) and orders by taskPriority, createTime and the other documented fields."""
    a = runtime.start("xt_order_lookup", {}, lead_actor())
    b = runtime.start("xt_order_lookup", {}, lead_actor())
    c = runtime.start("xt_credit_note", {}, lead_actor())
    url = "/engine-rest/external-task"

    def instances(**query) -> list[str]:
        answer = rest.get(url, headers=basic(), query_string=query)
        assert answer.status_code == 200, answer.get_json()
        return [t["processInstanceId"] for t in answer.get_json()]

    everything = rest.get(url, headers=basic()).get_json()
    by_instance = {t["processInstanceId"]: t for t in everything}
    assert sorted(by_instance) == sorted([a.id, b.id, c.id])
    assert instances(externalTaskId=by_instance[a.id]["id"]) == [a.id]
    assert instances(executionId=by_instance[b.id]["executionId"]) == [b.id]
    assert sorted(instances(externalTaskIdIn=f"{by_instance[a.id]['id']},{by_instance[c.id]['id']}")) == \
        sorted([a.id, c.id])
    assert sorted(instances(processInstanceIdIn=f"{a.id},{b.id}")) == sorted([a.id, b.id])
    assert instances(activityIdIn="raise,other") == [c.id]
    assert sorted(instances(processDefinitionId="xt_order_lookup:1")) == sorted([a.id, b.id])
    assert instances(processDefinitionId="xt_order_lookup:7") == []
    assert sorted(instances(priorityHigherThanOrEquals="5")) == sorted([a.id, b.id])  # erp-lookup has priority 5
    assert instances(priorityLowerThanOrEquals="4") == [c.id]
    assert instances(tenantIdIn="tenant-one") == []
    assert instances(sortBy="taskPriority", sortOrder="asc")[0] == c.id
    assert instances(sortBy="taskPriority", sortOrder="desc")[-1] == c.id
    assert instances(sortBy="createTime", sortOrder="desc") == [c.id, b.id, a.id]
    assert rest.get(url, headers=basic(), query_string={"sortBy": "createTime"}).status_code == 400
    bad = rest.get(url, headers=basic(), query_string={"sortBy": "color", "sortOrder": "asc"})
    assert bad.status_code == 400 and bad.get_json()["type"] == "InvalidRequestException"
    assert rest.get(f"{url}/count", headers=basic(), query_string={"processInstanceIdIn": a.id}).get_json() == {
        "count": 1}


def test_extend_lock_needs_a_positive_duration(rest, runtime):
    """ExtendLockOnExternalTaskCmd: ensurePositive(lockTime) -> BadUserRequestException (400)."""
    runtime.start("xt_order_lookup", {}, lead_actor())
    [task] = _fetch(rest, {"topicName": "erp-lookup"})
    zero = rest.post(f"/engine-rest/external-task/{task['id']}/extendLock", headers=basic(),
                     json={"workerId": "w1", "newDuration": 0})
    assert zero.status_code == 400


def test_a_failure_keeps_the_variables_it_reports(rest, runtime):
    """ExternalTaskFailureDto carries variables and localVariables (Camunda's Java client sends them
    with handleFailure): they are set although the task stays, and survive the retry."""
    instance = runtime.start("xt_order_lookup", {"order": "A-7"}, lead_actor())
    [task] = _fetch(rest, {"topicName": "erp-lookup"})
    failed = rest.post(f"/engine-rest/external-task/{task['id']}/failure", headers=basic(), json={
        "workerId": "w1", "errorMessage": "ERP down", "retries": 1, "retryTimeout": 0,
        "variables": {"attempts": {"value": 1, "type": "Integer"}},
        "localVariables": {"last_error": {"value": "timeout", "type": "String"}}})
    assert failed.status_code == 204
    data = runtime.instance(instance.id).data
    assert (data["attempts"], data["last_error"]) == (1, "timeout")
    [again] = _fetch(rest, {"topicName": "erp-lookup"})
    assert again["variables"]["attempts"] == {"type": "Integer", "value": 1, "valueInfo": {}}
    bad = rest.post(f"/engine-rest/external-task/{task['id']}/failure", headers=basic(), json={
        "workerId": "w1", "retries": 1, "variables": {"n": {"value": "x", "type": "Integer"}}})
    assert bad.status_code == 400 and "variables.n" in bad.get_json()["message"]


def test_process_definitions_listed_and_started_by_id(rest, runtime):
    """GET /process-definition (ProcessDefinitionQueryDto: key, keyLike, name, latestVersion,
    versionTag, tenantIdIn, sortBy/sortOrder, paging), GET /process-definition/key/{key} and
    POST /process-definition/{id}/start."""
    url = "/engine-rest/process-definition"

    def keys(**query) -> list[str]:
        answer = rest.get(url, headers=basic(), query_string=query)
        assert answer.status_code == 200, answer.get_json()
        return [d["id"] for d in answer.get_json()]

    assert keys(sortBy="key", sortOrder="asc") == ["simple_review:1", "xt_credit_note:1", "xt_order_lookup:1"]
    assert keys(keyLike="xt%", sortBy="key", sortOrder="desc", firstResult="1") == ["xt_credit_note:1"]
    assert keys(key="xt_order_lookup", latestVersion="true") == ["xt_order_lookup:1"]
    assert keys(keyLike="xt_credit%") == ["xt_credit_note:1"]
    assert keys(versionTag="1.0") == [] and keys(tenantIdIn="t1") == []
    assert rest.get(url, headers=basic(), query_string={"sortBy": "version"}).status_code == 400
    latest = rest.get(f"{url}/key/xt_order_lookup", headers=basic()).get_json()
    assert (latest["id"], latest["version"], latest["suspended"], latest["versionTag"]) == (
        "xt_order_lookup:1", 1, False, None)
    assert rest.get(f"{url}/key/nope", headers=basic()).status_code == 404
    started = rest.post(f"{url}/xt_order_lookup:1/start", headers=basic(), json={
        "variables": {"order": {"value": "A-9", "type": "String"}}, "businessKey": "C-9"})
    assert started.status_code == 200 and started.get_json()["definitionId"] == "xt_order_lookup:1"
    assert runtime.instance(started.get_json()["id"]).business_key == "C-9"
    for unknown in ("xt_order_lookup:9", "nonsense"):
        missing = rest.post(f"{url}/{unknown}/start", headers=basic(), json={})
        assert missing.status_code == 404 and missing.get_json()["type"] == "RestException"
    assert rest.post(f"{url}/xt_order_lookup:1/start", headers=basic("rita.reviewer"), json={}).status_code == 403


def test_lock_one_task_by_id(rest, runtime):
    """POST /external-task/{id}/lock (LockExternalTaskCmd; Camunda's Java client calls it from
    ExternalTaskService.lock): the worker gets the lock unless another worker holds an unexpired one
    (400); lockDuration must be positive; an unknown task is 404."""
    runtime.start("xt_order_lookup", {}, lead_actor())
    [task] = rest.get("/engine-rest/external-task", headers=basic()).get_json()
    base = f"/engine-rest/external-task/{task['id']}/lock"
    assert rest.post(base, headers=basic(), json={"workerId": "w1", "lockDuration": 60000}).status_code == 204
    held = rest.get(f"/engine-rest/external-task/{task['id']}", headers=basic()).get_json()
    assert held["workerId"] == "w1" and held["lockExpirationTime"] is not None
    assert _fetch(rest, {"topicName": "erp-lookup"}, worker="w2") == []
    other = rest.post(base, headers=basic(), json={"workerId": "w2", "lockDuration": 1000})
    assert other.status_code == 400 and other.get_json()["type"] == "RestException"
    assert rest.post(base, headers=basic(), json={"workerId": "w1", "lockDuration": 1}).status_code == 204
    time.sleep(0.05)
    assert rest.post(base, headers=basic(), json={"workerId": "w2", "lockDuration": 60000}).status_code == 204
    assert rest.post(f"/engine-rest/external-task/{task['id']}/complete", headers=basic(),
                     json={"workerId": "w2"}).status_code == 204
    # a completed task is gone, its error details too (Camunda deletes it)
    assert rest.get(f"/engine-rest/external-task/{task['id']}/errorDetails", headers=basic()).status_code == 404
    assert rest.post(base, headers=basic(), json={"workerId": "w1", "lockDuration": 0}).status_code == 400
    assert rest.post("/engine-rest/external-task/nope/lock", headers=basic(),
                     json={"workerId": "w1", "lockDuration": 10}).status_code == 404
    assert rest.post(base, headers=basic("rita.reviewer"), json={"workerId": "w1", "lockDuration": 10}).status_code \
        == 403


def test_tenants_and_local_correlation_keys_are_not_ignored(rest, runtime):
    """No tenant exists here: a message for a tenant matches nothing (400, as Camunda answers when
    nothing matches), a signal for a tenant reaches nobody (204). localCorrelationKeys would narrow
    to the waiting execution's local variables, which this subset cannot see: refused (400) rather
    than correlated more widely than asked."""
    runtime.deploy_paths([MODELS / "evt_signal_catch.bpmn"])
    waiting = _waiting_for_approval(rest, runtime, "C-5")
    url = "/engine-rest/message"
    tenant = rest.post(url, headers=basic(), json={"messageName": "CreditNoteApproved", "businessKey": "C-5",
                                                   "tenantId": "tenant-one"})
    assert tenant.status_code == 400 and tenant.get_json()["type"] == "RestException"
    local = rest.post(url, headers=basic(), json={"messageName": "CreditNoteApproved", "businessKey": "C-5",
                                                  "localCorrelationKeys": {"x": {"value": 1}}})
    assert local.status_code == 400 and "localCorrelationKeys" in local.get_json()["message"]
    assert rest.post(url, headers=basic(), json={"messageName": "CreditNoteApproved", "businessKey": "C-5",
                                                 "withoutTenantId": True, "localCorrelationKeys": {}}).status_code == 204
    assert runtime.instance(waiting).status != "incident"
    signalled = runtime.start("evt_signal_catch", {"path": []}, lead_actor())
    assert rest.post("/engine-rest/signal", headers=basic(), json={"name": "alarm", "tenantId": "t"}).status_code == 204
    assert runtime.instance(signalled.id).status == "running"
    assert rest.post("/engine-rest/signal", headers=basic(), json={"name": "alarm", "withoutTenantId": True}
                     ).status_code == 204
    assert runtime.instance(signalled.id).status == "completed"


def _waiting_for_approval(rest, runtime, business_key: str) -> str:
    instance = runtime.start("xt_credit_note", {}, lead_actor(), business_key=business_key)
    for task in _fetch(rest, {"topicName": "erp-credit-note", "processInstanceId": instance.id}):
        assert rest.post(f"/engine-rest/external-task/{task['id']}/complete", headers=basic(),
                         json={"workerId": "w1"}).status_code == 204
    return instance.id


def test_a_completed_or_unknown_task_is_not_found(rest, runtime):
    """TaskResourceImpl reads runtime tasks only: a completed task, like an unknown id, is 404
    InvalidRequestException "No matching task with id X"."""
    instance = runtime.start("simple_review", {}, lead_actor())
    auth = basic("rita.reviewer")
    [task] = rest.get("/engine-rest/task", headers=auth, query_string={"processInstanceId": instance.id}).get_json()
    assert rest.get(f"/engine-rest/task/{task['id']}", headers=auth).status_code == 200
    assert rest.post(f"/engine-rest/task/{task['id']}/complete", headers=auth,
                     json={"variables": {"amount": {"value": 5, "type": "Integer"}}}).status_code == 204
    for task_id in (task["id"], "no-such-task"):
        gone = rest.get(f"/engine-rest/task/{task_id}", headers=auth)
        assert gone.status_code == 404 and gone.get_json() == {
            "type": "InvalidRequestException", "message": f"No matching task with id {task_id}"}


def test_message_variables_for_the_triggered_scope_are_kept(rest, runtime):
    """CorrelationMessageDto.processVariablesToTriggeredScope (Camunda 7.15+) sets variables in the
    scope the message triggers; with no local scope here they join the process data, like
    processVariablesLocal, instead of being dropped."""
    waiting = _waiting_for_approval(rest, runtime, "C-6")
    answer = rest.post("/engine-rest/message", headers=basic(), json={
        "messageName": "CreditNoteApproved", "businessKey": "C-6",
        "processVariablesToTriggeredScope": {"approval_note": {"value": "ok by finance", "type": "String"}}})
    assert answer.status_code == 204
    assert runtime.instance(waiting).data["approval_note"] == "ok by finance"


def test_a_worker_fetches_the_tasks_input_parameters(rest, runtime):
    """A Camunda execution sees its local variables (camunda:inputOutput inputs) over the process's: a
    fetch answers them with the process variables, alone with the topic's localVariables; they stay
    the task's own (the process data does not gain them)."""
    runtime.deploy_paths([MODELS / "xt_local_inputs.bpmn"])
    instance = runtime.start("xt_local_inputs", {"order": "A-7", "customer": "Mrs Berg"}, lead_actor())
    [task] = _fetch(rest, {"topicName": "erp-reserve"})
    assert task["variables"]["orderRef"] == {"value": "A-7", "type": "String", "valueInfo": {}}
    assert task["variables"]["channel"]["value"] == "web"
    assert task["variables"]["customer"]["value"] == "Mrs Berg"
    rest.post(f"/engine-rest/external-task/{task['id']}/unlock", headers=basic())
    [local] = _fetch(rest, {"topicName": "erp-reserve", "localVariables": True})
    assert sorted(local["variables"]) == ["channel", "orderRef"]
    done = rest.post(f"/engine-rest/external-task/{task['id']}/complete", headers=basic(),
                     json={"workerId": "w1", "variables": {"reserved": {"value": True, "type": "Boolean"}}})
    assert done.status_code == 204
    data = runtime.instance(instance.id).data
    assert data["reserved"] is True and "orderRef" not in data and "channel" not in data


def test_a_worker_sets_and_removes_process_variables(rest, runtime):
    """Camunda's modifyVariables (the Java client's setVariables) and PUT/DELETE of one variable: the
    process scope has the new values at once (a fetch sees them), the token stays where it waits, and
    an ended instance is 404."""
    instance = runtime.start("xt_order_lookup", {"order": "A-9", "note": "old"}, lead_actor())
    url = f"/engine-rest/process-instance/{instance.id}/variables"
    answer = rest.post(url, headers=basic(), json={
        "modifications": {"rush": {"value": True, "type": "Boolean"}, "amount": {"value": "12", "type": "Integer"}},
        "deletions": ["note"]})
    assert answer.status_code == 204, answer.get_json()
    assert rest.put(f"{url}/carrier", headers=basic(), json={"value": "DHL", "type": "String"}).status_code == 204
    assert rest.delete(f"{url}/order", headers=basic()).status_code == 204
    bad = rest.post(url, headers=basic(), json={"modifications": {"amount": {"value": "x", "type": "Integer"}}})
    assert bad.status_code == 400 and bad.get_json()["type"] == "InvalidRequestException"
    variables = rest.get(url, headers=basic()).get_json()
    assert {k: v["value"] for k, v in variables.items()} == {"rush": True, "amount": 12, "carrier": "DHL"}
    [task] = _fetch(rest, {"topicName": "erp-lookup"})  # still waiting at the external task, with the new data
    assert task["processInstanceId"] == instance.id and task["variables"]["carrier"]["value"] == "DHL"
    assert [a.type for a in runtime.instance(instance.id).audit].count("variables_set") == 3
    assert rest.post(f"/engine-rest/external-task/{task['id']}/complete", headers=basic(),
                     json={"workerId": "w1"}).status_code == 204
    ended = rest.post(url, headers=basic(), json={"modifications": {"late": {"value": 1, "type": "Integer"}}})
    assert ended.status_code == 404 and ended.get_json()["type"] == "InvalidRequestException"
